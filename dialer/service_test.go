package dialer

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

func TestCreateRefusesBadInputAndCreatesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, 2)
	cases := []struct {
		name string
		edit func(*Spec)
		want []string
	}{
		{"csv with bad numbers", func(s *Spec) {
			s.Audience = Audience{CSV: "phone,name\n+8613800001111,Ann\n+86 999 bad,Bob\n\n12,Cy\n+8613800002222,Di\n"}
		}, []string{"csv line 3:", "csv line 5:"}},
		{"ring timeout under 15s", func(s *Spec) { s.RingTimeout = contact.Duration(10 * time.Second) }, []string{"ring_timeout 10s is under 15s"}},
		{"abandon target over 3%", func(s *Spec) { s.AbandonTarget = 0.05 }, []string{"abandon_target 0.05"}},
		{"unknown skill", func(s *Spec) { s.Skills = map[string]int{"sales": 1, "klingon": 1} }, []string{`skills: "klingon" is not a skill`}},
		{"every problem at once", func(s *Spec) {
			s.ID, s.Purpose, s.CallerID, s.Mode = "Bad ID", "spam", "12345", "turbo"
			s.Trial = &Trial{Sample: 0.2}
			s.Schedule = []Window{{Days: []string{"funday"}, From: "18:00", To: "09:00", Zone: "Mars/Base"}}
			s.Retry.Busy = "soon"
		}, []string{"id", "purpose \"spam\"", "caller_id", "mode", "trial.sample", "funday", "from 18:00", "Mars/Base", "retry.busy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := h.spec("c-bad", h.customers(1, "0"))
			tc.edit(&spec)
			_, err := h.s.Create(h.ctx, spec)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "999") {
				t.Errorf("error %q echoes a number", err)
			}
		})
	}
	cs, _ := h.store.Campaigns(h.ctx)
	as, _ := h.store.Attempts(h.ctx, "c-bad")
	if len(cs) != 0 || len(as) != 0 {
		t.Fatalf("%d campaigns and %d attempts stored after refusals", len(cs), len(as))
	}
	// The CSV's good numbers made no customers either.
	if ids, _ := h.sess.IdentityOwner(h.ctx, phoneID("+8613800001111")); ids != "" {
		t.Fatalf("a refused CSV created customer %s", ids)
	}
}

func TestProgressiveCampaignRunsToDone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, 2)
	custs := h.customers(6, "0347") // answer, machine, busy, no answer
	spec := h.spec("spring", custs)
	spec.Attempts = 1
	c, err := h.s.Create(h.ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != StateCreated || c.Audience != 6 || c.Spec.Mode != ModeProgressive {
		t.Fatalf("created %+v", c)
	}
	if _, err := h.s.Approve(h.ctx, "spring"); !errors.Is(err, ErrState) {
		t.Fatalf("approve a created campaign: %v, want ErrState", err)
	}
	if _, err := h.s.Start(h.ctx, "spring"); err != nil {
		t.Fatal(err)
	}
	h.runUntil(h.s, 10*time.Minute, func() bool { return h.state("spring") == StateDone })

	p, err := h.s.Progress(h.ctx, "spring")
	if err != nil {
		t.Fatal(err)
	}
	if p.Dialed != 6 || p.Answered != 2 || p.Machine != 2 || p.Abandoned != 0 || p.Remaining != 0 {
		t.Fatalf("progress %+v", p)
	}
	for id, n := range h.dialsPerAttempt() {
		if n != 1 {
			t.Errorf("attempt %s dialed %d times", id, n)
		}
	}
	if h.reps.holding() != 0 {
		t.Fatalf("%d reps still held", h.reps.holding())
	}
	mfs, err := h.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "omnigate_dialer_attempts_total" {
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if want := map[string]float64{"answered": 2, "machine": 2, "busy": 1, "no_answer": 1}; !maps.Equal(got, want) {
		t.Fatalf("omnigate_dialer_attempts_total %v, want %v", got, want)
	}
	// The answering customer's timeline: dialed, then the outcome with
	// ring and talk time and the rep; the number masked.
	evs := h.callEvents(custs[0])
	if len(evs) != 2 || evs[0].Step != StepDialed || evs[1].Step != StepOutcome {
		t.Fatalf("timeline %+v", evs)
	}
	if o := evs[1]; o.Outcome != OutcomeAnswered || o.RingMS < 4000 || o.TalkMS < 50000 || o.Rep == "" || strings.Contains(o.Number, "0000") {
		t.Fatalf("outcome event %+v", o)
	}
	// A rep marks the outcome after the call.
	a, err := h.store.Attempt(h.ctx, evs[1].Attempt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.MarkOutcome(h.ctx, "someone-else", a.ID, "sale", ""); !errors.Is(err, ErrState) {
		t.Fatalf("another rep marking: %v", err)
	}
	if _, err := h.s.MarkOutcome(h.ctx, a.Rep, a.ID, "sale", "wants the blue one"); err != nil {
		t.Fatal(err)
	}
	if evs := h.callEvents(custs[0]); evs[len(evs)-1].RepOutcome != "sale" {
		t.Fatalf("timeline after marking %+v", evs)
	}
	// Every step of the attempt is in one conversation, the mark too.
	raw, _ := h.sess.Timeline(h.ctx, custs[0], 0, 100)
	convs := map[string]bool{}
	for _, ev := range raw {
		if ev.Author == AuthorDialer {
			convs[ev.ConversationID] = true
		}
	}
	if len(convs) != 1 || convs[""] {
		t.Fatalf("the attempt's events are in conversations %v", convs)
	}
}

func TestNoDialsWithoutAReadyRepOrWhilePaused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, 1)
	h.reps.setPresence("rep1", router.PresenceAway)
	if _, err := h.s.Create(h.ctx, h.spec("wait", h.customers(3, "0"))); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Start(h.ctx, "wait"); err != nil {
		t.Fatal(err)
	}
	// Tick decides and dials before it returns: after it, nothing was
	// dialed because nobody was ready.
	for range 5 {
		h.s.Tick(h.ctx)
		h.clock.Advance(time.Second)
	}
	if p, _ := h.s.Progress(h.ctx, "wait"); len(h.trunk.Dials()) != 0 || !p.Running || p.Ready != 0 {
		t.Fatalf("%d dials with no rep ready; progress %+v", len(h.trunk.Dials()), p)
	}
	if _, err := h.s.Pause(h.ctx, "wait"); err != nil {
		t.Fatal(err)
	}
	h.reps.setPresence("rep1", router.PresenceAvailable)
	h.s.Tick(h.ctx)
	if len(h.trunk.Dials()) != 0 {
		t.Fatal("a paused campaign dialed")
	}
	if c, err := h.s.Resume(h.ctx, "wait"); err != nil || c.State != StateRunning {
		t.Fatalf("resume: %+v %v", c, err)
	}
	h.s.Tick(h.ctx)
	if p, _ := h.s.Progress(h.ctx, "wait"); len(h.trunk.Dials()) != 1 || p.Lines != 1 || p.Ready != 1 {
		t.Fatalf("after resume: %d dials, progress %+v; want one line for the one rep", len(h.trunk.Dials()), p)
	}
	if c, err := h.s.Stop(h.ctx, "wait"); err != nil || c.State != StateStopped {
		t.Fatalf("stop: %+v %v", c, err)
	}
	if _, err := h.s.Resume(h.ctx, "wait"); !errors.Is(err, ErrState) {
		t.Fatalf("resume a stopped campaign: %v", err)
	}
}

func TestCreateAfterACrashMidCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, 1)
	// A Create that died after storing attempts, before the campaign.
	for i := range 4 {
		if _, err := h.store.SaveAttempts(h.ctx, att("redo", i, AttemptDue, t0)); err != nil {
			t.Fatal(err)
		}
	}
	custs := h.customers(2, "0")
	if _, err := h.s.Create(h.ctx, h.spec("redo", custs)); err != nil {
		t.Fatal(err)
	}
	as, _ := h.store.Attempts(h.ctx, "redo")
	due := 0
	for _, a := range as {
		switch {
		case a.State == AttemptDue && (a.CustomerID == custs[0] || a.CustomerID == custs[1]):
			due++
		case a.State != AttemptDone:
			t.Errorf("leftover %+v not concluded", a)
		}
	}
	if due != 2 {
		t.Fatalf("%d due, want the 2 customers: %+v", due, as)
	}
	// A customer with no phone number is left out; nobody left is an error.
	c, _, err := h.sess.ResolveCustomer(h.ctx, sessions.Identity{Kind: sessions.IdentityEmail, Value: "no@phone.test"}, sessions.Customer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Create(h.ctx, h.spec("nophone", []string{c.ID})); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an audience without phones: %v", err)
	}
}

// flakyTrunk refuses calls: busy for the first busy dials, failed for
// numbers ending in 9.
type flakyTrunk struct {
	*SimTrunk
	mu   sync.Mutex
	busy int
}

func (t *flakyTrunk) Dial(ctx context.Context, d Dial) (Call, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.busy > 0 {
		t.busy--
		return nil, ErrTrunkBusy
	}
	if strings.HasSuffix(d.To, "9") {
		return nil, errors.New("no route")
	}
	return t.SimTrunk.Dial(ctx, d)
}

func TestTrunkRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, 2)
	trunk := &flakyTrunk{SimTrunk: h.trunk, busy: 3}
	s := h.serviceWith("node-a", h.store, h.reps, trunk)
	custs := h.customers(2, "09")
	spec := h.spec("flaky", custs)
	spec.Attempts = 1
	if _, err := s.Create(h.ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(h.ctx, "flaky"); err != nil {
		t.Fatal(err)
	}
	h.runUntil(s, 5*time.Minute, func() bool { return h.state("flaky") == StateDone })
	as, _ := h.store.Attempts(h.ctx, "flaky")
	if len(as) != 2 || as[0].Outcome != OutcomeAnswered || as[1].Outcome != OutcomeFailed || h.reps.holding() != 0 {
		t.Fatalf("attempts %+v, %d reps held", as, h.reps.holding())
	}
	// The busy trunk's refusals placed nothing: one call went out.
	if n := len(h.trunk.Dials()); n != 1 {
		t.Fatalf("%d calls placed", n)
	}
}
