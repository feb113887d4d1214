package api_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// contactFixture is newFixture's server rebuilt with a real contact policy
// (cfg) on a memory ledger and do-not-contact list, behind the Sender too,
// and a clock at 10:00 in Shanghai, where the customer's +86 number puts
// them.
type contactFixture struct {
	*fixture
	clock  *router.ManualClock
	ledger *contact.MemoryLedger
	sups   *contact.MemorySuppressions
}

func newContactFixture(t *testing.T, cfg contact.Config) *contactFixture {
	t.Helper()
	f := &contactFixture{fixture: newFixture(t), clock: router.NewManualClock(time.Date(2026, 3, 2, 10, 0, 0, 0, shanghai)),
		ledger: contact.NewMemoryLedger(contact.LedgerOptions{}), sups: contact.NewMemorySuppressions()}
	policy, err := contact.NewPolicy(cfg, contact.Options{Ledger: f.ledger, Suppressions: f.sups, Store: f.store, Clock: f.clock})
	must(t, err)
	chans, err := channels.NewRegistry(f.webchat, f.wechat)
	must(t, err)
	f.reg = prometheus.NewRegistry()
	sender, err := channels.NewSender(channels.SenderOptions{Store: f.store, Channels: chans, Policy: policy, Metrics: f.reg})
	must(t, err)
	f.srv, err = api.New(api.Config{MaxBodyBytes: 4 << 10}, api.Options{
		Store: f.store, Auth: auth.New(authConfig), Sender: sender, Metrics: f.reg, Now: f.clock.Now,
		Contact: &api.ContactDeps{Policy: policy, Ledger: f.ledger, Suppressions: f.sups},
	})
	must(t, err)
	return f
}

type checkAnswer struct {
	Decision string
	Until    time.Time
	At       time.Time
	Reasons  []contact.Reason
}

func (f *contactFixture) check(body string) checkAnswer {
	f.t.Helper()
	r := f.do("POST", "/v1/contact-policy/check", carolToken, body)
	if r.status != 200 {
		f.t.Fatalf("check %s = %d %s", body, r.status, r.body)
	}
	var a checkAnswer
	must(f.t, json.Unmarshal(r.body, &a))
	if a.Reasons == nil {
		f.t.Fatalf("reasons is not a list: %s", r.body)
	}
	return a
}

func codes(rs []contact.Reason) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

func TestContactCheck(t *testing.T) {
	t.Parallel()
	yes := true
	f := newContactFixture(t, contact.Config{Campaigns: map[string]contact.Override{"spring": {NeedsConsent: &yes}}})
	at2200 := time.Date(2026, 3, 2, 22, 0, 0, 0, shanghai)
	next0800 := time.Date(2026, 3, 3, 8, 0, 0, 0, shanghai)
	must(t, f.sups.Add(context.Background(), contact.Suppression{Kind: contact.KindPhone, Value: phone, Channel: sessions.ChannelSMS,
		Source: "test", At: f.clock.Now()}))

	tests := []struct {
		name, body string
		clock      time.Time // zero: 10:00 in Shanghai
		decision   string
		reasons    []string
		until      time.Time
	}{
		{"notice by day", `{"customer_id":"{cust}","channel":"webchat","purpose":"notice"}`, time.Time{}, "allow", []string{}, time.Time{}},
		{"notice at night", `{"customer_id":"{cust}","channel":"webchat","purpose":"notice"}`, at2200, "defer", []string{"quiet_hours"}, next0800},
		{"what-if: tomorrow morning, asked at night", `{"customer_id":"{cust}","channel":"webchat","purpose":"notice","at":"2026-03-03T09:00:00+08:00"}`,
			at2200, "allow", []string{}, time.Time{}},
		{"what-if: tonight, asked by day", `{"customer_id":"{cust}","channel":"webchat","purpose":"notice","at":"2026-03-02T14:00:00Z"}`,
			time.Time{}, "defer", []string{"quiet_hours"}, next0800},
		{"do not contact on sms", `{"customer_id":"{cust}","channel":"sms","purpose":"notice"}`, time.Time{}, "deny", []string{"do_not_contact"}, time.Time{}},
		{"every reason at once", `{"customer_id":"{cust}","channel":"sms","purpose":"sales","campaign":"spring"}`, at2200,
			"deny", []string{"do_not_contact", "no_consent", "quiet_hours", "open_work"}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.clock
			if now.IsZero() {
				now = time.Date(2026, 3, 2, 10, 0, 0, 0, shanghai)
			}
			f.clock.Set(now)
			a := f.check(tt.body)
			if a.Decision != tt.decision || !reflect.DeepEqual(codes(a.Reasons), tt.reasons) || !a.Until.Equal(tt.until) {
				t.Errorf("check = %s %v until %v, want %s %v until %v", a.Decision, codes(a.Reasons), a.Until, tt.decision, tt.reasons, tt.until)
			}
		})
	}
	// A check is a dry run: nothing went into the ledger.
	if ts, err := f.ledger.Touches(context.Background(), f.cust.ID, time.Time{}); err != nil || len(ts) != 0 {
		t.Errorf("checks recorded %v (%v)", ts, err)
	}
}

func TestContactCheckRefuses(t *testing.T) {
	t.Parallel()
	f := newContactFixture(t, contact.Config{})
	tests := []struct {
		name, token, body string
		status            int
		code, message     string
	}{
		{"unknown purpose", carolToken, `{"customer_id":"{cust}","channel":"sms","purpose":"spam"}`, 400, "invalid", `"spam" is not a configured purpose`},
		{"unknown channel", carolToken, `{"customer_id":"{cust}","channel":"fax","purpose":"sales"}`, 400, "invalid", `"fax" is not a channel`},
		{"no customer id", carolToken, `{"channel":"sms","purpose":"sales"}`, 400, "invalid", "customer_id is required"},
		{"bad time", carolToken, `{"customer_id":"{cust}","channel":"sms","purpose":"sales","at":"tomorrow"}`, 400, "invalid", `at: "tomorrow" is not an RFC 3339 time`},
		{"no such customer", integratorToken, `{"customer_id":"cus_nope","channel":"sms","purpose":"sales"}`, 404, "not_found", "cus_nope"},
		{"rep", aliceToken, `{"customer_id":"{cust}","channel":"sms","purpose":"sales"}`, 403, "forbidden", "rep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do("POST", "/v1/contact-policy/check", tt.token, tt.body)
			if r.status != tt.status || r.errorCode(t) != tt.code || !strings.Contains(r.json(t)["error"].(map[string]any)["message"].(string), tt.message) {
				t.Errorf("check = %d %s, want %d %s with %q", r.status, r.body, tt.status, tt.code, tt.message)
			}
		})
	}
	t.Run("no policy configured", func(t *testing.T) {
		plain := newFixture(t)
		for _, route := range [][2]string{
			{"POST", "/v1/contact-policy/check"}, {"GET", "/v1/suppressions"}, {"GET", "/v1/customers/{cust}/contacts"},
		} {
			body := ""
			if route[0] == "POST" {
				body = `{"customer_id":"{cust}","channel":"sms","purpose":"sales"}`
			}
			if r := plain.do(route[0], route[1], adminToken, body); r.status != 404 || r.errorCode(t) != "not_found" {
				t.Errorf("%s %s = %d %s", route[0], route[1], r.status, r.body)
			}
		}
	})
}

func TestCustomerContacts(t *testing.T) {
	t.Parallel()
	f := newContactFixture(t, contact.Config{})
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i, ch := range []string{"sms", "webchat", "voice", "wechat"} {
		must(t, f.ledger.Record(ctx, contact.Touch{ID: "t" + string(rune('1'+i)), CustomerID: f.cust.ID, Channel: ch,
			Direction: contact.Outbound, Purpose: "service", At: base.Add(time.Duration(i) * time.Hour)}))
	}
	ids := func(r response) ([]string, string) {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("contacts = %d %s", r.status, r.body)
		}
		var page api.Page[contact.Touch]
		must(t, json.Unmarshal(r.body, &page))
		var out []string
		for _, tc := range page.Data {
			out = append(out, tc.ID)
		}
		return out, page.NextCursor
	}
	if got, next := ids(f.do("GET", "/v1/customers/{cust}/contacts", aliceToken, "")); !reflect.DeepEqual(got, []string{"t4", "t3", "t2", "t1"}) || next != "" {
		t.Errorf("newest first = %v %q", got, next)
	}
	if got, _ := ids(f.do("GET", "/v1/customers/{cust}/contacts?since=2026-03-01T10:00:00Z", integratorToken, "")); !reflect.DeepEqual(got, []string{"t4", "t3", "t2"}) {
		t.Errorf("since = %v", got)
	}
	// Pages stay in place while a new touch arrives.
	var all []string
	cursor := ""
	for {
		path := "/v1/customers/{cust}/contacts?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		page, next := ids(f.do("GET", path, carolToken, ""))
		all = append(all, page...)
		if next == "" {
			break
		}
		must(t, f.ledger.Record(ctx, contact.Touch{ID: "t9", CustomerID: f.cust.ID, Channel: "sms", Direction: contact.Inbound,
			Purpose: "service", At: base.Add(10 * time.Hour)}))
		cursor = next
	}
	if !reflect.DeepEqual(all, []string{"t4", "t3", "t2", "t1"}) {
		t.Errorf("pages = %v", all)
	}
	for _, tt := range []struct{ path, code string }{
		{"/v1/customers/{cust}/contacts?since=yesterday", "invalid"},
		{"/v1/customers/{cust}/contacts?cursor=%21", "invalid"},
		{"/v1/customers/{cust}/contacts?sinse=2026-03-01T00:00:00Z", "invalid"},
		{"/v1/customers/cus_nope/contacts", "not_found"},
	} {
		if r := f.do("GET", tt.path, adminToken, ""); r.errorCode(t) != tt.code {
			t.Errorf("%s = %d %s", tt.path, r.status, r.body)
		}
	}
}

// TestRefusalIsRecorded: a message the policy refuses is not sent, and the
// refusal is on the timeline (by whoever tried, with the reasons and
// until) and counted by reason.
func TestRefusalIsRecorded(t *testing.T) {
	t.Parallel()
	f := newContactFixture(t, contact.Config{})
	f.write(f.conv, sessions.ChannelWebchat)
	must(t, f.sups.Add(context.Background(), contact.Suppression{Kind: contact.KindCustomer, Value: f.cust.ID,
		Channel: sessions.ChannelWebchat, Source: "test", At: f.clock.Now()}))

	last := func() (sessions.Event, sessions.ContactRefusal) {
		t.Helper()
		evs := f.events(f.cust.ID)
		ev := evs[len(evs)-1]
		var p sessions.ContactRefusal
		if ev.Kind != sessions.KindContactRefused || json.Unmarshal(ev.Payload, &p) != nil {
			t.Fatalf("last event = %+v", ev)
		}
		return ev, p
	}

	r := f.do("POST", "/v1/conversations/{conv}/messages", carolToken, `{"text":"hi","client_id":"c1"}`)
	if r.status != 409 || r.errorCode(t) != "contact_refused" || len(f.webchat.Sent()) != 0 {
		t.Fatalf("reply = %d %s", r.status, r.body)
	}
	ev, p := last()
	want := sessions.ContactRefusal{Decision: "deny", Reasons: []string{"do_not_contact"}, Channel: "webchat", Purpose: "reply"}
	if ev.Author != "rep:carol" || ev.ConversationID != f.conv.ID || ev.Channel != sessions.ChannelSystem || !reflect.DeepEqual(p, want) {
		t.Errorf("refusal = %+v %+v", ev, p)
	}
	if n := counter(t, f.reg, "omnigate_contact_refusals_total", map[string]string{"reason": "do_not_contact"}); n != 1 {
		t.Errorf("do_not_contact refusals = %v", n)
	}

	// An integrator's notice at night: deferred until 08:00 in Shanghai.
	must(t, f.sups.Remove(context.Background(), contact.KindCustomer, f.cust.ID, sessions.ChannelWebchat, ""))
	f.clock.Set(time.Date(2026, 3, 2, 22, 0, 0, 0, shanghai))
	r = f.do("POST", "/v1/customers/{cust}/messages", integratorToken, `{"text":"Your parcel ships today.","client_id":"n1"}`)
	if r.status != 409 || r.errorCode(t) != "contact_refused" {
		t.Fatalf("notice = %d %s", r.status, r.body)
	}
	ev, p = last()
	until := time.Date(2026, 3, 3, 8, 0, 0, 0, shanghai)
	if ev.Author != "integrator:crm" || p.Decision != "defer" || !reflect.DeepEqual(p.Reasons, []string{"quiet_hours"}) || !p.Until.Equal(until) {
		t.Errorf("deferral = %+v %+v", ev, p)
	}
	if n := counter(t, f.reg, "omnigate_contact_refusals_total", map[string]string{"reason": "quiet_hours"}); n != 1 {
		t.Errorf("quiet_hours refusals = %v", n)
	}

	// By day the notice goes out, and the ledger has it.
	f.clock.Set(time.Date(2026, 3, 3, 9, 0, 0, 0, shanghai))
	if r := f.do("POST", "/v1/customers/{cust}/messages", integratorToken, `{"text":"Your parcel ships today.","client_id":"n1"}`); r.status != 201 {
		t.Fatalf("notice by day = %d %s", r.status, r.body)
	}
	if ts, err := f.ledger.Touches(context.Background(), f.cust.ID, time.Time{}); err != nil || len(ts) != 1 || ts[0].Purpose != "notice" {
		t.Errorf("ledger = %+v (%v)", ts, err)
	}
}

// TestHandoffIsATask: a sales message for a customer with open work, under
// a policy that hands such contacts to the open work's rep, is not sent:
// the refusal lands in that conversation as a task, with the text.
func TestHandoffIsATask(t *testing.T) {
	t.Parallel()
	f := newContactFixture(t, contact.Config{Purposes: map[string]contact.PurposeConfig{
		"sales": {OpenWork: contact.OpenWork{Action: contact.OpenWorkHandoff}},
	}})
	f.write(f.conv, sessions.ChannelWebchat)
	r := f.do("POST", "/v1/customers/{cust}/messages", integratorToken,
		`{"text":"20% off this week","client_id":"s1","purpose":"sales"}`)
	if r.status != 409 || r.errorCode(t) != "contact_refused" || len(f.webchat.Sent()) != 0 {
		t.Fatalf("sales message = %d %s", r.status, r.body)
	}
	evs := f.events(f.cust.ID)
	ev := evs[len(evs)-1]
	var p sessions.ContactRefusal
	if ev.Kind != sessions.KindContactRefused || json.Unmarshal(ev.Payload, &p) != nil ||
		!p.HandedOff || p.Text != "20% off this week" || !slices.Contains(p.Reasons, "open_work") {
		t.Fatalf("last event = %+v, payload %+v; want a handoff", ev, p)
	}
	// In the open work's conversation, where its rep sees it.
	if c, err := f.store.Conversation(context.Background(), ev.ConversationID); err != nil || !c.Status.Active() || c.CustomerID != f.cust.ID {
		t.Fatalf("handoff in %q: %+v (%v), want the customer's open conversation", ev.ConversationID, c, err)
	}
}
