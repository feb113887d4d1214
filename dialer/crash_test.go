package dialer

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/testredis"
)

// crashTrunk places calls on a SimTrunk until its crash-th dial, which
// goes out (the SimTrunk records it) and then never returns to the
// dialer: the process dies there, with the attempt stored as dialing.
type crashTrunk struct {
	*SimTrunk
	crash   int
	mu      sync.Mutex
	n       int
	crashed chan struct{}
	resume  chan struct{}
}

func (t *crashTrunk) Dial(ctx context.Context, d Dial) (Call, error) {
	t.mu.Lock()
	t.n++
	n := t.n
	t.mu.Unlock()
	call, err := t.SimTrunk.Dial(ctx, d)
	if n < t.crash {
		return call, err
	}
	if n == t.crash {
		close(t.crashed)
	}
	<-t.resume
	return nil, errors.New("the process died")
}

// dialsAtMostOnce fails t if an attempt was dialed twice over trunks.
func dialsAtMostOnce(t *testing.T, trunks ...*SimTrunk) {
	t.Helper()
	n := map[string]int{}
	for _, tr := range trunks {
		for _, d := range tr.Dials() {
			n[d.AttemptID]++
			if n[d.AttemptID] > 1 {
				t.Errorf("attempt %s dialed twice", d.AttemptID)
			}
		}
	}
}

// noneLost fails t unless every customer's last try concluded with an
// outcome other than interrupted, or used up the campaign's attempts.
func noneLost(t *testing.T, store Store, campaign string, customers int, attempts int) {
	t.Helper()
	as, err := store.Attempts(context.Background(), campaign)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]Attempt{}
	for _, a := range as {
		if a.Try > last[a.CustomerID].Try {
			last[a.CustomerID] = a
		}
	}
	if len(last) != customers {
		t.Fatalf("%d customers have attempts, want %d", len(last), customers)
	}
	for cust, a := range last {
		if a.State != AttemptDone || a.Outcome == OutcomeInterrupted && a.Try < attempts {
			t.Errorf("customer %s left at %+v", cust, a)
		}
	}
}

func TestCrashMidCampaignDialsEachAttemptAtMostOnceAndLosesNone(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "dialer.db")
	bolt, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, bolt, 4)
	custs := h.customers(20, "0127")
	spec := h.spec("crash", custs)
	spec.Retry = Retry{NoAnswer: "1m"}
	if _, err := h.s.Create(h.ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Start(h.ctx, "crash"); err != nil {
		t.Fatal(err)
	}
	// Node A runs until its 7th dial never comes back, and dies there.
	trunkA := &crashTrunk{SimTrunk: NewSimTrunk(h.clock), crash: 7, crashed: make(chan struct{}), resume: make(chan struct{})}
	a := h.serviceWith("node-a", bolt, newFakeReps("rep1", "rep2", "rep3", "rep4"), trunkA)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-trunkA.crashed:
				return
			default:
			}
			a.Tick(h.ctx)
			h.clock.Advance(time.Second)
		}
	}()
	<-trunkA.crashed
	// What the dead process left: the file as it was at the crash.
	if err := bolt.Close(); err != nil {
		t.Fatal(err)
	}
	close(trunkA.resume)
	<-stopped

	reopened, err := OpenBoltStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	left, _ := reopened.Attempts(h.ctx, "crash")
	live := 0
	for _, at := range left {
		if at.State.live() {
			live++
		}
	}
	dials := trunkA.Dials()
	if cut, _ := reopened.Attempt(h.ctx, dials[len(dials)-1].AttemptID); cut.State != AttemptDialing || live < 2 {
		t.Fatalf("at the crash: the last dial's attempt %+v, %d in a call; want it dialing, and calls in progress", cut, live)
	}
	h.store = reopened
	trunkB := NewSimTrunk(h.clock)
	b := h.serviceWith("node-a", reopened, newFakeReps("rep1", "rep2", "rep3", "rep4"), trunkB)
	h.runUntil(b, time.Hour, func() bool { return h.state("crash") == StateDone })

	dialsAtMostOnce(t, trunkA.SimTrunk, trunkB)
	noneLost(t, reopened, "crash", 20, spec.Attempts)
	after, _ := reopened.Attempts(h.ctx, "crash")
	interrupted := 0
	for _, at := range after {
		if at.Outcome == OutcomeInterrupted {
			interrupted++
		}
	}
	if interrupted != live {
		t.Fatalf("%d interrupted, want the %d found in a call", interrupted, live)
	}
}

func TestValkeyLeaseTakeover(t *testing.T) {
	t.Parallel()
	addr := testredis.Addr(t)
	store, err := NewValkeyStore(valkeyClient(t, addr), "takeover"+time.Now().Format("150405.000000000"))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, store, 3)
	// Valkey's clock expires it: long enough that a loaded machine's A
	// renews in time, short enough to wait out.
	h.leaseTTL = time.Second
	h.s = h.service("node-a")
	custs := h.customers(12, "0")
	spec := h.spec("lease", custs)
	spec.Retry = Retry{NoAnswer: "1m"} // interrupted calls are tried again soon
	if _, err := h.s.Create(h.ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Start(h.ctx, "lease"); err != nil {
		t.Fatal(err)
	}
	trunkB := NewSimTrunk(h.clock)
	b := h.serviceWith("node-b", store, newFakeReps("rep1", "rep2", "rep3"), trunkB)
	// A takes the lease and dials; B, ticking beside it, places nothing.
	h.runUntil(h.s, time.Minute, func() bool {
		b.Tick(h.ctx)
		return len(h.trunk.Dials()) >= 3
	})
	if b.runner("lease") != nil || len(trunkB.Dials()) != 0 {
		t.Fatal("node b ran a campaign node a holds")
	}
	// A stops ticking (dies): once its lease lapses (a second of
	// Valkey's clock), B takes the campaign over and finishes it.
	deadline := time.Now().Add(5 * time.Second)
	for b.runner("lease") == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		b.Tick(h.ctx)
	}
	if b.runner("lease") == nil {
		t.Fatal("node b never took the lapsed lease")
	}
	h.runUntil(b, time.Hour, func() bool { return h.state("lease") == StateDone })
	if len(trunkB.Dials()) == 0 {
		t.Fatal("node b dialed nothing")
	}
	dialsAtMostOnce(t, h.trunk, trunkB)
	noneLost(t, store, "lease", 12, spec.Attempts)
}

// A call another node follows is left to it while that node's heartbeat
// holds, and concluded as interrupted once it lapses.
func TestCallsOfALiveNodeAreNotConcludedByTheCampaignsRunner(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, 2)
	custs := h.customers(2, "0")
	spec := h.spec("pv", custs)
	spec.Mode, spec.Skills, spec.Reps = ModePreview, nil, []string{"rep1"}
	if _, err := h.s.Create(h.ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Start(h.ctx, "pv"); err != nil {
		t.Fatal(err)
	}
	b := h.service("node-b")
	b.Tick(h.ctx) // b runs the campaign
	if b.runner("pv") == nil {
		t.Fatal("node b does not run the campaign")
	}
	// The rep's requests are served by node a, which follows the call.
	dialOnA := func() string {
		card, err := h.s.NextPreview(h.ctx, "rep1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.s.Dial(h.ctx, "rep1", card.AttemptID); err != nil {
			t.Fatal(err)
		}
		return card.AttemptID
	}
	first := dialOnA()
	h.runUntil(b, 5*time.Minute, func() bool {
		h.s.Tick(h.ctx) // a's heartbeat
		a, _ := h.store.Attempt(h.ctx, first)
		return a.State == AttemptDone
	})
	if a, _ := h.store.Attempt(h.ctx, first); a.Outcome != OutcomeAnswered || a.Node != "node-a" {
		t.Fatalf("a live node's call: %+v", a)
	}
	// Node a dies mid-call: b concludes the call once a's heartbeat lapses.
	second := dialOnA()
	h.runUntil(b, 5*time.Minute, func() bool {
		a, _ := h.store.Attempt(h.ctx, second)
		return a.State == AttemptDone
	})
	if a, _ := h.store.Attempt(h.ctx, second); a.Outcome != OutcomeInterrupted {
		t.Fatalf("a dead node's call: %+v", a)
	}
	if next, err := h.store.Attempt(h.ctx, attemptID("pv", 1, 2)); err != nil || next.State != AttemptDue {
		t.Fatalf("the customer's next try: %+v %v", next, err)
	}
}
