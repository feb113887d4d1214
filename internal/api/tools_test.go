package api_test

import (
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/canned"
	"github.com/omnigate/omnigate/sessions"
)

// TestCannedResponses: the configuration's team responses, a supervisor's
// team one and each rep's personal ones, listed by who may see them and
// expanded for a customer; reps may not write team ones.
func TestCannedResponses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var err error
	f.srv, err = api.New(api.Config{CannedResponses: canned.Config{Team: []canned.Entry{
		{Shortcut: "greet", Title: "Greeting", Text: "Hi {{customer.first_name|there}}, I'm {{rep.name}}."}}}},
		api.Options{Store: f.store, Auth: auth.New(authConfig), Metrics: prometheus.NewRegistry(), Canned: canned.NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		token, body string
		status      int
	}{
		{carolToken, `{"shortcut":"late","text":"Sorry for the wait, {{customer.name}}.","scope":"team"}`, 201},
		{aliceToken, `{"shortcut":"mine","text":"Alice's own","scope":"personal"}`, 201},
		{bobToken, `{"shortcut":"mine","text":"Bob's own","scope":"personal"}`, 201},
		{aliceToken, `{"shortcut":"team2","text":"x","scope":"team"}`, 403},
		{carolToken, `{"shortcut":"greet","text":"again","scope":"team"}`, 409},
		{aliceToken, `{"shortcut":"mine","text":"twice","scope":"personal"}`, 409},
		{aliceToken, `{"shortcut":"x","text":"{{customer.phone}}","scope":"personal"}`, 400},
		{adminToken, `{"shortcut":"x","text":"y","scope":"personal"}`, 403},
	}
	for _, s := range steps {
		if r := f.do("POST", "/v1/canned-responses", s.token, s.body); r.status != s.status {
			t.Errorf("POST %s = %d %s, want %d", s.body, r.status, r.body, s.status)
		}
	}
	type view struct {
		ID, Shortcut, Text, Scope, Expanded string
		ReadOnly                            bool `json:"read_only"`
	}
	list := func(token, query string) []view {
		r := f.do("GET", "/v1/canned-responses"+query, token, "")
		if r.status != 200 {
			t.Fatalf("GET = %d %s", r.status, r.body)
		}
		var page struct{ Data []view }
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		return page.Data
	}
	got := list(aliceToken, "?customer_id="+f.cust.ID)
	var texts []string
	for _, v := range got {
		texts = append(texts, v.Shortcut+"="+v.Expanded)
	}
	want := "greet=Hi Wang, I'm alice.|late=Sorry for the wait, Wang Fang.|mine=Alice's own"
	if strings.Join(texts, "|") != want {
		t.Errorf("alice sees %q, want %q", strings.Join(texts, "|"), want)
	}
	if !got[0].ReadOnly || got[0].ID != "cfg:greet" || got[2].Scope != "personal" {
		t.Errorf("alice's list %+v", got)
	}
	if sup := list(carolToken, ""); len(sup) != 2 || sup[0].Expanded != "" {
		t.Errorf("carol sees %+v, want the two team ones, unexpanded", sup)
	}
	// Deleting: another rep's is not found, the configuration's is read
	// only, one's own goes.
	mine := got[2].ID
	for _, s := range []struct {
		token, id string
		status    int
	}{{bobToken, mine, 404}, {carolToken, "cfg:greet", 409}, {aliceToken, got[1].ID, 404}, {aliceToken, mine, 204}, {carolToken, got[1].ID, 204}} {
		if r := f.do("DELETE", "/v1/canned-responses/"+url.PathEscape(s.id), s.token, ""); r.status != s.status {
			t.Errorf("DELETE %s by %s = %d %s, want %d", s.id, s.token, r.status, r.body, s.status)
		}
	}
	if n := len(list(aliceToken, "")); n != 1 {
		t.Errorf("after deletes alice sees %d, want the configured one", n)
	}
}

// TestCustomerSearch: one search box finds by name, email, tag or a phone
// number written as people write it; reps get answers masked and no phone
// lookup (api.rep_phone_lookup is off).
func TestCustomerSearch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tags := []string{"VIP", "late-delivery"}
	if _, err := f.store.UpdateCustomer(context.Background(), f.cust.ID, sessions.CustomerUpdate{Tags: &tags, Author: "system"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		token, query string
		status       int
		found        string
	}{
		{carolToken, "q=" + url.QueryEscape("+86 138-1234-5678"), 200, f.cust.ID},
		{carolToken, "q=WANG%40example.com", 200, f.cust.ID},
		{aliceToken, "q=%23vip", 200, f.cust.ID},
		{aliceToken, "tag=late-delivery", 200, f.cust.ID},
		{aliceToken, "q=fang", 200, f.cust.ID},
		{aliceToken, "q=nobody", 200, ""},
		{aliceToken, "q=" + url.QueryEscape("+8613812345678"), 403, ""},
		{aliceToken, "q=%23vip&tag=other", 400, ""},
	}
	for _, tt := range tests {
		r := f.do("GET", "/v1/customers?"+tt.query, tt.token, "")
		if r.status != tt.status {
			t.Errorf("%s = %d %s, want %d", tt.query, r.status, r.body, tt.status)
			continue
		}
		if r.status != 200 {
			continue
		}
		var page struct{ Data []sessions.Customer }
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		if (tt.found == "") != (len(page.Data) == 0) || (tt.found != "" && page.Data[0].ID != tt.found) {
			t.Errorf("%s found %v, want %q", tt.query, page.Data, tt.found)
		}
		if tt.token == aliceToken && strings.Contains(string(r.body), phone) {
			t.Errorf("%s: a rep's answer shows the phone number: %s", tt.query, r.body)
		}
	}
}

// TestPendingWithSnooze: pending with a snooze time records it on the
// status change; a time in the past, or a resolved conversation, is
// refused and changes nothing; reopen ends it.
func TestPendingWithSnooze(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	until := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	before := f.snapshot()
	for _, body := range []string{`{"snooze_until":"2001-01-01T00:00:00Z"}`, `{"snooze_until":"` + time.Now().AddDate(1, 0, 0).Format(time.RFC3339) + `"}`, `{"until":"x"}`} {
		if r := f.do("POST", "/v1/conversations/{conv}/pending", aliceToken, body); r.status != 400 {
			t.Errorf("%s = %d %s, want 400", body, r.status, r.body)
		}
	}
	if r := f.do("POST", "/v1/conversations/{convAlice}/pending", bobToken, ""); r.status != 403 {
		t.Errorf("bob on alice's = %d, want 403", r.status)
	}
	if after := f.snapshot(); !reflect.DeepEqual(before, after) {
		t.Error("a refused request changed the store")
	}
	r := f.do("POST", "/v1/conversations/{convAlice}/pending", aliceToken, `{"snooze_until":"`+until.Format(time.RFC3339)+`"}`)
	if r.status != 200 {
		t.Fatalf("pending = %d %s", r.status, r.body)
	}
	evs := f.events(f.cust.ID)
	last := evs[len(evs)-1]
	var ch sessions.ConversationChange
	if err := json.Unmarshal(last.Payload, &ch); err != nil || ch.Status != sessions.StatusPending || !ch.SnoozeUntil.Equal(until) || ch.Assignee != "alice" {
		t.Errorf("status change payload %s, want pending until %v", last.Payload, until)
	}
	if r := f.do("POST", "/v1/conversations/{convAlice}/reopen", aliceToken, ""); r.status != 200 || !strings.Contains(string(r.body), `"status":"open"`) {
		t.Errorf("reopen of a pending conversation = %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/v1/conversations/{convAlice}/resolve", aliceToken, ""); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := f.do("POST", "/v1/conversations/{convAlice}/pending", aliceToken, ""); r.status != 409 {
		t.Errorf("pending on resolved = %d, want 409", r.status)
	}
}

// FuzzCustomerSearch: a search box's text from any rep is read as a tag,
// email, phone or name: 200 or 400, never a crash or another status.
func FuzzCustomerSearch(f *testing.F) {
	for _, s := range []string{"#vip", "WANG@example.com", "+86 138-1234-5678", "fang", "(415) 555-0100", "#", "@", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r := newFixture(t).do("GET", "/v1/customers?q="+url.QueryEscape(q), carolToken, "")
		if r.status != 200 && r.status != 400 {
			t.Fatalf("q=%q: %d %s", q, r.status, r.body)
		}
	})
}
