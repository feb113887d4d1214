package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/channels/channelstest"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

const (
	adminToken      = "admin-token-0123456789"
	integratorToken = "integrator-token-0123456789"
	aliceToken      = "alice-token-0123456789"
	bobToken        = "bob-token-0123456789"
	carolToken      = "carol-token-0123456789"
	phone           = "+8613812345678"
	maskedPhone     = "+86*********78"
)

var authConfig = auth.Config{
	AdminKeys:      []auth.Key{{Name: "ops", Key: adminToken}},
	IntegratorKeys: []auth.Key{{Name: "crm", Key: integratorToken}},
	Reps: []auth.Rep{
		{ID: "alice", Role: auth.RoleRep, Token: aliceToken},
		{ID: "bob", Role: auth.RoleRep, Token: bobToken},
		{ID: "carol", Role: auth.RoleSupervisor, Token: carolToken},
	},
}

// fixture is one server over its own MemoryStore, seeded with:
// customer cust (phone, email, attribute with a phone) and other;
// conversation conv on webchat (unassigned), convAlice on webchat
// assigned to alice (topic "order-1"), smsConv on sms (no adapter).
// Messages go through a Sender with webchat and wechat adapters and a
// policy that allows everything until told otherwise.
type fixture struct {
	t         *testing.T
	store     *sessions.MemoryStore
	srv       *api.Server
	reg       *prometheus.Registry
	webchat   *channelstest.Adapter
	wechat    *channelstest.Adapter
	policy    *channelstest.Policy
	cust      sessions.Customer
	other     sessions.Customer
	conv      sessions.Conversation
	convAlice sessions.Conversation
	smsConv   sessions.Conversation
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, store: sessions.NewMemoryStore(), reg: prometheus.NewRegistry(), webchat: &channelstest.Adapter{Channel: "webchat"},
		wechat: &channelstest.Adapter{Channel: "wechat"}, policy: &channelstest.Policy{}}
	t.Cleanup(func() { f.store.Close() })
	chans, err := channels.NewRegistry(f.webchat, f.wechat)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := channels.NewSender(channels.SenderOptions{Store: f.store, Channels: chans, Policy: f.policy, Metrics: f.reg})
	if err != nil {
		t.Fatal(err)
	}
	f.srv, err = api.New(api.Config{MaxBodyBytes: 4 << 10}, api.Options{
		Store: f.store, Auth: auth.New(authConfig), Sender: sender, Metrics: f.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.cust, _, err = f.store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityPhone, Value: phone, Verified: true},
		sessions.Customer{Name: "Wang Fang", Attributes: map[string]string{"mobile": phone, "plan": "gold"}})
	must(t, err)
	_, _, err = f.store.LinkIdentity(ctx, f.cust.ID, sessions.Identity{Kind: sessions.IdentityEmail, Value: "wang@example.com"}, "system")
	must(t, err)
	f.other, _, err = f.store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "site1", Value: "v-1"}, sessions.Customer{Name: "Visitor"})
	must(t, err)
	f.conv, _, err = f.store.OpenConversation(ctx, f.cust.ID, "", sessions.ChannelWebchat)
	must(t, err)
	f.convAlice, _, err = f.store.OpenConversation(ctx, f.cust.ID, "order-1", sessions.ChannelWebchat)
	must(t, err)
	alice := "alice"
	f.convAlice, _, err = f.store.UpdateConversation(ctx, f.convAlice.ID, sessions.ConversationUpdate{Assignee: &alice})
	must(t, err)
	f.smsConv, _, err = f.store.OpenConversation(ctx, f.cust.ID, "sms-topic", sessions.ChannelSMS)
	must(t, err)
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// expand replaces {cust}, {other}, {conv}, {convAlice}, {smsConv}.
func (f *fixture) expand(s string) string {
	return strings.NewReplacer("{cust}", f.cust.ID, "{other}", f.other.ID, "{conv}", f.conv.ID,
		"{convAlice}", f.convAlice.ID, "{smsConv}", f.smsConv.ID).Replace(s)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not a JSON error: %s", r.body)
	}
	return e.Error.Code
}

func (f *fixture) do(method, path, token, body string) response {
	return f.doType(method, path, token, body, "application/json")
}

func (f *fixture) doType(method, path, token, body, contentType string) response {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(f.expand(body))
	}
	req := httptest.NewRequest(method, f.expand(path), rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// snapshot is everything a failed request must leave alone.
type snapshot struct {
	timelines     map[string][]sessions.Event
	customers     map[string]sessions.Customer
	conversations []sessions.Conversation
}

func (f *fixture) snapshot() snapshot {
	f.t.Helper()
	ctx := context.Background()
	s := snapshot{timelines: map[string][]sessions.Event{}, customers: map[string]sessions.Customer{}}
	for _, id := range []string{f.cust.ID, f.other.ID} {
		tl, err := f.store.Timeline(ctx, id, 0, 1000)
		must(f.t, err)
		s.timelines[id] = tl
		c, err := f.store.Customer(ctx, id)
		must(f.t, err)
		s.customers[id] = c
	}
	var err error
	s.conversations, _, err = f.store.Conversations(ctx, sessions.ConversationQuery{Limit: 500})
	must(f.t, err)
	return s
}

func (f *fixture) events(customerID string) []sessions.Event {
	f.t.Helper()
	tl, err := f.store.Timeline(context.Background(), customerID, 0, 1000)
	must(f.t, err)
	return tl
}

func TestRoutesHappyPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path, token, body string
		want                            int
		check                           func(t *testing.T, f *fixture, r response)
	}{
		{"healthz", "GET", "/healthz", "", "", 200, nil},
		{"readyz", "GET", "/readyz", "", "", 200, nil},
		{"search by phone", "GET", "/v1/customers?phone=%2B8613812345678", adminToken, "", 200, func(t *testing.T, f *fixture, r response) {
			if data := r.json(t)["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != f.cust.ID {
				t.Errorf("data = %v", data)
			}
		}},
		{"search by email, integrator", "GET", "/v1/customers?email=WANG@example.com", integratorToken, "", 200, func(t *testing.T, f *fixture, r response) {
			if data := r.json(t)["data"].([]any); len(data) != 1 {
				t.Errorf("data = %v", data)
			}
		}},
		{"search by name, none", "GET", "/v1/customers?name=nobody&limit=5", aliceToken, "", 200, func(t *testing.T, f *fixture, r response) {
			if string(r.body) != "{\"data\":[],\"next_cursor\":\"\"}\n" {
				t.Errorf("body = %s", r.body)
			}
		}},
		{"get customer", "GET", "/v1/customers/{cust}", integratorToken, "", 200, func(t *testing.T, f *fixture, r response) {
			if ids := r.json(t)["identities"].([]any); len(ids) != 2 {
				t.Errorf("identities = %v", ids)
			}
		}},
		{"patch customer as supervisor", "PATCH", "/v1/customers/{cust}", carolToken,
			`{"tier":"A","vip":true,"owner":"alice","tags":["late-delivery"],"time_zone":"Asia/Shanghai","locale":"zh-CN","attributes":{"plan":""}}`, 200,
			func(t *testing.T, f *fixture, r response) {
				c, err := f.store.Customer(context.Background(), f.cust.ID)
				must(t, err)
				if c.Tier != "A" || !c.VIP || c.Owner != "alice" || c.TimeZone != "Asia/Shanghai" || c.Attributes["plan"] != "" {
					t.Errorf("customer = %+v", c)
				}
				// Recorded on the timeline by the supervisor who made it.
				last, err := f.store.LastSeq(context.Background(), f.cust.ID)
				must(t, err)
				tl, err := f.store.Timeline(context.Background(), f.cust.ID, last-1, 1)
				must(t, err)
				if len(tl) != 1 || tl[0].Kind != sessions.KindProfileChanged || tl[0].Author != "rep:carol" ||
					!strings.Contains(string(tl[0].Payload), `"vip":{"from":false,"to":true}`) {
					t.Errorf("last event = %+v", tl)
				}
			}},
		{"patch name as rep", "PATCH", "/v1/customers/{cust}", aliceToken, `{"name":"Wang Fang (Ms)"}`, 200, nil},
		{"timeline", "GET", "/v1/customers/{cust}/timeline?after=1&limit=2", integratorToken, "", 200, func(t *testing.T, f *fixture, r response) {
			m := r.json(t)
			data := m["data"].([]any)
			if len(data) != 2 || data[0].(map[string]any)["seq"] != 2.0 || m["next_cursor"] != "3" {
				t.Errorf("page = %s", r.body)
			}
		}},
		{"merge as supervisor", "POST", "/v1/customers/{cust}/merge", carolToken, `{"from":"{other}","evidence":"same person, confirmed by phone call"}`, 200,
			func(t *testing.T, f *fixture, r response) {
				from, err := f.store.Customer(context.Background(), f.other.ID)
				must(t, err)
				if from.MergedInto != f.cust.ID {
					t.Errorf("from = %+v", from)
				}
				ev := r.json(t)["event"].(map[string]any)
				if ev["kind"] != "customers_merged" || ev["author"] != "rep:carol" {
					t.Errorf("event = %v", ev)
				}
			}},
		{"list conversations", "GET", "/v1/conversations?status=open&channel=webchat&customer_id={cust}&limit=1", aliceToken, "", 200, func(t *testing.T, f *fixture, r response) {
			m := r.json(t)
			if len(m["data"].([]any)) != 1 || m["next_cursor"] == "" {
				t.Errorf("page = %s", r.body)
			}
		}},
		{"list unassigned", "GET", "/v1/conversations?unassigned=true", carolToken, "", 200, func(t *testing.T, f *fixture, r response) {
			for _, c := range r.json(t)["data"].([]any) {
				if c.(map[string]any)["assignee"] != nil {
					t.Errorf("assigned conversation listed: %v", c)
				}
			}
		}},
		{"list by assignee", "GET", "/v1/conversations?assignee=alice", adminToken, "", 200, func(t *testing.T, f *fixture, r response) {
			if data := r.json(t)["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != f.convAlice.ID {
				t.Errorf("data = %v", data)
			}
		}},
		{"get conversation", "GET", "/v1/conversations/{conv}", bobToken, "", 200, nil},
		{"send message", "POST", "/v1/conversations/{convAlice}/messages", aliceToken, `{"text":"Your parcel ships today.","client_id":"c-1"}`, 201,
			func(t *testing.T, f *fixture, r response) {
				sent := f.webchat.Sent()
				if len(sent) != 1 || sent[0].Message.Text != "Your parcel ships today." || len(sent[0].Identities) != 2 || sent[0].ConversationID != f.convAlice.ID {
					t.Fatalf("sent = %+v", sent)
				}
				tl := f.events(f.cust.ID)
				out, ds := tl[len(tl)-2], tl[len(tl)-1]
				if out.Kind != sessions.KindMessageOut || out.ExternalID != "c-1" || out.Channel != "webchat" || out.Author != "rep:alice" || sent[0].EventID != out.ID {
					t.Errorf("message_out = %+v", out)
				}
				if ds.Kind != sessions.KindDelivery || !strings.Contains(string(ds.Payload), `"status":"sent"`) {
					t.Errorf("delivery = %+v", ds)
				}
				if r.json(t)["receipt"].(map[string]any)["id"] != "receipt-"+out.ID {
					t.Errorf("body = %s", r.body)
				}
			}},
		{"note", "POST", "/v1/conversations/{convAlice}/notes", bobToken, `{"text":"customer prefers mornings"}`, 201, func(t *testing.T, f *fixture, r response) {
			tl := f.events(f.cust.ID)
			if last := tl[len(tl)-1]; last.Kind != sessions.KindNote || last.Author != "rep:bob" || last.Channel != sessions.ChannelSystem {
				t.Errorf("note = %+v", last)
			}
			if len(f.webchat.Sent()) != 0 {
				t.Error("a note was sent to the customer")
			}
		}},
		{"claim", "POST", "/v1/conversations/{conv}/assign", bobToken, `{"assignee":"bob"}`, 200, func(t *testing.T, f *fixture, r response) {
			tl := f.events(f.cust.ID)
			if last := tl[len(tl)-1]; last.Kind != sessions.KindAssignment || last.Author != "rep:bob" {
				t.Errorf("event = %+v", last)
			}
		}},
		{"transfer", "POST", "/v1/conversations/{convAlice}/assign", aliceToken, `{"assignee":"bob"}`, 200, func(t *testing.T, f *fixture, r response) {
			tl := f.events(f.cust.ID)
			last := tl[len(tl)-1]
			if last.Kind != sessions.KindTransfer || string(last.Payload) != `{"status":"open","assignee":"bob","from":"alice"}` {
				t.Errorf("event = %+v %s", last, last.Payload)
			}
		}},
		{"unassign", "POST", "/v1/conversations/{convAlice}/assign", carolToken, `{"assignee":""}`, 200, func(t *testing.T, f *fixture, r response) {
			c, _ := f.store.Conversation(context.Background(), f.convAlice.ID)
			if c.Assignee != "" {
				t.Errorf("conversation = %+v", c)
			}
		}},
		{"resolve", "POST", "/v1/conversations/{convAlice}/resolve", aliceToken, "", 200, func(t *testing.T, f *fixture, r response) {
			c := r.json(t)["conversation"].(map[string]any)
			if c["status"] != "resolved" || r.json(t)["event"] == nil {
				t.Errorf("body = %s", r.body)
			}
		}},
		{"resolve with empty object", "POST", "/v1/conversations/{conv}/resolve", adminToken, `{}`, 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			r := f.do(tt.method, tt.path, tt.token, tt.body)
			if r.status != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.want)
			}
			if ct := r.header.Get("Content-Type"); tt.path != "/metrics" && ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if tt.check != nil {
				tt.check(t, f, r)
			}
		})
	}
}

func TestReopen(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if r := f.do("POST", "/v1/conversations/{convAlice}/resolve", aliceToken, ""); r.status != 200 {
		t.Fatalf("resolve: %d %s", r.status, r.body)
	}
	before := len(f.events(f.cust.ID))
	// Resolving again records nothing.
	if r := f.do("POST", "/v1/conversations/{convAlice}/resolve", aliceToken, ""); r.status != 200 || r.json(t)["event"] != nil {
		t.Fatalf("second resolve: %d %s", r.status, r.body)
	}
	if got := len(f.events(f.cust.ID)); got != before {
		t.Fatalf("idempotent resolve appended %d events", got-before)
	}
	// Replying to a resolved conversation needs a reopen first.
	if r := f.do("POST", "/v1/conversations/{convAlice}/messages", aliceToken, `{"text":"hi","client_id":"x"}`); r.status != 409 {
		t.Fatalf("reply to resolved: %d %s", r.status, r.body)
	}
	r := f.do("POST", "/v1/conversations/{convAlice}/reopen", aliceToken, "")
	if r.status != 200 || r.json(t)["conversation"].(map[string]any)["status"] != "open" {
		t.Fatalf("reopen: %d %s", r.status, r.body)
	}
}

func TestReopenConflict(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if r := f.do("POST", "/v1/conversations/{convAlice}/resolve", carolToken, ""); r.status != 200 {
		t.Fatalf("resolve: %d %s", r.status, r.body)
	}
	// A new contact on the topic opens a new conversation...
	_, created, err := f.store.OpenConversation(ctx, f.cust.ID, "order-1", sessions.ChannelWebchat)
	if err != nil || !created {
		t.Fatalf("open: %v %v", created, err)
	}
	// ...so the old one can't be reopened beside it.
	before := f.snapshot()
	r := f.do("POST", "/v1/conversations/{convAlice}/reopen", carolToken, "")
	if r.status != 409 || r.errorCode(t) != "conflict" {
		t.Fatalf("reopen: %d %s", r.status, r.body)
	}
	if after := f.snapshot(); !reflect.DeepEqual(before, after) {
		t.Error("a refused reopen changed the store")
	}
}

func TestSendIdempotent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	first := f.do("POST", "/v1/conversations/{conv}/messages", carolToken, `{"text":"hello","client_id":"k1"}`)
	if first.status != 201 {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	before := len(f.events(f.cust.ID))
	again := f.do("POST", "/v1/conversations/{conv}/messages", carolToken, `{"text":"hello","client_id":"k1"}`)
	if again.status != 200 {
		t.Fatalf("retry: %d %s", again.status, again.body)
	}
	if first.json(t)["event"].(map[string]any)["id"] != again.json(t)["event"].(map[string]any)["id"] {
		t.Error("retry returned a different event")
	}
	if n := len(f.webchat.Sent()); n != 1 {
		t.Errorf("sent %d times", n)
	}
	if got := len(f.events(f.cust.ID)); got != before {
		t.Errorf("retry appended %d events", got-before)
	}
	// The same client id for other text is a client bug, not a retry.
	if r := f.do("POST", "/v1/conversations/{conv}/messages", carolToken, `{"text":"other","client_id":"k1"}`); r.status != 409 {
		t.Errorf("reused client id: %d %s", r.status, r.body)
	}
}

func TestSendFailureIsRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.do("POST", "/v1/conversations/{convAlice}/messages", aliceToken, `{"text":"fail","client_id":"f1"}`)
	if r.status != 502 || r.errorCode(t) != "send_failed" {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	tl := f.events(f.cust.ID)
	out, ds := tl[len(tl)-2], tl[len(tl)-1]
	if out.Kind != sessions.KindMessageOut || ds.Kind != sessions.KindDelivery ||
		string(ds.Payload) != `{"event_id":"`+out.ID+`","status":"failed","error":"rejected"}` {
		t.Errorf("timeline tail = %+v / %s", out, ds.Payload)
	}
}

func TestErrorsWriteNothing(t *testing.T) {
	t.Parallel()
	big := `{"text":"` + strings.Repeat("x", 5<<10) + `","client_id":"big"}`
	tests := []struct {
		name, method, path, token, body, contentType string
		want                                         int
		code                                         string
	}{
		{"no token", "GET", "/v1/customers/{cust}", "", "", "", 401, "unauthorized"},
		{"bad token", "POST", "/v1/conversations/{conv}/notes", "nope-0123456789abcdef", `{"text":"x"}`, "application/json", 401, "unauthorized"},
		{"rep merging", "POST", "/v1/customers/{cust}/merge", aliceToken, `{"from":"{other}","evidence":"looks alike"}`, "application/json", 403, "forbidden"},
		{"integrator merging", "POST", "/v1/customers/{cust}/merge", integratorToken, `{"from":"{other}","evidence":"crm says so"}`, "application/json", 403, "forbidden"},
		{"rep setting vip", "PATCH", "/v1/customers/{cust}", aliceToken, `{"name":"X","vip":true}`, "application/json", 403, "forbidden"},
		{"rep setting owner", "PATCH", "/v1/customers/{cust}", bobToken, `{"owner":"bob"}`, "application/json", 403, "forbidden"},
		{"integrator patching", "PATCH", "/v1/customers/{cust}", integratorToken, `{"name":"X"}`, "application/json", 403, "forbidden"},
		{"integrator listing conversations", "GET", "/v1/conversations", integratorToken, "", "", 403, "forbidden"},
		{"rep on another's conversation", "POST", "/v1/conversations/{convAlice}/resolve", bobToken, "", "", 403, "forbidden"},
		{"rep replying on another's conversation", "POST", "/v1/conversations/{convAlice}/messages", bobToken, `{"text":"hi","client_id":"b1"}`, "application/json", 403, "forbidden"},
		{"malformed json", "POST", "/v1/conversations/{conv}/notes", aliceToken, `{"text":`, "application/json", 400, "malformed_json"},
		{"unknown field", "POST", "/v1/conversations/{conv}/messages", aliceToken, `{"text":"hi","client_id":"u1","urgent":true}`, "application/json", 400, "malformed_json"},
		{"trailing data", "POST", "/v1/conversations/{conv}/messages", aliceToken, `{"text":"hi","client_id":"t1"} {"text":"again"}`, "application/json", 400, "malformed_json"},
		{"wrong type", "PATCH", "/v1/customers/{cust}", carolToken, `{"vip":"yes"}`, "application/json", 400, "malformed_json"},
		{"array body", "POST", "/v1/conversations/{conv}/assign", carolToken, `["bob"]`, "application/json", 400, "malformed_json"},
		{"empty body", "POST", "/v1/conversations/{conv}/notes", aliceToken, "", "", 400, "malformed_json"},
		{"body on resolve", "POST", "/v1/conversations/{conv}/resolve", aliceToken, `{"reason":"done"}`, "application/json", 400, "malformed_json"},
		{"oversized body", "POST", "/v1/conversations/{conv}/messages", aliceToken, big, "application/json", 413, "too_large"},
		{"wrong content type", "POST", "/v1/conversations/{conv}/notes", aliceToken, `{"text":"x"}`, "text/plain", 415, "unsupported_media_type"},
		{"no content type", "PATCH", "/v1/customers/{cust}", carolToken, `{"name":"x"}`, "", 415, "unsupported_media_type"},
		{"unknown conversation", "POST", "/v1/conversations/cnv_nope/messages", aliceToken, `{"text":"hi","client_id":"n1"}`, "application/json", 404, "not_found"},
		{"unknown conversation get", "GET", "/v1/conversations/cnv_nope", aliceToken, "", "", 404, "not_found"},
		{"unknown customer", "GET", "/v1/customers/cus_nope", aliceToken, "", "", 404, "not_found"},
		{"unknown customer timeline", "GET", "/v1/customers/cus_nope/timeline", aliceToken, "", "", 404, "not_found"},
		{"unknown customer patch", "PATCH", "/v1/customers/cus_nope", carolToken, `{"name":"x"}`, "application/json", 404, "not_found"},
		{"merge unknown", "POST", "/v1/customers/{cust}/merge", carolToken, `{"from":"cus_nope","evidence":"x"}`, "application/json", 404, "not_found"},
		{"merge into itself", "POST", "/v1/customers/{cust}/merge", carolToken, `{"from":"{cust}","evidence":"x"}`, "application/json", 400, "invalid"},
		{"merge without evidence", "POST", "/v1/customers/{cust}/merge", adminToken, `{"from":"{other}"}`, "application/json", 400, "invalid"},
		{"empty patch", "PATCH", "/v1/customers/{cust}", carolToken, `{}`, "application/json", 400, "invalid"},
		{"bad tier", "PATCH", "/v1/customers/{cust}", carolToken, `{"tier":"Z"}`, "application/json", 400, "invalid"},
		{"bad time zone", "PATCH", "/v1/customers/{cust}", carolToken, `{"time_zone":"Mars/Base"}`, "application/json", 400, "invalid"},
		{"unknown owner", "PATCH", "/v1/customers/{cust}", carolToken, `{"owner":"mallory"}`, "application/json", 400, "invalid"},
		{"unknown assignee", "POST", "/v1/conversations/{conv}/assign", carolToken, `{"assignee":"mallory"}`, "application/json", 400, "invalid"},
		{"missing assignee", "POST", "/v1/conversations/{conv}/assign", carolToken, `{}`, "application/json", 400, "invalid"},
		{"empty text", "POST", "/v1/conversations/{conv}/messages", aliceToken, `{"text":"  ","client_id":"e1"}`, "application/json", 400, "invalid"},
		{"missing client id", "POST", "/v1/conversations/{conv}/messages", aliceToken, `{"text":"hi"}`, "application/json", 400, "invalid"},
		{"channel not connected", "POST", "/v1/conversations/{smsConv}/messages", aliceToken, `{"text":"hi","client_id":"s1"}`, "application/json", 503, "channel_unavailable"},
		{"search without criteria", "GET", "/v1/customers", aliceToken, "", "", 400, "invalid"},
		{"search by bad phone", "GET", "/v1/customers?phone=13812345678", aliceToken, "", "", 400, "invalid"},
		{"unknown query parameter", "GET", "/v1/conversations?stauts=open", aliceToken, "", "", 400, "invalid"},
		{"bad status filter", "GET", "/v1/conversations?status=closed", aliceToken, "", "", 400, "invalid"},
		{"bad limit", "GET", "/v1/conversations?limit=-1", aliceToken, "", "", 400, "invalid"},
		{"bad after", "GET", "/v1/customers/{cust}/timeline?after=x", aliceToken, "", "", 400, "invalid"},
		{"assignee and unassigned", "GET", "/v1/conversations?assignee=bob&unassigned=true", aliceToken, "", "", 400, "invalid"},
		{"no route", "GET", "/v1/nothing", aliceToken, "", "", 404, "not_found"},
		{"wrong method", "DELETE", "/v1/customers/{cust}", adminToken, "", "", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			before := f.snapshot()
			r := f.doType(tt.method, tt.path, tt.token, tt.body, tt.contentType)
			if r.status != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.want)
			}
			if code := r.errorCode(t); code != tt.code {
				t.Errorf("code = %q, want %q (%s)", code, tt.code, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if after := f.snapshot(); !reflect.DeepEqual(before, after) {
				t.Errorf("a failed request changed the store:\nbefore %+v\nafter  %+v", before, after)
			}
			if n := len(f.webchat.Sent()); n != 0 {
				t.Errorf("a failed request sent %d messages", n)
			}
			if tt.want == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.want == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

func TestMasking(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name, token string
		masked      bool
	}{
		{"rep", aliceToken, true},
		{"supervisor", carolToken, false},
		{"admin", adminToken, false},
		{"integrator", integratorToken, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want, leak := phone, maskedPhone
			if tt.masked {
				want, leak = maskedPhone, phone
			}
			for _, path := range []string{"/v1/customers/{cust}", "/v1/customers/{cust}/timeline", "/v1/customers?name=wang"} {
				r := f.do("GET", path, tt.token, "")
				if r.status != 200 {
					t.Fatalf("GET %s = %d %s", path, r.status, r.body)
				}
				if strings.Contains(string(r.body), leak) {
					t.Errorf("GET %s as %s shows %s:\n%s", path, tt.name, leak, r.body)
				}
				if path != "/v1/customers/{cust}/timeline" && !strings.Contains(string(r.body), want) {
					t.Errorf("GET %s as %s lacks %s:\n%s", path, tt.name, want, r.body)
				}
			}
		})
	}
	// The identity_linked event for the phone (linked after creation) must
	// be masked too.
	ctx := context.Background()
	c, _, err := f.store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "s", Value: "v2"}, sessions.Customer{})
	must(t, err)
	_, _, err = f.store.LinkIdentity(ctx, c.ID, sessions.Identity{Kind: sessions.IdentityPhone, Value: "+14155552671", Verified: true}, "system")
	must(t, err)
	r := f.do("GET", "/v1/customers/"+c.ID+"/timeline", aliceToken, "")
	if !strings.Contains(string(r.body), "+1********71") || strings.Contains(string(r.body), "+14155552671") {
		t.Errorf("timeline for rep:\n%s", r.body)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.do("GET", "/v1/customers/{cust}", adminToken, "")
	f.do("GET", "/v1/customers/cus_nope", adminToken, "")
	f.do("GET", "/nowhere", "", "")
	f.do("POST", "/v1/conversations/{conv}/messages", adminToken, `{"text":"hi","client_id":"m1"}`)
	r := f.do("GET", "/metrics", "", "")
	if r.status != 200 {
		t.Fatalf("/metrics = %d", r.status)
	}
	for _, want := range []string{
		`omnigate_http_requests_total{code="2xx",route="GET /v1/customers/{id}"} 1`,
		`omnigate_http_requests_total{code="4xx",route="GET /v1/customers/{id}"} 1`,
		`omnigate_http_requests_total{code="4xx",route="unmatched"} 1`,
		`omnigate_http_request_duration_seconds_count{route="GET /v1/customers/{id}"} 2`,
		`omnigate_api_outbound_messages_total{channel="webchat",result="sent"} 1`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(r.body), f.cust.ID) {
		t.Error("/metrics carries a customer id")
	}
}

func TestReadyzStoreDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	must(t, f.store.Close())
	r := f.do("GET", "/readyz", "", "")
	if r.status != 503 || r.errorCode(t) != "store_unavailable" {
		t.Fatalf("/readyz = %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/v1/customers/{cust}", adminToken, ""); r.status != 503 {
		t.Fatalf("read on a closed store = %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("/healthz = %d", r.status)
	}
}

func TestMergedCustomerIsReadOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if r := f.do("POST", "/v1/customers/{cust}/merge", adminToken, `{"from":"{other}","evidence":"same visitor signed in"}`); r.status != 200 {
		t.Fatalf("merge: %d %s", r.status, r.body)
	}
	r := f.do("GET", "/v1/customers/{other}", aliceToken, "")
	if r.status != 200 || r.json(t)["merged_into"] != f.cust.ID {
		t.Fatalf("GET merged: %d %s", r.status, r.body)
	}
	before := f.snapshot()
	for _, req := range []struct{ method, path, body string }{
		{"PATCH", "/v1/customers/{other}", `{"name":"x"}`},
		{"POST", "/v1/customers/{other}/merge", `{"from":"{cust}","evidence":"undo"}`},
	} {
		r := f.do(req.method, req.path, adminToken, req.body)
		if r.status != 409 || r.errorCode(t) != "merged" {
			t.Errorf("%s %s = %d %s, want 409 merged", req.method, req.path, r.status, r.body)
		}
	}
	if after := f.snapshot(); !reflect.DeepEqual(before, after) {
		t.Error("a refused write changed the store")
	}
}
