package api_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/router/routing"
)

func TestListReps(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		token string
		want  int
	}{
		{aliceToken, 200},
		{carolToken, 200},
		{adminToken, 200},
		{integratorToken, 403},
		{"", 401},
	} {
		resp := f.do("GET", "/v1/reps", tt.token, "")
		if resp.status != tt.want {
			t.Fatalf("token %q: status %d %s, want %d", tt.token, resp.status, resp.body, tt.want)
		}
	}
	resp := f.do("GET", "/v1/reps", aliceToken, "")
	var page struct {
		Data []struct {
			ID, Name, Role, Token string
		} `json:"data"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(resp.body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 3 || page.Data[0].ID != "alice" || page.Data[1].ID != "bob" || page.Data[2].ID != "carol" {
		t.Fatalf("reps = %+v, want alice, bob, carol", page.Data)
	}
	if page.Data[0].Name != "alice" || page.Data[2].Role != "supervisor" || page.Data[0].Token != "" {
		t.Errorf("reps = %+v (name defaults to id, roles kept, no token)", page.Data)
	}
	if page.NextCursor == nil || *page.NextCursor != "" {
		t.Errorf("next_cursor must be present and empty: %s", resp.body)
	}
	if r := f.do("GET", "/v1/reps?x=1", aliceToken, ""); r.status != 400 {
		t.Errorf("unknown query parameter: %d", r.status)
	}
}

// fakeRouting is the router as the API sees it.
type fakeRouting struct {
	mu       sync.Mutex
	presence map[string]router.Presence
	reasons  map[string]string
}

func (f *fakeRouting) Rep(id string) (router.RepStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id == "carol" {
		return router.RepStatus{}, router.ErrUnknownRep
	}
	p := f.presence[id]
	if p == "" {
		p = router.PresenceOffline
	}
	return router.RepStatus{Rep: router.Rep{ID: id, Capacity: 100, Tier: 1, Skills: map[string]int{"chat": 5}},
		Presence: p, Used: 25, Active: 1}, nil
}

func (f *fakeRouting) SetState(_ context.Context, rep string, p router.Presence, reason string) error {
	if (p == router.PresenceBreak) != (reason == "lunch") {
		return routing.ErrBadState
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.presence[rep] = p
	f.reasons[rep] = reason
	return nil
}

func (f *fakeRouting) State(rep string) (routing.RepState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return routing.RepState{Rep: rep, Presence: f.presence[rep], Reason: f.reasons[rep],
		Since: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}, nil
}

func (f *fakeRouting) BreakReasons() []routing.BreakReason {
	return []routing.BreakReason{{Code: "lunch", Label: "Lunch"}}
}

func TestRepPresence(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Without routing there is no presence to set.
	if r := f.do("POST", "/v1/reps/alice/presence", aliceToken, `{"status":"available"}`); r.status != 404 {
		t.Fatalf("without routing: %d %s", r.status, r.body)
	}
	routing := &fakeRouting{presence: map[string]router.Presence{}, reasons: map[string]string{}}
	srv, err := api.New(api.Config{}, api.Options{Store: f.store, Auth: auth.New(authConfig), Routing: routing})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	for _, tt := range []struct {
		name, path, token, body string
		want                    int
	}{
		{"own", "/v1/reps/alice/presence", aliceToken, `{"status":"available"}`, 200},
		{"another rep's", "/v1/reps/bob/presence", aliceToken, `{"status":"away"}`, 403},
		{"supervisor sets a rep's", "/v1/reps/bob/presence", carolToken, `{"status":"away"}`, 200},
		{"admin sets a rep's", "/v1/reps/bob/presence", adminToken, `{"status":"on_call"}`, 200},
		{"integrator", "/v1/reps/bob/presence", integratorToken, `{"status":"away"}`, 403},
		{"unknown rep", "/v1/reps/zed/presence", adminToken, `{"status":"away"}`, 404},
		{"wrap_up is the router's", "/v1/reps/alice/presence", aliceToken, `{"status":"wrap_up"}`, 400},
		{"unknown field", "/v1/reps/alice/presence", aliceToken, `{"status":"away","x":1}`, 400},
		{"no body", "/v1/reps/alice/presence", aliceToken, ``, 400},
		{"break without a reason", "/v1/reps/alice/presence", aliceToken, `{"status":"break"}`, 400},
		{"break with an unknown reason", "/v1/reps/alice/presence", aliceToken, `{"status":"break","reason":"nap"}`, 400},
		{"a reason without a break", "/v1/reps/alice/presence", aliceToken, `{"status":"away","reason":"lunch"}`, 400},
		{"a supervisor sets a rep's break", "/v1/reps/bob/presence", carolToken, `{"status":"break","reason":"lunch"}`, 200},
		{"after-call work", "/v1/reps/alice/presence", aliceToken, `{"status":"after_call_work"}`, 200},
		{"back to available", "/v1/reps/alice/presence", aliceToken, `{"status":"available"}`, 200},
		{"admin sets on_call", "/v1/reps/bob/presence", adminToken, `{"status":"on_call"}`, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if r := f.do("POST", tt.path, tt.token, tt.body); r.status != tt.want {
				t.Fatalf("%d %s, want %d", r.status, r.body, tt.want)
			}
		})
	}
	if routing.presence["alice"] != "available" || routing.presence["bob"] != "on_call" {
		t.Fatalf("presence = %v", routing.presence)
	}
	resp := f.do("GET", "/v1/reps", aliceToken, "")
	var page struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(resp.body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 3 || page.Data[0]["presence"] != "available" || page.Data[0]["used"] != 25.0 ||
		page.Data[1]["presence"] != "on_call" {
		t.Fatalf("reps = %s", resp.body)
	}
	if page.Data[0]["since"] != "2026-12-03T09:00:00Z" {
		t.Errorf("since = %v, want the state's start in RFC 3339", page.Data[0]["since"])
	}
	if r := f.do("GET", "/v1/break-reasons", aliceToken, ""); r.status != 200 || string(r.body) != `{"reasons":[{"code":"lunch","label":"Lunch"}]}`+"\n" {
		t.Errorf("break reasons: %d %s", r.status, r.body)
	}
	if _, ok := page.Data[2]["presence"]; ok {
		t.Errorf("carol is not routed, yet shows presence: %s", resp.body)
	}
}
