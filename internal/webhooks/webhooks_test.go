package webhooks

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

const (
	adminKey = "admin-key-0123456789"
	repToken = "alice-token-0123456789"
)

func testAuth() *auth.Authenticator {
	return auth.New(auth.Config{
		AdminKeys: []auth.Key{{Name: "ops", Key: adminKey}},
		Reps:      []auth.Rep{{ID: "alice", Token: repToken}},
	})
}

// fastConfig retries within milliseconds so tests run quickly.
func fastConfig() Config {
	return Config{AllowHTTP: true, RetryBase: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		PollInterval: 10 * time.Millisecond, Timeout: 2 * time.Second}
}

type receiver struct {
	srv *httptest.Server
	wh  *standardwebhooks.Webhook

	mu      sync.Mutex
	failFor int            // answer 500 to the first failFor requests of each webhook-id
	seen    map[string]int // webhook-id → requests
	ok      map[string]Body
	bad     []string
}

func newReceiver(t *testing.T, secret string, failFor int) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{wh: wh, seen: map[string]int{}, ok: map[string]Body{}, failFor: failFor}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	// Verified with the Standard Webhooks reference library.
	if err := r.wh.Verify(body, req.Header); err != nil {
		r.bad = append(r.bad, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("webhook-id")
	r.seen[id]++
	if r.seen[id] <= r.failFor {
		http.Error(w, "try later", http.StatusInternalServerError)
		return
	}
	var b Body
	if err := json.Unmarshal(body, &b); err != nil {
		r.bad = append(r.bad, err.Error())
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if _, dup := r.ok[id]; dup {
		r.bad = append(r.bad, "acknowledged twice: "+id)
	}
	r.ok[id] = b
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) snapshot() (ok map[string]Body, seen map[string]int, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok, seen = map[string]Body{}, map[string]int{}
	for k, v := range r.ok {
		ok[k] = v
	}
	for k, v := range r.seen {
		seen[k] = v
	}
	return ok, seen, append([]string(nil), r.bad...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startService(t *testing.T, cfg Config, store sessions.Store, ob Outbox, o Options) *Service {
	t.Helper()
	o.Store, o.Outbox = store, ob
	s, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// shell serves s's routes through internal/api, as the gateway does, with
// testAuth's tokens and its metrics in reg (nil: none).
func shell(t *testing.T, s *Service, store sessions.Store, reg *prometheus.Registry) http.Handler {
	t.Helper()
	h, err := api.New(api.Config{}, api.Options{Store: store, Auth: testAuth(), Metrics: reg, Routes: s.Routes()})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRetryThenDeliverOnce: a receiver that fails three times then
// succeeds gets the event with one webhook-id on all four attempts, and
// acknowledges it once; the delivery log shows the four attempts.
func TestRetryThenDeliverOnce(t *testing.T) {
	t.Parallel()
	secret := signing.NewSecret()
	rcv := newReceiver(t, secret, 3)
	cfg := fastConfig()
	cfg.Endpoints = []EndpointConfig{{ID: "crm", URL: rcv.srv.URL, Secret: secret, EventTypes: []string{"message_in"}}}
	store := sessions.NewMemoryStore()
	defer store.Close()
	ob := NewMemoryOutbox()
	svc := startService(t, cfg, store, ob, Options{})

	ctx := context.Background()
	c, _, _ := store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityPhone, Value: "+8613812345678"}, sessions.Customer{})
	ev, _, err := store.Append(ctx, sessions.Event{CustomerID: c.ID, Kind: sessions.KindMessageIn, Channel: "sms",
		Payload: json.RawMessage(`{"text":"hi"}`)})
	if err != nil {
		t.Fatal(err)
	}
	// Filtered out: not a message_in.
	note, _, err := store.Append(ctx, sessions.Event{CustomerID: c.ID, Kind: sessions.KindNote, Channel: "api", Payload: json.RawMessage(`{"text":"x"}`)})
	if err != nil {
		t.Fatal(err)
	}

	want := DeliveryID("crm", ev.ID)
	waitFor(t, "the delivery", func() bool { ok, _, _ := rcv.snapshot(); return len(ok) == 1 })
	ok, seen, bad := rcv.snapshot()
	if len(bad) > 0 {
		t.Fatalf("receiver problems: %v", bad)
	}
	if seen[want] != 4 || len(seen) != 1 {
		t.Fatalf("requests by webhook-id %v, want 4 of %s", seen, want)
	}
	if b := ok[want]; b.Type != "message_in" || b.Data.ID != ev.ID || b.Data.CustomerID != c.ID {
		t.Fatalf("body %+v", b)
	}
	waitFor(t, "the record", func() bool {
		d, _ := ob.Delivery(ctx, want)
		return d.State == StateDelivered
	})
	as, _, _ := ob.Attempts(ctx, "crm", "", 10)
	if len(as) != 4 || !as[0].OK || as[1].Status != 500 || as[3].N != 1 {
		t.Fatalf("log %+v", as)
	}
	// The note was taken off the feed and filtered out: the outbox holds
	// the one delivery, delivered, so nothing is due to be sent again.
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := svc.feed.WaitHandled(waitCtx, c.ID, note.Seq); err != nil {
		t.Fatal(err)
	}
	ds, _, _ := ob.Deliveries(ctx, DeliveryQuery{EndpointID: "crm"})
	if len(ds) != 1 || ds[0].ID != want || ds[0].State != StateDelivered {
		t.Fatalf("outbox = %+v, want only %s, delivered", ds, want)
	}
	if due, _ := ob.Due(ctx, time.Now().Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("due again after success: %+v", due)
	}
}

// TestDisableAndReplay: an endpoint failing continuously is disabled, the
// admin told, its pending deliveries dead-lettered; enabled and replayed,
// it gets them with their original webhook-ids.
func TestDisableAndReplay(t *testing.T) {
	t.Parallel()
	secret := signing.NewSecret()
	rcv := newReceiver(t, secret, 1<<30)
	cfg := fastConfig()
	cfg.DisableAfter = 50 * time.Millisecond
	cfg.Endpoints = []EndpointConfig{{ID: "crm", URL: rcv.srv.URL, Secret: secret}}
	store := sessions.NewMemoryStore()
	defer store.Close()
	ob := NewMemoryOutbox()
	disabled := make(chan Endpoint, 1)
	s := startService(t, cfg, store, ob, Options{OnDisable: func(ep Endpoint) { disabled <- ep }})

	ctx := context.Background()
	c, _, _ := store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityEmail, Value: "a@b.c"}, sessions.Customer{})
	ev, _, _ := store.Append(ctx, sessions.Event{CustomerID: c.ID, Kind: sessions.KindNote, Channel: "api", Payload: json.RawMessage(`{}`)})
	var ep Endpoint
	select {
	case ep = <-disabled:
	case <-time.After(10 * time.Second):
		t.Fatal("endpoint never disabled")
	}
	if !ep.Disabled || ep.DisabledReason == "" {
		t.Fatalf("%+v", ep)
	}
	// An event while disabled is dead-lettered at once, not lost.
	ev2, _, _ := store.Append(ctx, sessions.Event{CustomerID: c.ID, Kind: sessions.KindNote, Channel: "api", Payload: json.RawMessage(`{}`)})
	waitFor(t, "both dead letters", func() bool {
		dead, _, _ := ob.Deliveries(ctx, DeliveryQuery{EndpointID: "crm", State: StateDead})
		return len(dead) == 2
	})

	admin := shell(t, s, store, nil)
	call := func(method, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		w := httptest.NewRecorder()
		admin.ServeHTTP(w, req)
		return w
	}
	if w := call("POST", "/v1/webhooks/endpoints/crm/dead-letters/replay"); w.Code != http.StatusConflict {
		t.Fatalf("replay while disabled: %d %s", w.Code, w.Body)
	}
	rcv.mu.Lock()
	rcv.failFor = 0
	rcv.seen = map[string]int{}
	rcv.mu.Unlock()
	if w := call("POST", "/v1/webhooks/endpoints/crm/enable"); w.Code != http.StatusOK {
		t.Fatalf("enable: %d %s", w.Code, w.Body)
	}
	w := call("POST", "/v1/webhooks/endpoints/crm/dead-letters/replay")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"replayed":2`) {
		t.Fatalf("replay: %d %s", w.Code, w.Body)
	}
	waitFor(t, "replayed deliveries", func() bool { ok, _, _ := rcv.snapshot(); return len(ok) == 2 })
	ok, _, bad := rcv.snapshot()
	if len(bad) > 0 {
		t.Fatal(bad)
	}
	for _, e := range []sessions.Event{ev, ev2} {
		if _, got := ok[DeliveryID("crm", e.ID)]; !got {
			t.Fatalf("event %s not delivered under its webhook-id", e.ID)
		}
	}
}

// TestRecoveryFromTimeline: events appended while no dispatcher runs (a
// restart, a feed cut off as slow) are delivered by the recovery pass, for
// a customer the outbox knows and for a new one found through its
// conversation.
func TestRecoveryFromTimeline(t *testing.T) {
	t.Parallel()
	secret := signing.NewSecret()
	rcv := newReceiver(t, secret, 0)
	cfg := fastConfig()
	cfg.Endpoints = []EndpointConfig{{ID: "crm", URL: rcv.srv.URL, Secret: secret}}
	store := sessions.NewMemoryStore()
	defer store.Close()
	ob := NewMemoryOutbox()
	ctx := context.Background()

	s1 := startService(t, cfg, store, ob, Options{})
	known, _, _ := store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityEmail, Value: "k@x.y"}, sessions.Customer{})
	_, _, _ = store.Append(ctx, sessions.Event{CustomerID: known.ID, Kind: sessions.KindNote, Channel: "api", Payload: json.RawMessage(`{}`)})
	waitFor(t, "first delivery", func() bool { ok, _, _ := rcv.snapshot(); return len(ok) == 1 })
	s1.Close()

	// While down: more for the known customer, and a new customer whose
	// only trace is a conversation.
	for range 3 {
		_, _, _ = store.Append(ctx, sessions.Event{CustomerID: known.ID, Kind: sessions.KindNote, Channel: "api", Payload: json.RawMessage(`{}`)})
	}
	fresh, _, _ := store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityEmail, Value: "f@x.y"}, sessions.Customer{})
	cv, _, _ := store.OpenConversation(ctx, fresh.ID, "", "sms")
	_, _, _ = store.Append(ctx, sessions.Event{CustomerID: fresh.ID, ConversationID: cv.ID, Kind: sessions.KindMessageIn, Channel: "sms", Payload: json.RawMessage(`{}`)})

	startService(t, cfg, store, ob, Options{})
	waitFor(t, "recovered deliveries", func() bool { ok, _, _ := rcv.snapshot(); return len(ok) == 6 })
	if _, _, bad := rcv.snapshot(); len(bad) > 0 {
		t.Fatal(bad)
	}
}

// gatedOutbox holds every Enqueue until open is closed.
type gatedOutbox struct {
	Outbox
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (g *gatedOutbox) Enqueue(ctx context.Context, ds []Delivery, cursors map[string]uint64, checkpoint time.Time) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	return g.Outbox.Enqueue(ctx, ds, cursors, checkpoint)
}

// TestRecoveryAfterFeedGap: a dispatcher that falls behind the feed is cut
// off (ErrSlow); once subscribed again, a recovery pass delivers what was
// appended while it had no subscription.
func TestRecoveryAfterFeedGap(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.Endpoints = []EndpointConfig{{ID: "crm", URL: "http://127.0.0.1:1/", Secret: signing.NewSecret(), EventTypes: []string{"message_in"}}}
	store := sessions.NewMemoryStore()
	defer store.Close()
	ob := &gatedOutbox{Outbox: NewMemoryOutbox(), entered: make(chan struct{}), open: make(chan struct{})}
	startService(t, cfg, store, ob, Options{})

	ctx := context.Background()
	c, _, _ := store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityEmail, Value: "g@x.y"}, sessions.Customer{})
	appendEv := func(kind sessions.EventKind) sessions.Event {
		ev, _, err := store.Append(ctx, sessions.Event{CustomerID: c.ID, Kind: kind, Channel: "api", Payload: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	appendEv(sessions.KindMessageIn)
	<-ob.entered
	// More than the dispatcher's queue and subscription hold: cut off.
	for range sessions.SubscriptionBuffer + 300 {
		appendEv(sessions.KindNote)
	}
	missed := appendEv(sessions.KindMessageIn)
	close(ob.open)
	waitFor(t, "the missed event's delivery", func() bool {
		_, err := ob.Delivery(ctx, DeliveryID("crm", missed.ID))
		return err == nil
	})
}

// intakeRig signs and posts events.
type intakeRig struct {
	t      *testing.T
	h      http.Handler
	secret signing.Secret
	store  *sessions.MemoryStore
}

func newIntake(t *testing.T) *intakeRig {
	t.Helper()
	sec := signing.NewSecret()
	cfg := fastConfig()
	cfg.NoDelivery = true
	cfg.DefaultRegion = "CN"
	cfg.Integrations = []Integration{{Name: "other", Secret: signing.NewSecret()}, {Name: "shop", Secret: sec}}
	store := sessions.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	s := startService(t, cfg, store, NewMemoryOutbox(), Options{Reps: func(id string) bool { return id == "alice" },
		WeChatAccounts: []string{"brand-a"}, Sites: []string{"shop"}})
	parsed, _ := signing.ParseSecret(sec)
	return &intakeRig{t: t, h: shell(t, s, store, prometheus.NewRegistry()), secret: parsed, store: store}
}

func (r *intakeRig) post(id, body string, ts time.Time, edit func(*http.Request)) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	r.secret.SetHeaders(req.Header, id, ts, []byte(body))
	if edit != nil {
		edit(req)
	}
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	return w
}

func decodeResp(t *testing.T, w *httptest.ResponseRecorder) EventResponse {
	t.Helper()
	var r EventResponse
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestIntakeTopicAndReplay: an event with a topic opens one conversation, a
// second with the same topic joins it; replaying a webhook-id answers the
// same and changes nothing, even after the conversation was resolved.
func TestIntakeTopicAndReplay(t *testing.T) {
	t.Parallel()
	r := newIntake(t)
	ctx := context.Background()
	now := time.Now()
	first := `{"customer":{"phone":"138 1234 5678"},"type":"order.shipped","data":{"order":"1001","carrier":"SF"},` +
		`"update":{"tier":"A","vip":true,"owner":"alice","tags":["ecommerce"]},"conversation":{"topic":"order-1001","open":true}}`
	w1 := r.post("wh_1", first, now, nil)
	r1 := decodeResp(t, w1)
	if r1.ConversationID == "" || r1.Seq == 0 || w1.Header().Get("Omnigate-Duplicate") != "" {
		t.Fatalf("first: %+v %v", r1, w1.Header())
	}
	second := `{"customer":{"phone":"+8613812345678"},"type":"order.delayed","data":{"order":"1001"},"conversation":{"topic":"order-1001","open":true}}`
	r2 := decodeResp(t, r.post("wh_2", second, now, nil))
	if r2.ConversationID != r1.ConversationID || r2.CustomerID != r1.CustomerID {
		t.Fatalf("same topic did not join: %+v vs %+v", r2, r1)
	}
	c, _ := r.store.Customer(ctx, r1.CustomerID)
	if c.Tier != "A" || !c.VIP || c.Owner != "alice" || len(c.Tags) != 1 {
		t.Fatalf("customer not updated: %+v", c)
	}
	cs, _, _ := r.store.Conversations(ctx, sessions.ConversationQuery{CustomerID: c.ID})
	if len(cs) != 1 || cs[0].Topic != "order-1001" || cs[0].Channel != "api" {
		t.Fatalf("conversations %+v", cs)
	}
	tl, _ := r.store.Timeline(ctx, c.ID, 0, 100)
	var integ int
	for _, ev := range tl {
		if ev.Kind == sessions.KindIntegrator {
			integ++
			if ev.Author != "integrator:shop" || ev.Channel != "api" || ev.ConversationID != r1.ConversationID {
				t.Fatalf("event %+v", ev)
			}
		}
	}
	if integ != 2 {
		t.Fatalf("%d integrator events", integ)
	}

	// Someone changes the customer; a replay must not undo it.
	tierB := sessions.TierB
	_, _ = r.store.UpdateCustomer(ctx, c.ID, sessions.CustomerUpdate{Tier: &tierB})
	snapshot := func() string {
		tl, _ := r.store.Timeline(ctx, c.ID, 0, 1000)
		cs, _, _ := r.store.Conversations(ctx, sessions.ConversationQuery{CustomerID: c.ID})
		cu, _ := r.store.Customer(ctx, c.ID)
		b, _ := json.Marshal([]any{tl, cs, cu})
		return string(b)
	}
	before := snapshot()
	w := r.post("wh_1", first, time.Now(), nil)
	if got := decodeResp(t, w); got != r1 || w.Header().Get("Omnigate-Duplicate") != "true" {
		t.Fatalf("replay answered %+v (%v), want %+v", got, w.Header(), r1)
	}
	if snapshot() != before {
		t.Fatal("replay changed something")
	}
	// Resolved, then replayed: no new conversation either.
	st := sessions.StatusResolved
	_, _, _ = r.store.UpdateConversation(ctx, r1.ConversationID, sessions.ConversationUpdate{Status: &st})
	before = snapshot()
	if got := decodeResp(t, r.post("wh_1", first, time.Now(), nil)); got != r1 {
		t.Fatalf("replay after resolve: %+v", got)
	}
	if snapshot() != before {
		t.Fatal("replay after resolve changed something")
	}
	// The same id for another event is a client bug.
	if w := r.post("wh_1", second, time.Now(), nil); w.Code != http.StatusConflict {
		t.Fatalf("id reused: %d %s", w.Code, w.Body)
	}
	// A new event on the topic now opens a new conversation.
	r3 := decodeResp(t, r.post("wh_3", second, time.Now(), nil))
	if r3.ConversationID == r1.ConversationID || r3.ConversationID == "" {
		t.Fatalf("after resolve: %+v", r3)
	}
}

func TestIntakeRefusals(t *testing.T) {
	t.Parallel()
	r := newIntake(t)
	ok := `{"customer":{"email":"A@B.C"},"type":"ticket.created"}`
	tests := []struct {
		name string
		body string
		ts   time.Time
		edit func(*http.Request)
		code int
		want string
	}{
		{"accepted", ok, time.Now(), nil, 200, `"customer_id"`},
		{"unsigned", ok, time.Now(), func(r *http.Request) { r.Header.Del("webhook-signature") }, 401, `"unauthorized"`},
		{"wrong secret", ok, time.Now(), func(r *http.Request) {
			s, _ := signing.ParseSecret(signing.NewSecret())
			s.SetHeaders(r.Header, "wh_x", time.Now(), []byte(ok))
		}, 401, `"unauthorized"`},
		{"tampered", ok, time.Now(), func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(ok, "created", "deleted", 1)))
		}, 401, `"unauthorized"`},
		{"6 minutes old", ok, time.Now().Add(-6 * time.Minute), nil, 401, `more than 5m0s`},
		{"6 minutes ahead", ok, time.Now().Add(6 * time.Minute), nil, 401, `more than 5m0s`},
		{"not json content type", ok, time.Now(), func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 415, `"unsupported_media_type"`},
		{"unknown field", `{"customer":{"email":"a@b.c"},"type":"x","extra":1}`, time.Now(), nil, 400, `"malformed_json"`},
		{"trailing data", ok + ` {}`, time.Now(), nil, 400, `"malformed_json"`},
		{"two identities", `{"customer":{"email":"a@b.c","phone":"+8613812345678"},"type":"x"}`, time.Now(), nil, 400, `exactly one`},
		{"no identity", `{"customer":{},"type":"x"}`, time.Now(), nil, 400, `exactly one`},
		{"bad phone", `{"customer":{"phone":"12"},"type":"x"}`, time.Now(), nil, 400, `"invalid"`},
		{"bad type", `{"customer":{"email":"a@b.c"},"type":"has space"}`, time.Now(), nil, 400, `type`},
		{"data not an object", `{"customer":{"email":"a@b.c"},"type":"x","data":[1]}`, time.Now(), nil, 400, `data`},
		{"bad tier", `{"customer":{"email":"a@b.c"},"type":"x","update":{"tier":"Z"}}`, time.Now(), nil, 400, `tier`},
		{"unknown owner", `{"customer":{"email":"a@b.c"},"type":"x","update":{"owner":"mallory"}}`, time.Now(), nil, 400, `owner`},
		{"topic missing", `{"customer":{"email":"a@b.c"},"type":"x","conversation":{"open":true}}`, time.Now(), nil, 400, `topic`},
		{"too large", `{"customer":{"email":"a@b.c"},"type":"x","data":{"x":"` + strings.Repeat("a", 40<<10) + `"}}`, time.Now(), nil, 413, `"too_large"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := r.post("wh_r"+strconv.Itoa(i), tt.body, tt.ts, tt.edit)
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("%d %s, want %d containing %s", w.Code, w.Body, tt.code, tt.want)
			}
			if w.Code != 200 && !strings.Contains(w.Body.String(), `{"error":{"code":`) {
				t.Fatalf("error shape: %s", w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); (w.Code == 401) != (got == `Standard-Webhooks realm="omnigate"`) {
				t.Fatalf("%d with WWW-Authenticate %q", w.Code, got)
			}
		})
	}
	// Every request, refused before its signature was checked or after,
	// is counted by the API's shell on /metrics.
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`omnigate_http_requests_total{code="2xx",route="POST /v1/events"} 1`,
		`omnigate_http_requests_total{code="4xx",route="POST /v1/events"} ` + strconv.Itoa(len(tests)-1),
		`omnigate_http_request_duration_seconds_count{route="POST /v1/events"} ` + strconv.Itoa(len(tests)),
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.NoDelivery, cfg.AllowHTTP = true, false
	cfg.Endpoints = []EndpointConfig{{ID: "crm", URL: "https://crm.example.com/hook", Secret: signing.NewSecret()}}
	store := sessions.NewMemoryStore()
	defer store.Close()
	s := startService(t, cfg, store, NewMemoryOutbox(), Options{})
	h := shell(t, s, store, nil)
	call := func(token, method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	if w := call("", "GET", "/v1/webhooks/endpoints", ""); w.Code != 401 {
		t.Fatalf("anonymous: %d", w.Code)
	}
	if w := call(repToken, "GET", "/v1/webhooks/endpoints", ""); w.Code != 403 ||
		!strings.HasPrefix(w.Body.String(), `{"error":{"code":"forbidden","message":"role rep may not GET /v1/webhooks/endpoints"}}`) {
		t.Fatalf("rep: %d %s", w.Code, w.Body)
	}
	w := call(adminKey, "POST", "/v1/webhooks/endpoints", `{"url":"https://erp.example.com/in","event_types":["integrator","message_in"],"description":"ERP"}`)
	if w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	var created EndpointView
	_ = json.Unmarshal(w.Body.Bytes(), &created)
	if !strings.HasPrefix(created.Secret, "whsec_") || !strings.HasPrefix(created.ID, "ep_") || created.Source != "api" {
		t.Fatalf("created %+v", created)
	}
	w = call(adminKey, "GET", "/v1/webhooks/endpoints", "")
	if w.Code != 200 || strings.Contains(w.Body.String(), "whsec_") || !strings.Contains(w.Body.String(), created.ID) ||
		!strings.Contains(w.Body.String(), `"id":"crm"`) {
		t.Fatalf("list (secrets must not show): %s", w.Body)
	}
	for _, tt := range []struct {
		body, want string
	}{
		{`{"url":"http://plain.example.com"}`, "https"},
		{`{"url":"https://x.example.com","event_types":["nope"]}`, "event_types"},
		{`{"url":"https://x.example.com","bogus":1}`, "malformed_json"},
	} {
		if w := call(adminKey, "POST", "/v1/webhooks/endpoints", tt.body); w.Code != 400 || !strings.Contains(w.Body.String(), tt.want) {
			t.Fatalf("create %s: %d %s", tt.body, w.Code, w.Body)
		}
	}
	if w := call(adminKey, "DELETE", "/v1/webhooks/endpoints/crm", ""); w.Code != 409 {
		t.Fatalf("delete configured: %d", w.Code)
	}
	if w := call(adminKey, "GET", "/v1/webhooks/endpoints/"+created.ID+"/deliveries?state=dead&limit=5", ""); w.Code != 200 ||
		!strings.Contains(w.Body.String(), `"data":[]`) {
		t.Fatalf("deliveries: %d %s", w.Code, w.Body)
	}
	if w := call(adminKey, "GET", "/v1/webhooks/endpoints/"+created.ID+"/deliveries?stat=dead", ""); w.Code != 400 {
		t.Fatalf("typo in query: %d", w.Code)
	}
	for _, p := range []string{"/attempts", "/dead-letters"} {
		if w := call(adminKey, "GET", "/v1/webhooks/endpoints/"+created.ID+p, ""); w.Code != 200 {
			t.Fatalf("%s: %d %s", p, w.Code, w.Body)
		}
	}
	if w := call(adminKey, "POST", "/v1/webhooks/deliveries/msg_nope/replay", ""); w.Code != 404 {
		t.Fatalf("replay unknown: %d", w.Code)
	}
	if w := call(adminKey, "DELETE", "/v1/webhooks/endpoints/"+created.ID, ""); w.Code != 204 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if w := call(adminKey, "GET", "/v1/webhooks/endpoints/"+created.ID, ""); w.Code != 404 {
		t.Fatalf("after delete: %d", w.Code)
	}
	if got := len(s.Routes()); got != 12 {
		t.Fatalf("%d routes, want /v1/events and 11 admin routes", got)
	}
}

// TestOutboxErrorsInCatalogue: the outbox's errors reach the client
// through internal/api's catalogue, as the store's do.
func TestOutboxErrorsInCatalogue(t *testing.T) {
	t.Parallel()
	store := sessions.NewMemoryStore()
	defer store.Close()
	ob := NewMemoryOutbox()
	cfg := fastConfig()
	cfg.NoDelivery = true
	h := shell(t, startService(t, cfg, store, ob, Options{}), store, nil)
	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	if w := get("/v1/webhooks/deliveries/msg_nope"); w.Code != 404 ||
		!strings.HasPrefix(w.Body.String(), `{"error":{"code":"not_found","message":"webhooks: not found: delivery msg_nope"}}`) {
		t.Fatalf("unknown delivery: %d %s", w.Code, w.Body)
	}
	_ = ob.Close()
	if w := get("/v1/webhooks/endpoints"); w.Code != 503 || !strings.Contains(w.Body.String(), `"store_unavailable"`) {
		t.Fatalf("closed outbox: %d %s", w.Code, w.Body)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for n := 1; n < 80; n++ {
		d := backoff(5*time.Second, time.Hour, n)
		want := 5 * time.Second << (n - 1)
		if n > 12 || want > time.Hour {
			want = time.Hour
		}
		if d < want/2 || d > want {
			t.Fatalf("retry %d: %v outside [%v, %v]", n, d, want/2, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	sec := signing.NewSecret()
	bad := Config{
		Integrations: []Integration{{Name: "a", Secret: sec}, {Name: "a", Secret: sec}, {Name: "b b", Secret: "nope"}},
		Endpoints:    []EndpointConfig{{ID: "ep_x", URL: "http://x", Secret: "y", EventTypes: []string{"bogus"}}},
		RetryBase:    -1,
	}
	err := bad.Validate()
	for _, want := range []string{`integrations[1].name: "a" used twice`, "same secret", "integrations[2].name",
		"integrations[2].secret", "endpoints[0].id", "endpoints[0].url", "endpoints[0].secret", "endpoints[0].event_types", "retry_base"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	env := Config{Integrations: []Integration{{Name: "a", SecretEnv: "S"}}}
	if err := env.ResolveEnv(func(string) (string, bool) { return sec, true }); err != nil || env.Integrations[0].Secret != sec {
		t.Fatal(err)
	}
}

// TestNoEndpointNoWrite: while no endpoint exists the dispatcher writes
// nothing to the outbox (no cursor moves), and an endpoint created later
// gets the events after its creation, read from the timeline across the
// gap, and none from before.
func TestNoEndpointNoWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sessions.NewMemoryStore()
	defer store.Close()
	ob := NewMemoryOutbox()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	d := &dispatcher{store: store, ob: ob, log: slog.New(slog.DiscardHandler), now: time.Now, kick: func() {}, m: m, retry: map[string]bool{}}

	c, _, _ := store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityPhone, Value: "+8613812345678"}, sessions.Customer{})
	appendIn := func(text string) sessions.Event {
		ev, _, err := store.Append(ctx, sessions.Event{CustomerID: c.ID, Kind: sessions.KindMessageIn, Channel: "sms",
			Payload: json.RawMessage(`{"text":"` + text + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	before := appendIn("before")
	if err := d.advance(ctx, []sessions.Event{before}); err != nil {
		t.Fatal(err)
	}
	if n, err := d.recoverAll(ctx); err != nil || n != 0 {
		t.Fatalf("recovery without endpoints: %d customers, %v", n, err)
	}
	if _, known, _ := ob.Cursor(ctx, c.ID); known {
		t.Fatal("a cursor moved with no endpoint to deliver to")
	}

	time.Sleep(2 * time.Millisecond) // the endpoint is created after "before"
	if err := ob.PutEndpoint(ctx, Endpoint{ID: "crm", URL: "https://x", Secret: signing.NewSecret(), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	missed := appendIn("missed by the feed")
	after := appendIn("after")
	if err := d.advance(ctx, []sessions.Event{after}); err != nil {
		t.Fatal(err)
	}
	if cur, known, _ := ob.Cursor(ctx, c.ID); !known || cur != after.Seq {
		t.Fatalf("cursor %d (known %v), want %d", cur, known, after.Seq)
	}
	for _, c := range []struct {
		ev   sessions.Event
		want bool
	}{{before, false}, {missed, true}, {after, true}} {
		_, err := ob.Delivery(ctx, DeliveryID("crm", c.ev.ID))
		if got := err == nil; got != c.want {
			t.Errorf("delivery of %s: present %v, want %v (%v)", c.ev.Payload, got, c.want, err)
		}
	}
}
