package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

var t0 = time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)

type fixture struct {
	t   *testing.T
	r   *Router
	clk *ManualClock
	st  *MemoryState
}

// newFixture builds a router whose reps become available in the order
// given, one second apart, so the first is the longest idle.
func newFixture(t *testing.T, cfg Config, reps ...Rep) *fixture {
	t.Helper()
	clk := NewManualClock(t0)
	st := NewMemoryState()
	cfg.Reps = reps
	r, err := New(cfg, Options{Clock: clk, State: st})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, r: r, clk: clk, st: st}
	for _, rep := range reps {
		f.presence(rep.ID, PresenceAvailable)
		clk.Advance(time.Second)
	}
	return f
}

func (f *fixture) presence(rep string, p Presence) []Decision {
	f.t.Helper()
	ds, err := f.r.SetPresence(context.Background(), rep, p)
	if err != nil {
		f.t.Fatal(err)
	}
	return ds
}

func (f *fixture) enqueue(t Task) Decision {
	f.t.Helper()
	d, err := f.r.Enqueue(context.Background(), t)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) release(conv string) []Decision {
	f.t.Helper()
	ds, err := f.r.Release(context.Background(), conv)
	if err != nil {
		f.t.Fatal(err)
	}
	return ds
}

// tick moves the clock by d and runs the timers.
func (f *fixture) tick(d time.Duration) []Decision {
	f.t.Helper()
	now := f.clk.Advance(d)
	ds, err := f.r.Tick(context.Background(), now)
	if err != nil {
		f.t.Fatal(err)
	}
	return ds
}

func (f *fixture) checkInvariants() {
	f.t.Helper()
	if err := f.r.checkInvariants(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

func wantKind(t *testing.T, d Decision, kind Kind, rep string, ring Ring) {
	t.Helper()
	if d.Kind != kind || d.RepID != rep || (ring != "" && d.Ring != ring) {
		t.Fatalf("decision = %s to %q in ring %q (%s), want %s to %q in ring %q", d.Kind, d.RepID, d.Ring, d.Why, kind, rep, ring)
	}
}

func candidate(d Decision, rep string) (Candidate, bool) {
	for _, c := range d.Candidates {
		if c.RepID == rep {
			return c, true
		}
	}
	return Candidate{}, false
}

func voice(conv string) Task { return Task{ConversationID: conv, Channel: sessions.ChannelVoice} }
func chat(conv string) Task  { return Task{ConversationID: conv, Channel: sessions.ChannelWebchat} }

// checkInvariants checks what must hold between any two calls: capacity
// is never exceeded and matches what is held and what the State says, no
// conversation is held twice, and no waiting task could be taken by a rep
// with free capacity (every chance to assign was taken).
func (r *Router) checkInvariants(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	holder := map[string]string{}
	for _, rs := range r.repList {
		sum := 0
		for conv, ts := range rs.held {
			if h, ok := holder[conv]; ok {
				return fmt.Errorf("%s held by %s and %s", conv, h, rs.rep.ID)
			}
			holder[conv] = rs.rep.ID
			if ts.rep != rs || ts.status == statusWaiting {
				return fmt.Errorf("%s held by %s but task says %v/%v", conv, rs.rep.ID, ts.rep, ts.status)
			}
			sum += ts.cls.cost
		}
		if sum != rs.used || rs.used > rs.capacity {
			return fmt.Errorf("rep %s: used %d, held %d, capacity %d", rs.rep.ID, rs.used, sum, rs.capacity)
		}
		if h := r.hot[rs.idx]; int(h.used) != rs.used || int(h.capacity) != rs.capacity || h.available != (rs.presence == PresenceAvailable) {
			return fmt.Errorf("rep %s: hot copy %+v out of date", rs.rep.ID, h)
		}
		if u, _ := r.state.Used(ctx, rs.rep.ID); u != rs.used {
			return fmt.Errorf("rep %s: used %d, state says %d", rs.rep.ID, rs.used, u)
		}
	}
	for conv, ts := range r.tasks {
		if ts.status != statusWaiting {
			if holder[conv] == "" {
				return fmt.Errorf("%s is %v but no rep holds it", conv, ts.status)
			}
			continue
		}
		if ts.hidx < 0 {
			return fmt.Errorf("%s waits but is in no queue", conv)
		}
		ts.target = r.reps[ts.targetID]
		for _, rs := range r.repList {
			if ring, why := r.eval(rs, ts, now); why == rNone {
				return fmt.Errorf("%s waits but %s could take it (ring %s)", conv, rs.rep.ID, ring)
			}
		}
	}
	return nil
}

func TestOwnerRing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		owner       Presence
		busy        bool // owner holds a call
		wantRep     string
		wantRing    Ring
		wantQueued  bool
		wantExclude string
	}{
		{name: "available owner wins over longer idle rep", owner: PresenceAvailable, wantRep: "owner", wantRing: RingOwner},
		{name: "offline owner skipped at once", owner: PresenceOffline, wantRep: "alice", wantRing: RingExact, wantExclude: ReasonOffline},
		{name: "away owner skipped at once", owner: PresenceAway, wantRep: "alice", wantRing: RingExact, wantExclude: ReasonAway},
		{name: "busy online owner waited for", owner: PresenceAvailable, busy: true, wantQueued: true},
		{name: "owner on a call outside the router waited for", owner: PresenceOnCall, wantQueued: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Queues: []QueueConfig{{Name: "q", Owner: OwnerConfig{Wait: 30 * time.Second}}}}
			f := newFixture(t, cfg, Rep{ID: "alice"}, Rep{ID: "owner"})
			if tc.busy {
				wantKind(t, f.enqueue(Task{ConversationID: "c0", Channel: sessions.ChannelVoice, Owner: "owner"}), KindAssign, "owner", RingOwner)
			}
			f.presence("owner", tc.owner)
			d := f.enqueue(Task{ConversationID: "c1", Channel: sessions.ChannelVoice, Owner: "owner"})
			f.checkInvariants()
			if tc.wantQueued {
				wantKind(t, d, KindQueued, "", RingOwner)
				if c, ok := candidate(d, "alice"); !ok || c.Excluded != ReasonOwnerWait {
					t.Errorf("alice = %+v, want excluded %s", c, ReasonOwnerWait)
				}
				return
			}
			wantKind(t, d, KindAssign, tc.wantRep, tc.wantRing)
			if tc.wantExclude != "" {
				c, ok := candidate(d, "owner")
				if !ok || c.Excluded != tc.wantExclude || c.Ring != RingOwner {
					t.Errorf("owner candidate = %+v, want excluded %s in ring owner", c, tc.wantExclude)
				}
				if !strings.Contains(d.Why, "owner owner skipped: "+tc.wantExclude) {
					t.Errorf("why = %q", d.Why)
				}
			}
		})
	}
}

func TestBusyOwnerWaitIsBounded(t *testing.T) {
	t.Parallel()
	cfg := Config{Queues: []QueueConfig{{Name: "q", Owner: OwnerConfig{Wait: 30 * time.Second}}}}
	setup := func(t *testing.T) *fixture {
		f := newFixture(t, cfg, Rep{ID: "alice"}, Rep{ID: "owner"})
		f.enqueue(Task{ConversationID: "busy", Channel: sessions.ChannelVoice, Owner: "owner"})
		wantKind(t, f.enqueue(Task{ConversationID: "c1", Channel: sessions.ChannelVoice, Owner: "owner"}), KindQueued, "", RingOwner)
		return f
	}
	t.Run("gives up after the wait", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		if at, ok := f.r.NextDeadline(); !ok || !at.Equal(f.clk.Now().Add(30*time.Second)) {
			t.Fatalf("next deadline %v %v, want in 30s", at, ok)
		}
		if ds := f.tick(29 * time.Second); len(ds) != 0 {
			t.Fatalf("at 29s: %+v", ds)
		}
		ds := f.tick(time.Second)
		if len(ds) != 1 {
			t.Fatalf("at 30s: %d decisions", len(ds))
		}
		wantKind(t, ds[0], KindAssign, "alice", RingExact)
		if ds[0].WaitedMS != 30_000 {
			t.Errorf("waited %d ms", ds[0].WaitedMS)
		}
		f.checkInvariants()
	})
	t.Run("owner frees up within the wait", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.clk.Advance(10 * time.Second)
		ds := f.release("busy")
		if len(ds) != 1 {
			t.Fatalf("%d decisions", len(ds))
		}
		wantKind(t, ds[0], KindAssign, "owner", RingOwner)
		f.checkInvariants()
	})
	t.Run("owner goes offline within the wait", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.clk.Advance(5 * time.Second)
		ds := f.presence("owner", PresenceOffline)
		if len(ds) != 1 {
			t.Fatalf("%d decisions", len(ds))
		}
		wantKind(t, ds[0], KindAssign, "alice", RingExact)
		f.checkInvariants()
	})
	t.Run("owner still preferred after the wait", func(t *testing.T) {
		t.Parallel()
		// Nobody is free when the wait ends; the owner frees up first and
		// still gets the task, in the owner ring.
		f2 := setup(t)
		f2.enqueue(voice("alice-busy"))
		if ds := f2.tick(40 * time.Second); len(ds) != 0 {
			t.Fatalf("%+v", ds)
		}
		if st, _ := f2.r.Task("c1"); st.Ring != RingExact {
			t.Fatalf("ring %s", st.Ring)
		}
		ds := f2.release("busy")
		wantKind(t, ds[0], KindAssign, "owner", RingOwner)
		f2.checkInvariants()
	})
}

func TestPriorityOrder(t *testing.T) {
	t.Parallel()
	// One rep, busy; tasks arrive a second apart; the order they are served
	// in is VIPs first in arrival order, then tiers, then the ungraded.
	f := newFixture(t, Config{}, Rep{ID: "alice"})
	f.enqueue(voice("busy"))
	arrivals := []Task{
		{ConversationID: "none1", Channel: sessions.ChannelVoice},
		{ConversationID: "tierB", Channel: sessions.ChannelVoice, Tier: sessions.TierB},
		{ConversationID: "vip1", Channel: sessions.ChannelVoice, VIP: true},
		{ConversationID: "tierA", Channel: sessions.ChannelVoice, Tier: sessions.TierA},
		{ConversationID: "vip2", Channel: sessions.ChannelVoice, VIP: true, Tier: sessions.TierD},
		{ConversationID: "none2", Channel: sessions.ChannelVoice},
		{ConversationID: "vip3", Channel: sessions.ChannelVoice, VIP: true, Tier: sessions.TierA},
	}
	for _, task := range arrivals {
		f.clk.Advance(time.Second)
		wantKind(t, f.enqueue(task), KindQueued, "", RingExact)
	}
	want := []string{"vip1", "vip2", "vip3", "tierA", "tierB", "none1", "none2"}
	cur := "busy"
	for _, w := range want {
		f.clk.Advance(time.Second)
		ds := f.release(cur)
		if len(ds) != 1 || ds[0].ConversationID != w {
			t.Fatalf("after %s: %+v, want %s", cur, ds, w)
		}
		cur = w
		f.checkInvariants()
	}
}

func TestAging(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		aging    time.Duration
		vipAfter time.Duration
		first    string
	}{
		// Default aging 30s: the ungraded task (0) gains 50 points on a
		// fresh VIP (50) after 25 minutes.
		{"fresh VIP jumps a short wait", 0, 24 * time.Minute, "vip"},
		{"long wait beats a later VIP", 0, 26 * time.Minute, "low"},
		{"faster aging", time.Second, 51 * time.Second, "low"},
		{"no aging: strict priority", -1, 10 * time.Hour, "vip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{Priority: PriorityConfig{Aging: tc.aging}}, Rep{ID: "alice"})
			f.enqueue(voice("busy"))
			f.enqueue(voice("low"))
			f.clk.Advance(tc.vipAfter)
			f.enqueue(Task{ConversationID: "vip", Channel: sessions.ChannelVoice, VIP: true})
			ds := f.release("busy")
			if len(ds) != 1 || ds[0].ConversationID != tc.first {
				t.Fatalf("served %+v first, want %s", ds, tc.first)
			}
		})
	}
}

func TestStarvationBounded(t *testing.T) {
	t.Parallel()
	// A steady stream of VIPs, one rep serving one per minute: the ungraded
	// task is still served, within 50 × aging of waiting plus one service.
	f := newFixture(t, Config{Priority: PriorityConfig{Aging: 10 * time.Second}}, Rep{ID: "alice"})
	f.enqueue(voice("busy"))
	f.enqueue(voice("low"))
	cur := "busy"
	for i := 0; ; i++ {
		f.clk.Advance(30 * time.Second)
		f.enqueue(Task{ConversationID: fmt.Sprintf("vip%d", i), Channel: sessions.ChannelVoice, VIP: true})
		f.clk.Advance(30 * time.Second)
		ds := f.release(cur)
		cur = ds[0].ConversationID
		if cur == "low" {
			if w := time.Duration(ds[0].WaitedMS) * time.Millisecond; w > 50*10*time.Second+time.Minute {
				t.Fatalf("low waited %s", w)
			}
			return
		}
		if i > 100 {
			t.Fatal("low starved")
		}
	}
}

func TestCapacityCostModel(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{}, Rep{ID: "alice"})
	for i := range 4 {
		wantKind(t, f.enqueue(chat(fmt.Sprint("chat", i))), KindAssign, "alice", RingExact)
	}
	wantKind(t, f.enqueue(chat("chat4")), KindQueued, "", RingExact)
	wantKind(t, f.enqueue(voice("call")), KindQueued, "", RingExact)
	st, _ := f.r.Rep("alice")
	if st.Used != 100 || st.Active != 4 {
		t.Fatalf("status %+v", st)
	}
	// Freeing one chat lets the queued chat in, not the call (first in
	// queue order that fits: the call doesn't).
	ds := f.release("chat0")
	if len(ds) != 1 || ds[0].ConversationID != "chat4" {
		t.Fatalf("%+v", ds)
	}
	f.checkInvariants()
	// A rep with capacity 50 can never take a call.
	if _, err := f.r.UpsertRep(context.Background(), Rep{ID: "bob", Capacity: 50}); err != nil {
		t.Fatal(err)
	}
	ds = f.presence("bob", PresenceAvailable)
	if len(ds) != 0 {
		t.Fatalf("bob got %+v", ds)
	}
	f.checkInvariants()
}

func TestWrapUpBlocksAssignment(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{WrapUp: map[string]time.Duration{sessions.ChannelVoice: 30 * time.Second}}, Rep{ID: "alice"})
	f.enqueue(voice("c1"))
	f.clk.Advance(time.Minute)
	if ds := f.release("c1"); len(ds) != 0 {
		t.Fatalf("%+v", ds)
	}
	st, _ := f.r.Rep("alice")
	if st.Presence != PresenceWrapUp {
		t.Fatalf("presence %s", st.Presence)
	}
	d := f.enqueue(chat("c2"))
	wantKind(t, d, KindQueued, "", RingExact)
	if d.Excluded[ReasonWrapUp] != 1 {
		t.Errorf("excluded %v", d.Excluded)
	}
	if at, _ := f.r.NextDeadline(); !at.Equal(f.clk.Now().Add(30 * time.Second)) {
		t.Errorf("deadline %v", at)
	}
	if ds := f.tick(29 * time.Second); len(ds) != 0 {
		t.Fatalf("%+v", ds)
	}
	ds := f.tick(time.Second)
	if len(ds) != 1 {
		t.Fatalf("%+v", ds)
	}
	wantKind(t, ds[0], KindAssign, "alice", RingExact)
	f.checkInvariants()
}

func TestOffer(t *testing.T) {
	t.Parallel()
	cfg := Config{Queues: []QueueConfig{{Name: "q", Offer: OfferConfig{AcceptTimeout: 15 * time.Second, MaxMisses: 2}}}}
	t.Run("unaccepted offer moves on", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, cfg, Rep{ID: "alice"}, Rep{ID: "bob"})
		wantKind(t, f.enqueue(voice("c1")), KindOffer, "alice", RingExact)
		f.checkInvariants()
		if ds := f.tick(14 * time.Second); len(ds) != 0 {
			t.Fatalf("%+v", ds)
		}
		ds := f.tick(time.Second)
		if len(ds) != 2 {
			t.Fatalf("%+v", ds)
		}
		wantKind(t, ds[0], KindOfferExpired, "alice", RingExact)
		wantKind(t, ds[1], KindOffer, "bob", RingExact)
		if c, _ := candidate(ds[1], "alice"); c.Excluded != ReasonDeclined {
			t.Errorf("alice = %+v", c)
		}
		d, err := f.r.Accept(context.Background(), "c1", "bob")
		if err != nil {
			t.Fatal(err)
		}
		wantKind(t, d, KindAccepted, "bob", RingExact)
		if ds := f.tick(time.Hour); len(ds) != 0 {
			t.Fatalf("accepted offer timed out: %+v", ds)
		}
		if _, err := f.r.Accept(context.Background(), "c1", "alice"); !errors.Is(err, ErrNotOffered) {
			t.Errorf("accept by alice: %v", err)
		}
		f.checkInvariants()
	})
	t.Run("declined offer moves on at once", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, cfg, Rep{ID: "alice"}, Rep{ID: "bob"})
		f.enqueue(voice("c1"))
		ds, err := f.r.Decline(context.Background(), "c1", "alice")
		if err != nil {
			t.Fatal(err)
		}
		wantKind(t, ds[0], KindOfferDeclined, "alice", RingExact)
		wantKind(t, ds[1], KindOffer, "bob", RingExact)
		// bob declines too: nobody left who hasn't said no.
		ds, _ = f.r.Decline(context.Background(), "c1", "bob")
		if len(ds) != 1 {
			t.Fatalf("%+v", ds)
		}
		st, _ := f.r.Task("c1")
		if st.Status != "waiting" {
			t.Fatalf("task %+v", st)
		}
		// A declined rep keeps its place: alice takes the next task.
		wantKind(t, f.enqueue(voice("c2")), KindOffer, "alice", RingExact)
		f.checkInvariants()
	})
	t.Run("repeated misses set the rep away", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, cfg, Rep{ID: "alice"})
		f.enqueue(voice("c1"))
		ds := f.tick(15 * time.Second)
		if len(ds) != 1 || ds[0].RepAway {
			t.Fatalf("%+v", ds)
		}
		if st, _ := f.r.Rep("alice"); st.Misses != 1 || st.Presence != PresenceAvailable {
			t.Fatalf("%+v", st)
		}
		wantKind(t, f.enqueue(voice("c2")), KindOffer, "alice", RingExact)
		ds = f.tick(15 * time.Second)
		if len(ds) != 1 || !ds[0].RepAway {
			t.Fatalf("%+v", ds)
		}
		if st, _ := f.r.Rep("alice"); st.Presence != PresenceAway {
			t.Fatalf("%+v", st)
		}
		d := f.enqueue(voice("c3"))
		wantKind(t, d, KindQueued, "", RingExact)
		if d.Excluded[ReasonAway] != 1 {
			t.Errorf("excluded %v", d.Excluded)
		}
		// Back from away: misses forgotten, offered work again.
		ds = f.presence("alice", PresenceAvailable)
		if len(ds) != 1 || ds[0].ConversationID != "c3" {
			t.Fatalf("%+v", ds)
		}
		f.checkInvariants()
	})
	t.Run("accepting resets misses", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, cfg, Rep{ID: "alice"})
		f.enqueue(voice("c1"))
		f.tick(15 * time.Second)
		f.enqueue(chat("c2"))
		if _, err := f.r.Accept(context.Background(), "c2", "alice"); err != nil {
			t.Fatal(err)
		}
		if st, _ := f.r.Rep("alice"); st.Misses != 0 {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("going offline withdraws offers", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, cfg, Rep{ID: "alice"}, Rep{ID: "bob"})
		f.enqueue(voice("c1"))
		ds := f.presence("alice", PresenceOffline)
		wantKind(t, ds[0], KindOfferWithdrawn, "alice", "")
		wantKind(t, ds[1], KindOffer, "bob", RingExact)
		f.checkInvariants()
	})
}

func TestSticky(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{}, Rep{ID: "alice"}, Rep{ID: "bob"}, Rep{ID: "carol"})
	// The store says bob has the conversation: bob gets it though alice has
	// been idle longest.
	d := f.enqueue(Task{ConversationID: "c1", Channel: sessions.ChannelWeChat, Assignee: "bob", Owner: "carol"})
	wantKind(t, d, KindAssign, "bob", RingSticky)
	// The customer writes again on another channel: same conversation,
	// same rep, no second claim.
	d = f.enqueue(Task{ConversationID: "c1", Channel: sessions.ChannelSMS})
	wantKind(t, d, KindAssign, "bob", RingSticky)
	if st, _ := f.r.Rep("bob"); st.Used != 20 || st.Active != 1 {
		t.Fatalf("%+v", st)
	}
	f.checkInvariants()
}

func TestSelectPolicies(t *testing.T) {
	t.Parallel()
	reps := []Rep{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	for _, tc := range []struct {
		sel  Select
		want []string
	}{
		// Reps became available a, b, c: a is longest idle; an assignment
		// resets idle time, so longest idle also rotates.
		{SelectLongestIdle, []string{"a", "b", "c", "a", "b", "c"}},
		{SelectRoundRobin, []string{"a", "b", "c", "a", "b", "c"}},
		{SelectFewestActive, []string{"a", "b", "c", "a", "b", "c"}},
	} {
		t.Run(string(tc.sel), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{Queues: []QueueConfig{{Name: "q", Select: tc.sel}}}, reps...)
			for i, w := range tc.want {
				d := f.enqueue(chat(fmt.Sprint("c", i)))
				wantKind(t, d, KindAssign, w, RingExact)
				f.clk.Advance(time.Second)
			}
		})
	}
	t.Run("ties in idle time go to fewest active", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Config{}, Rep{ID: "a"}, Rep{ID: "b"})
		f.enqueue(chat("a1")) // a
		f.enqueue(chat("b1")) // b (a now idle since this instant)
		f.enqueue(chat("a2")) // a again: longest idle
		f.clk.Advance(time.Minute)
		f.release("a1")
		f.release("b1") // a and b both idle since now; a holds 1, b holds 0
		wantKind(t, f.enqueue(chat("x")), KindAssign, "b", RingExact)
	})
	for sel, want := range map[Select]string{SelectFewestActive: "b", SelectLongestIdle: "a"} {
		t.Run("fewest active against longest idle: "+string(sel), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{Queues: []QueueConfig{{Name: "q", Select: sel}}}, Rep{ID: "a"}, Rep{ID: "b"})
			f.enqueue(Task{ConversationID: "a1", Channel: sessions.ChannelWebchat, Assignee: "a"})
			f.enqueue(Task{ConversationID: "a2", Channel: sessions.ChannelWebchat, Assignee: "a"})
			f.clk.Advance(time.Minute)
			f.enqueue(Task{ConversationID: "b1", Channel: sessions.ChannelWebchat, Assignee: "b"})
			f.clk.Advance(time.Minute)
			// a: 2 active, idle 2m; b: 1 active, idle 1m.
			wantKind(t, f.enqueue(chat("x")), KindAssign, want, RingExact)
		})
	}
}

func TestSkillRings(t *testing.T) {
	t.Parallel()
	cfg := Config{Queues: []QueueConfig{{
		Name:    "billing",
		Skills:  map[string]int{"billing": 5},
		Relaxed: RelaxedConfig{After: time.Minute, Tier2: true, IgnoreLevels: true},
	}}}
	reps := []Rep{
		{ID: "novice", Skills: map[string]int{"billing": 2}, Languages: []string{"en"}},
		{ID: "expert", Skills: map[string]int{"billing": 9}, Languages: []string{"en"}, Tier: 2},
		{ID: "nolang", Skills: map[string]int{"billing": 9}},
		{ID: "other", Skills: map[string]int{"sales": 9}, Languages: []string{"en"}},
	}
	f := newFixture(t, cfg, reps...)
	d := f.enqueue(Task{ConversationID: "c1", Channel: sessions.ChannelWebchat, Language: "en"})
	wantKind(t, d, KindQueued, "", RingExact)
	want := map[string]string{"novice": ReasonRingClosed, "expert": ReasonRingClosed, "nolang": ReasonLanguage, "other": ReasonSkill}
	for rep, reason := range want {
		if c, ok := candidate(d, rep); !ok || c.Excluded != reason {
			t.Errorf("%s = %+v, want %s", rep, c, reason)
		}
	}
	if d.Considered != 4 || d.Excluded[ReasonRingClosed] != 2 {
		t.Errorf("considered %d excluded %v", d.Considered, d.Excluded)
	}
	ds := f.tick(time.Minute)
	if len(ds) != 1 {
		t.Fatalf("%+v", ds)
	}
	wantKind(t, ds[0], KindAssign, "novice", RingRelaxed) // longest idle of the two
	if !strings.Contains(ds[0].Why, "nobody in the exact ring") {
		t.Errorf("why %q", ds[0].Why)
	}
	// An exact-ring rep is preferred to a relaxed one even when the task
	// has reached the relaxed ring.
	f.enqueue(Task{ConversationID: "c2", Channel: sessions.ChannelWebchat, Language: "en"})
	ds = f.tick(time.Minute) // c2 reaches the relaxed ring: expert takes it
	wantKind(t, ds[0], KindAssign, "expert", RingRelaxed)
	f.checkInvariants()
}

func TestOverflow(t *testing.T) {
	t.Parallel()
	voiceQ := QueueConfig{Name: "voice", Channels: []string{sessions.ChannelVoice},
		Overflow: OverflowConfig{After: 2 * time.Minute, Action: ActionMove, MoveTo: []string{sessions.ChannelWeChat, sessions.ChannelSMS}, Fallback: ActionCallback}}
	msgQ := QueueConfig{Name: "messaging", Channels: []string{sessions.ChannelWeChat, sessions.ChannelSMS}}
	cfg := Config{Queues: []QueueConfig{voiceQ, msgQ}}
	reps := []Rep{{ID: "caller", Channels: []string{sessions.ChannelVoice}}, {ID: "texter", Channels: []string{sessions.ChannelWeChat, sessions.ChannelSMS}}}
	t.Run("move to a channel with a free rep", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, cfg, reps...)
		f.enqueue(voice("busy"))
		wantKind(t, f.enqueue(voice("c1")), KindQueued, "", RingExact)
		ds := f.tick(2 * time.Minute)
		if len(ds) != 2 {
			t.Fatalf("%+v", ds)
		}
		if ds[0].Kind != KindOverflow || ds[0].Overflow.Action != ActionMove || ds[0].Overflow.ToChannel != sessions.ChannelWeChat || ds[0].Overflow.ToQueue != "messaging" {
			t.Fatalf("%+v %+v", ds[0], ds[0].Overflow)
		}
		wantKind(t, ds[1], KindAssign, "texter", RingExact)
		if ds[1].Channel != sessions.ChannelWeChat {
			t.Errorf("channel %s", ds[1].Channel)
		}
		f.checkInvariants()
	})
	t.Run("reachable channels only", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, cfg, reps...)
		f.enqueue(voice("busy"))
		f.enqueue(Task{ConversationID: "c1", Channel: sessions.ChannelVoice, Reachable: []string{sessions.ChannelVoice, sessions.ChannelSMS}})
		ds := f.tick(2 * time.Minute)
		if ds[0].Overflow.ToChannel != sessions.ChannelSMS {
			t.Fatalf("%+v", ds[0].Overflow)
		}
	})
	t.Run("fallback when no channel has a free rep", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, cfg, reps...)
		f.presence("texter", PresenceOffline)
		f.enqueue(voice("busy"))
		f.enqueue(voice("c1"))
		ds := f.tick(2 * time.Minute)
		if len(ds) != 1 || ds[0].Kind != KindOverflow || ds[0].Overflow.Action != ActionCallback {
			t.Fatalf("%+v", ds)
		}
		if _, err := f.r.Task("c1"); !errors.Is(err, ErrUnknownTask) {
			t.Errorf("task still there: %v", err)
		}
		f.checkInvariants()
	})
	t.Run("message", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Config{Queues: []QueueConfig{{Name: "q", Overflow: OverflowConfig{After: time.Minute, Action: ActionMessage}}}}, Rep{ID: "a"})
		f.enqueue(voice("busy"))
		f.enqueue(voice("c1"))
		ds := f.tick(time.Minute)
		if len(ds) != 1 || ds[0].Overflow.Action != ActionMessage || ds[0].Ring != RingOverflow {
			t.Fatalf("%+v", ds)
		}
	})
}

func TestDecisionExplains(t *testing.T) {
	t.Parallel()
	cfg := Config{Queues: []QueueConfig{{Name: "q", Skills: map[string]int{"sales": 1}}}, MaxCandidates: 3}
	f := newFixture(t, cfg,
		Rep{ID: "a-off", Skills: map[string]int{"sales": 3}},
		Rep{ID: "b-win", Skills: map[string]int{"sales": 3}},
		Rep{ID: "c-eligible", Skills: map[string]int{"sales": 3}},
		Rep{ID: "d-noskill"},
		Rep{ID: "e-full", Skills: map[string]int{"sales": 3}},
	)
	f.presence("a-off", PresenceOffline)
	f.enqueue(Task{ConversationID: "fill", Channel: sessions.ChannelVoice, Assignee: "e-full"})
	d := f.enqueue(Task{ConversationID: "c1", CustomerID: "cust1", Channel: sessions.ChannelWebchat, Owner: "a-off", VIP: true})
	wantKind(t, d, KindAssign, "b-win", RingExact)
	if d.Considered != 5 || d.Priority != 50 || d.Select != SelectLongestIdle {
		t.Errorf("%+v", d)
	}
	wantEx := map[string]int{ReasonOffline: 1, ReasonSkill: 1, ReasonCapacity: 1}
	for k, v := range wantEx {
		if d.Excluded[k] != v {
			t.Errorf("excluded %v, want %v", d.Excluded, wantEx)
		}
	}
	// Winner first, then the owner, then other eligible reps; capped at 3.
	got := []string{}
	for _, c := range d.Candidates {
		got = append(got, c.RepID+":"+string(c.Ring)+":"+c.Excluded)
	}
	if want := "b-win:exact: a-off:owner:offline c-eligible:exact:"; strings.Join(got, " ") != want {
		t.Errorf("candidates %q, want %q", strings.Join(got, " "), want)
	}
	if !strings.Contains(d.Why, "longest idle of 2 eligible in the exact ring") || !strings.Contains(d.Why, "owner a-off skipped: offline") {
		t.Errorf("why %q", d.Why)
	}
	ev := d.Event()
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	var back Decision
	if err := json.Unmarshal(ev.Payload, &back); err != nil {
		t.Fatal(err)
	}
	if back.Ring != RingExact || back.RepID != "b-win" || len(back.Candidates) != 3 || ev.Kind != sessions.KindAssignment || ev.CustomerID != "cust1" {
		t.Errorf("round trip %+v", back)
	}
}

func TestEnqueueValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{}, Rep{ID: "a"})
	for _, task := range []Task{{Channel: "voice"}, {ConversationID: "x"}} {
		if _, err := f.r.Enqueue(context.Background(), task); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", task, err)
		}
	}
	if _, err := f.r.Release(context.Background(), "nope"); !errors.Is(err, ErrUnknownTask) {
		t.Errorf("release: %v", err)
	}
	if _, err := f.r.SetPresence(context.Background(), "nope", PresenceAvailable); !errors.Is(err, ErrUnknownRep) {
		t.Errorf("presence: %v", err)
	}
	if _, err := f.r.SetPresence(context.Background(), "a", PresenceWrapUp); !errors.Is(err, ErrInvalid) {
		t.Errorf("presence: %v", err)
	}
	// Enqueue twice while waiting: one task.
	f.enqueue(voice("busy"))
	f.enqueue(voice("w"))
	if d := f.enqueue(voice("w")); d.Kind != KindQueued || d.Why != "already waiting" {
		t.Errorf("%+v", d)
	}
	if n := f.r.Waiting(); n != 1 {
		t.Errorf("waiting %d", n)
	}
	// The customer hangs up while waiting.
	if ds := f.release("w"); len(ds) != 0 || f.r.Waiting() != 0 {
		t.Errorf("%+v", ds)
	}
	f.checkInvariants()
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	reps := make([]Rep, 20)
	for i := range reps {
		reps[i] = Rep{ID: fmt.Sprintf("r%02d", i)}
	}
	f := newFixture(t, Config{}, reps...)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			ctx := context.Background()
			for i := range 200 {
				conv := fmt.Sprintf("g%d-%d", g, i)
				if _, err := f.r.Enqueue(ctx, chat(conv)); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 1 {
					if _, err := f.r.Release(ctx, conv); err != nil {
						t.Error(err)
						return
					}
				}
				_, _ = f.r.Tick(ctx, f.clk.Now())
			}
		})
	}
	wg.Wait()
	f.checkInvariants()
}

func TestOwnerEdgeCases(t *testing.T) {
	t.Parallel()
	t.Run("owner ring disabled", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Config{Queues: []QueueConfig{{Name: "q", Owner: OwnerConfig{Disabled: true}}}}, Rep{ID: "alice"}, Rep{ID: "owner"})
		wantKind(t, f.enqueue(Task{ConversationID: "c1", Channel: sessions.ChannelVoice, Owner: "owner"}), KindAssign, "alice", RingExact)
	})
	t.Run("owner not a known rep", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Config{Queues: []QueueConfig{{Name: "q", Owner: OwnerConfig{Wait: time.Minute}}}}, Rep{ID: "alice"})
		d := f.enqueue(Task{ConversationID: "c1", Channel: sessions.ChannelVoice, Owner: "ghost"})
		wantKind(t, d, KindAssign, "alice", RingExact)
		if !strings.Contains(d.Why, "owner ghost is not a known rep") {
			t.Errorf("why %q", d.Why)
		}
	})
	t.Run("sticky assignee offline is skipped", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Config{Queues: []QueueConfig{{Name: "q", Owner: OwnerConfig{Wait: time.Minute}}}}, Rep{ID: "alice"}, Rep{ID: "bob"})
		f.presence("bob", PresenceOffline)
		d := f.enqueue(Task{ConversationID: "c1", Channel: sessions.ChannelSMS, Assignee: "bob"})
		wantKind(t, d, KindAssign, "alice", RingExact)
		if c, _ := candidate(d, "bob"); c.Ring != RingSticky || c.Excluded != ReasonOffline {
			t.Errorf("bob %+v", c)
		}
	})
	t.Run("owner without the channel is skipped", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Config{Queues: []QueueConfig{{Name: "q", Owner: OwnerConfig{Wait: time.Minute}}}},
			Rep{ID: "alice"}, Rep{ID: "owner", Channels: []string{sessions.ChannelWebchat}})
		d := f.enqueue(Task{ConversationID: "c1", Channel: sessions.ChannelVoice, Owner: "owner"})
		wantKind(t, d, KindAssign, "alice", RingExact)
	})
}

// takenState refuses every claim as if another node had won it.
type takenState struct{ *MemoryState }

func (takenState) Claim(context.Context, Claim) error { return ErrTaken }

func TestClaimLostToAnotherNode(t *testing.T) {
	t.Parallel()
	clk := NewManualClock(t0)
	r, err := New(Config{Reps: []Rep{{ID: "a"}}}, Options{Clock: clk, State: takenState{NewMemoryState()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.SetPresence(ctx, "a", PresenceAvailable); err != nil {
		t.Fatal(err)
	}
	d, err := r.Enqueue(ctx, voice("c1"))
	if err != nil || d.Kind != KindTaken {
		t.Fatalf("%+v %v", d, err)
	}
	if _, err := r.Task("c1"); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("task kept: %v", err)
	}
	if st, _ := r.Rep("a"); st.Used != 0 {
		t.Fatalf("%+v", st)
	}
}
