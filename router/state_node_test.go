package router

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"
)

func TestStateAdoptLoadsPresence(t *testing.T) {
	t.Parallel()
	states(t, func(t *testing.T, newState func() State) {
		ctx := context.Background()
		s := newState()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.Push(ctx, "q", "c1"))
		// Adopt replaces the waiting entry and ignores the limit.
		must(s.Adopt(ctx, Claim{Queue: "q", ConversationID: "c1", RepID: "a", Units: 25, Limit: 10}))
		if err := s.Claim(ctx, Claim{Queue: "q", ConversationID: "c1", RepID: "b", Units: 25, Limit: 100}); !errors.Is(err, ErrTaken) {
			t.Fatalf("claim of an adopted conversation: %v", err)
		}
		must(s.Adopt(ctx, Claim{Queue: "q", ConversationID: "c2", RepID: "a", Units: 100, Limit: 100}))
		if u, _ := s.Used(ctx, "a"); u != 125 {
			t.Fatalf("a used %d, want 125 (adopt is not capped)", u)
		}
		// Adopting again moves the claim.
		must(s.Adopt(ctx, Claim{Queue: "q", ConversationID: "c2", RepID: "b", Units: 25, Limit: 100}))
		if ok, err := s.Holds(ctx, "c2", "b"); err != nil || !ok {
			t.Fatalf("Holds(c2, b) = %v, %v", ok, err)
		}
		if ok, _ := s.Holds(ctx, "c2", "a"); ok {
			t.Fatal("Holds(c2, a) after the claim moved to b")
		}
		loads, err := s.Loads(ctx)
		must(err)
		if want := map[string]int{"a": 25, "b": 25}; !maps.Equal(loads, want) {
			t.Fatalf("loads %v, want %v", loads, want)
		}
		must(s.Unclaim(ctx, "c1", ""))
		loads, _ = s.Loads(ctx)
		if want := map[string]int{"b": 25}; !maps.Equal(loads, want) {
			t.Fatalf("loads %v, want %v", loads, want)
		}
		must(s.SetPresence(ctx, "a", PresenceAvailable))
		must(s.SetPresence(ctx, "b", PresenceAway))
		must(s.SetPresence(ctx, "a", PresenceOnCall))
		pres, err := s.Presences(ctx)
		must(err)
		if want := map[string]Presence{"a": PresenceOnCall, "b": PresenceAway}; !maps.Equal(pres, want) {
			t.Fatalf("presences %v, want %v", pres, want)
		}
	})
}

// TestValkeyNodeLeases checks what a node may do with what another node
// holds: nothing while the holder's lease runs; take it over once the
// lease lapsed (or the holder left).
//
// Leases run on the Valkey server's clock, which a test cannot move, so
// no check depends on how long the test takes: a's lease is a minute long
// while it must hold, and is then renewed as one that ends at once.
func TestValkeyNodeLeases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := valkeyClient(t)
	prefix := testPrefix()
	node := func(name string) *ValkeyState {
		s, err := NewValkeyNodeState(client, prefix, name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := node("a"), node("b")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.Heartbeat(ctx, time.Minute))
	must(b.Heartbeat(ctx, time.Minute))
	must(a.Push(ctx, "q", "c1"))
	must(a.Push(ctx, "q", "c2"))
	must(a.Claim(ctx, Claim{Queue: "q", ConversationID: "c2", RepID: "r", Units: 25, Limit: 100}))
	must(a.SetConnected(ctx, "r", true))

	// a is alive: b can take nothing of a's.
	if err := b.Push(ctx, "q", "c1"); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("push of a live node's task: %v", err)
	}
	if err := b.Push(ctx, "q", "c2"); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("push of a live node's claim: %v", err)
	}
	if err := b.Adopt(ctx, Claim{Queue: "q", ConversationID: "c2", RepID: "r", Units: 25}); !errors.Is(err, ErrTaken) {
		t.Fatalf("adopt of a live node's claim: %v", err)
	}
	must(b.Unclaim(ctx, "c2", ""))
	must(b.Drop(ctx, "q", "c1"))
	if u, _ := b.Used(ctx, "r"); u != 25 {
		t.Fatalf("b freed a's claim: used %d", u)
	}
	if err := b.Claim(ctx, Claim{Queue: "q", ConversationID: "c1", RepID: "r", Units: 25, Limit: 100}); !errors.Is(err, ErrTaken) {
		t.Fatalf("b claimed a's waiting task: %v", err)
	}
	if o, err := b.Orphans(ctx); err != nil || len(o) != 0 {
		t.Fatalf("orphans while a lives: %v %v", o, err)
	}
	if u, err := b.Unheld(ctx, []string{"c1", "c2", "c9"}); err != nil || !slices.Equal(u, []string{"c9"}) {
		t.Fatalf("unheld while a lives: %v %v", u, err)
	}
	if ok, err := b.Connected(ctx, "r"); err != nil || !ok {
		t.Fatalf("connected via a: %v %v", ok, err)
	}

	// a stops heartbeating: its lease lapses. A lease that ends now is
	// the state a lapse leaves, without waiting for one.
	must(a.Heartbeat(ctx, 0))
	o, err := b.Orphans(ctx)
	must(err)
	slices.Sort(o)
	if !slices.Equal(o, []string{"c1", "c2"}) {
		t.Fatalf("orphans %v, want c1 c2", o)
	}
	if ok, _ := b.Connected(ctx, "r"); ok {
		t.Fatal("a dead node's socket still counts")
	}
	if u, _ := b.Unheld(ctx, []string{"c1", "c2", "c9"}); !slices.Equal(u, []string{"c1", "c2", "c9"}) {
		t.Fatalf("unheld after a died: %v", u)
	}
	// c1 waited on a: b takes it over and a can no longer claim it.
	must(b.Push(ctx, "q", "c1"))
	if err := a.Claim(ctx, Claim{Queue: "q", ConversationID: "c1", RepID: "r", Units: 25, Limit: 100}); !errors.Is(err, ErrTaken) {
		t.Fatalf("a claimed what b took over: %v", err)
	}
	// c2 was assigned by a: b adopts it, keeping the units; a (back from
	// a stall) cannot free it any more.
	if ok, _ := a.Holds(ctx, "c2", "r"); !ok {
		t.Fatal("a no longer holds c2 before anyone took it")
	}
	must(b.Adopt(ctx, Claim{Queue: "q", ConversationID: "c2", RepID: "r", Units: 25}))
	if ok, _ := a.Holds(ctx, "c2", "r"); ok {
		t.Fatal("a still holds c2 after b adopted it: a would record an assignment it lost")
	}
	if ok, _ := b.Holds(ctx, "c2", "r"); !ok {
		t.Fatal("b does not hold what it adopted")
	}
	must(a.Unclaim(ctx, "c2", ""))
	if u, _ := b.Used(ctx, "r"); u != 25 {
		t.Fatalf("used %d after adopt and a stale unclaim, want 25", u)
	}
	must(b.Unclaim(ctx, "c2", ""))
	if u, _ := b.Used(ctx, "r"); u != 0 {
		t.Fatalf("used %d after b released, want 0", u)
	}
	// A claim a made and never turned into an assignment (it died between
	// the two) is freed when its conversation is pushed again.
	must(a.Heartbeat(ctx, time.Minute))
	must(a.Push(ctx, "q", "c3"))
	must(a.Claim(ctx, Claim{Queue: "q", ConversationID: "c3", RepID: "r", Units: 25, Limit: 100}))
	must(a.Leave(ctx))
	if o, _ := b.Orphans(ctx); !slices.Equal(o, []string{"c3"}) {
		t.Fatalf("orphans after a left: %v", o)
	}
	must(b.Push(ctx, "q", "c3"))
	if u, _ := b.Used(ctx, "r"); u != 0 {
		t.Fatalf("used %d after takeover of a half-made claim, want 0", u)
	}
	must(b.Claim(ctx, Claim{Queue: "q", ConversationID: "c3", RepID: "r", Units: 25, Limit: 100}))
	if o, _ := b.Orphans(ctx); len(o) != 0 {
		t.Fatalf("orphans after takeover: %v", o)
	}
}

// TestSyncSharesLoadAndPresence runs two routers (two nodes) on one
// State: presence set on one reaches the other on Sync, and so do claims
// and releases, so a rep freed by one node gets the other's waiting work.
func TestSyncSharesLoadAndPresence(t *testing.T) {
	t.Parallel()
	states(t, func(t *testing.T, newState func() State) {
		ctx := context.Background()
		st := newState()
		newRouter := func() *Router {
			r, err := New(Config{Reps: []Rep{{ID: "a"}}}, Options{Clock: NewManualClock(t0), State: st})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		r1, r2 := newRouter(), newRouter()
		if _, err := r1.SetPresence(ctx, "a", PresenceAvailable); err != nil {
			t.Fatal(err)
		}
		if ds, err := r2.Sync(ctx); err != nil || len(ds) != 0 {
			t.Fatalf("sync: %v %v", ds, err)
		}
		if s, _ := r2.Rep("a"); s.Presence != PresenceAvailable {
			t.Fatalf("r2 sees a %s", s.Presence)
		}
		for _, c := range []string{"c1", "c2", "c3", "c4"} {
			if d, err := r1.Enqueue(ctx, chat(c)); err != nil || d.Kind != KindAssign {
				t.Fatalf("%+v %v", d, err)
			}
		}
		if _, err := r2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if d, err := r2.Enqueue(ctx, chat("c5")); err != nil || d.Kind != KindQueued || d.Excluded[ReasonCapacity] != 1 {
			t.Fatalf("r2 should see a full: %+v %v", d, err)
		}
		if _, err := r1.Release(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		ds, err := r2.Sync(ctx)
		if err != nil || len(ds) != 1 || ds[0].ConversationID != "c5" || ds[0].RepID != "a" {
			t.Fatalf("after r1 released: %+v %v", ds, err)
		}
		// Adopt counts an assignment made elsewhere, past capacity.
		if err := r2.Adopt(ctx, chat("c9"), "a"); err != nil {
			t.Fatal(err)
		}
		if err := r2.Adopt(ctx, chat("c9"), "a"); err != nil {
			t.Fatalf("adopting again: %v", err)
		}
		if s, _ := r2.Rep("a"); s.Used != 125 || s.Active != 2 {
			t.Fatalf("after adopt: %+v", s)
		}
		if err := r2.Adopt(ctx, chat("c9"), "nobody"); !errors.Is(err, ErrUnknownRep) {
			t.Fatal(err)
		}
		if _, err := r2.Release(ctx, "c9"); err != nil {
			t.Fatal(err)
		}
		if u, _ := st.Used(ctx, "a"); u != 100 {
			t.Fatalf("state used %d, want 100", u)
		}
		if _, err := r1.SetPresence(ctx, "a", PresenceAway); err != nil {
			t.Fatal(err)
		}
		if _, err := r2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if s, _ := r2.Rep("a"); s.Presence != PresenceAway || s.Used != 100 {
			t.Fatalf("r2 sees %+v", s)
		}
	})
}
