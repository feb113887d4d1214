package routing_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/router/routing"
	"github.com/omnigate/omnigate/sessions"
)

// TestBreakTakesNothing: a break needs a configured reason; a rep on
// break is never assigned a chat (it waits), keeps what they hold, and
// gets the waiting chat on coming back; every change reaches OnRepState
// with its time and reason, and State says since when.
func TestBreakTakesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sessions.NewMemoryStore()
	clock := router.NewManualClock(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	rc := router.Config{Queues: routerConfig.Queues, Reps: []router.Rep{{ID: "a"}}}
	s := start(t, routing.Config{}, rc, routing.Options{Store: store, Logger: quiet, Clock: clock})
	var mu sync.Mutex
	var seen []routing.RepState
	s.OnRepState(func(st routing.RepState) {
		mu.Lock()
		seen = append(seen, st)
		mu.Unlock()
	})
	for _, tt := range []struct {
		p      router.Presence
		reason string
	}{{router.PresenceBreak, ""}, {router.PresenceBreak, "nap"}, {router.PresenceAway, "lunch"}, {router.PresenceWrapUp, ""}} {
		if err := s.SetState(ctx, "a", tt.p, tt.reason); !errors.Is(err, routing.ErrBadState) {
			t.Errorf("%s with %q: %v, want ErrBadState", tt.p, tt.reason, err)
		}
	}
	if err := s.SetState(ctx, "a", router.PresenceBreak, "lunch"); err != nil {
		t.Fatal(err)
	}
	cust := newCustomer(t, store, "v1")
	cv := chat(t, store, s, cust, "m1") // handled: routed, and nobody may take it
	if got, _ := store.Conversation(ctx, cv.ID); got.Assignee != "" {
		t.Fatalf("assigned to %q while the only rep is on break", got.Assignee)
	}
	if evs := assignments(t, store, cust); len(evs) != 0 {
		t.Fatalf("a rep on break was assigned: %+v", evs)
	}
	st, err := s.State("a")
	if err != nil || st.Presence != router.PresenceBreak || st.Reason != "lunch" || !st.Since.Equal(clock.Now()) {
		t.Fatalf("state %+v %v, want break for lunch since %s", st, err, clock.Now())
	}
	clock.Advance(10 * time.Minute)
	if err := s.SetState(ctx, "a", router.PresenceAvailable, ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.Conversation(ctx, cv.ID); got.Assignee != "a" {
		t.Fatalf("back from break, the waiting chat went to %q, want a", got.Assignee)
	}
	if err := s.SetState(ctx, "a", router.PresenceAfterCallWork, ""); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, st := range seen {
		if st.Presence == router.PresenceOffline {
			continue // the first look at the reps, if the ticker came first
		}
		got = append(got, string(st.Presence)+"/"+st.Reason+"@"+st.Since.Format("15:04"))
	}
	want := []string{"break/lunch@09:00", "available/@09:10", "after_call_work/@09:10"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("rep states told %v, want %v", got, want)
	}
	if b := s.BreakReasons(); len(b) != 4 || b[0].Code != "lunch" || b[0].Label != "Lunch" {
		t.Fatalf("default break reasons %+v", b)
	}
}
