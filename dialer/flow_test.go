package dialer

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/dialer/pacing"
	"github.com/omnigate/omnigate/sessions"
)

func TestTrialSampleThenApproveDialsTheRestOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, 10)
	custs := h.customersTiered(200, "0127", "AB")
	// A third had a voice call before: channel history is a stratum.
	for i := 0; i < len(custs); i += 3 {
		if err := h.ledger.Record(h.ctx, contact.Touch{ID: "old" + custs[i], CustomerID: custs[i], Channel: sessions.ChannelVoice,
			Direction: contact.Outbound, Purpose: "service", At: t0.Add(-48 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	spec := h.spec("trial", custs)
	spec.Trial = &Trial{Sample: 0.04}
	spec.Attempts = 1
	c, err := h.s.Create(h.ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if c.TrialSize != 8 {
		t.Fatalf("trial of %d customers, want 4%% of 200", c.TrialSize)
	}
	if _, err := h.s.Start(h.ctx, "trial"); err != nil {
		t.Fatal(err)
	}
	h.runUntil(h.s, 10*time.Minute, func() bool { return h.state("trial") == StateTrialDone })

	dialed := map[string]bool{}
	for _, d := range h.trunk.Dials() {
		dialed[d.AttemptID] = true
	}
	rep, err := h.s.TrialReport(h.ctx, "trial")
	if err != nil {
		t.Fatal(err)
	}
	// Tier A/B × voice/new, region CN: four strata of 34, 33, 66, 67
	// customers get 1, 1, 3, 3 (largest remainders).
	if len(rep.Strata) != 4 || len(dialed) != 8 || rep.Dialed != 8 || rep.Concluded != 8 {
		t.Fatalf("trial report %+v after %d dials", rep, len(dialed))
	}
	want := map[string]int{"A|CN|voice": 1, "B|CN|voice": 1, "A|CN|new": 3, "B|CN|new": 3}
	for k, n := range rep.Strata {
		if n != want[k] {
			t.Errorf("stratum %s has %d, want %d", k, n, want[k])
		}
	}
	// Talk is 60s on the trunk's clock; the dialer reads the clock when
	// its goroutine gets to it, which the test's ticks may outrun.
	if rep.Answered != 6 || rep.ConnectRate != 0.75 || rep.AverageTalk < 50*time.Second || rep.AverageTalk > 70*time.Second || rep.AbandonRate != 0 {
		t.Fatalf("trial numbers %+v", rep)
	}
	if _, err := h.s.Reject(h.ctx, "trial", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reject without a reason: %v", err)
	}
	if _, err := h.s.Approve(h.ctx, "trial"); err != nil {
		t.Fatal(err)
	}
	h.runUntil(h.s, 30*time.Minute, func() bool { return h.state("trial") == StateDone })
	perCustomer := map[string]int{}
	for _, d := range h.trunk.Dials() {
		perCustomer[d.To]++
	}
	if len(perCustomer) != 200 {
		t.Fatalf("%d customers dialed, want 200", len(perCustomer))
	}
	for _, n := range perCustomer {
		if n != 1 {
			t.Fatal("a customer was dialed twice")
		}
	}
}

func TestRejectEndsATrialCampaign(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, 2)
	spec := h.spec("nope", h.customers(40, "0"))
	spec.Trial = &Trial{Sample: 0.05}
	spec.Attempts = 1
	if _, err := h.s.Create(h.ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Start(h.ctx, "nope"); err != nil {
		t.Fatal(err)
	}
	h.runUntil(h.s, 10*time.Minute, func() bool { return h.state("nope") == StateTrialDone })
	c, err := h.s.Reject(h.ctx, "nope", "script too long")
	if err != nil || c.State != StateRejected || c.RejectReason != "script too long" {
		t.Fatalf("reject: %+v %v", c, err)
	}
	if _, err := h.s.Approve(h.ctx, "nope"); !errors.Is(err, ErrState) {
		t.Fatalf("approve after reject: %v", err)
	}
}

func TestPolicyDenyAndDeferAreOnTheTimeline(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, 2)
	custs := h.customers(3, "0")
	h.policy.set(custs[0], contact.Decision{Decision: channels.Deny,
		Reasons: []contact.Reason{{Code: contact.ReasonDoNotContact, Decision: channels.Deny, Detail: "on the do-not-call list"}}})
	later := t0.Add(3 * time.Minute)
	h.policy.set(custs[1], contact.Decision{Decision: channels.Defer, Until: later,
		Reasons: []contact.Reason{{Code: contact.ReasonQuietHours, Decision: channels.Defer, Until: later}}})
	spec := h.spec("pol", custs)
	if _, err := h.s.Create(h.ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Start(h.ctx, "pol"); err != nil {
		t.Fatal(err)
	}
	h.runUntil(h.s, 5*time.Minute, func() bool {
		evs := h.callEvents(custs[2])
		return len(evs) == 2 && len(h.callEvents(custs[0])) == 1 && len(h.callEvents(custs[1])) == 1
	})
	denied := h.callEvents(custs[0])[0]
	if denied.Step != StepSkipped || denied.Policy != "deny" || denied.Reasons[0].Code != contact.ReasonDoNotContact {
		t.Fatalf("denied: %+v", denied)
	}
	deferred := h.callEvents(custs[1])[0]
	if deferred.Step != StepDeferred || !deferred.Until.Equal(later) || deferred.Reasons[0].Code != contact.ReasonQuietHours {
		t.Fatalf("deferred: %+v", deferred)
	}
	// Every dial asked the policy with the attempt as the touch.
	h.policy.mu.Lock()
	for _, r := range h.policy.requests {
		if r.TouchID == "" || campaignOf(r.TouchID) != "pol" || r.Campaign != "pol" || r.Purpose != "sales" || r.Topic != "campaign:pol" {
			t.Errorf("request %+v", r)
		}
	}
	h.policy.mu.Unlock()
	// The deferred customer is dialed once the policy allows.
	h.policy.set(custs[1], contact.Decision{Decision: channels.Allow, Recorded: true})
	h.runUntil(h.s, 10*time.Minute, func() bool { return h.state("pol") == StateDone })
	if evs := h.callEvents(custs[1]); len(evs) != 3 || evs[1].Step != StepDialed {
		t.Fatalf("deferred customer's timeline %+v", evs)
	}
	if h.clock.Now().Before(later) {
		t.Fatal("dialed before the policy's until")
	}
}

// ratioPacer dials ratio lines per ready rep: enough to abandon.
type ratioPacer struct{ ratio int }

func (ratioPacer) Observe(pacing.Observation) {}
func (p ratioPacer) Decide(s pacing.Snapshot) int {
	return max(s.Ready*p.ratio-len(s.Ringing)-s.Waiting, 0)
}

func TestNoRepWithinTheConnectLimitAbandons(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, 1)
	h.pacer = func(PacerConfig) (pacing.Pacer, error) { return ratioPacer{2}, nil }
	h.s = h.service("node-a")
	custs := h.customers(6, "0")
	spec := h.spec("pred", custs)
	spec.Mode = ModePredictive
	spec.Attempts = 1
	spec.Abandon = AbandonAction{Message: "sorry.wav"}
	if _, err := h.s.Create(h.ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Start(h.ctx, "pred"); err != nil {
		t.Fatal(err)
	}
	h.runUntil(h.s, 20*time.Minute, func() bool { return h.state("pred") == StateDone })
	as, _ := h.store.Attempts(h.ctx, "pred")
	var abandoned []Attempt
	for _, a := range as {
		if a.Outcome == OutcomeAbandoned {
			abandoned = append(abandoned, a)
		}
	}
	if len(abandoned) != 1 {
		for _, a := range as {
			t.Logf("%s %s dialed %v answered %v ended %v rep %q", a.ID, a.Outcome, a.DialedAt.Sub(t0), a.AnsweredAt.Sub(t0), a.EndedAt.Sub(t0), a.Rep)
		}
		t.Fatalf("%d abandoned, want the one the guard allowed", len(abandoned))
	}
	a := abandoned[0]
	if waited := a.EndedAt.Sub(a.AnsweredAt); waited < 2*time.Second || a.Rep != "" {
		t.Fatalf("abandoned after %v with rep %q, want the 2s connect limit and no rep", waited, a.Rep)
	}
	// The ledger has the abandonment, so the policy's 72 h lockout applies.
	ts, _ := h.ledger.Touches(h.ctx, a.CustomerID, time.Time{})
	if len(ts) != 1 || ts[0].Outcome != contact.OutcomeAbandoned || ts[0].Campaign != "pred" {
		t.Fatalf("ledger %+v", ts)
	}
	evs := h.callEvents(a.CustomerID)
	if last := evs[len(evs)-1]; last.Outcome != OutcomeAbandoned {
		t.Fatalf("timeline %+v", evs)
	}
	p, _ := h.s.Progress(h.ctx, "pred")
	if p.Abandoned != 1 || p.Answered != 6 || !p.Guarded || p.AbandonRate < 0.03 {
		t.Fatalf("progress %+v: the guard should hold the campaign to progressive", p)
	}
}

func TestPreviewCardDialSkip(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, 2)
	custs := h.customers(3, "0")
	spec := h.spec("prev", custs)
	spec.Mode, spec.Skills, spec.Reps = ModePreview, nil, []string{"rep1"}
	if _, err := h.s.Create(h.ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.NextPreview(h.ctx, "rep1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("card before start: %v", err)
	}
	if _, err := h.s.Start(h.ctx, "prev"); err != nil {
		t.Fatal(err)
	}
	card, err := h.s.NextPreview(h.ctx, "rep1")
	if err != nil || card.CustomerID != custs[0] || card.Name != "Customer 0" || strings.Contains(card.Number, "0000") {
		t.Fatalf("card %+v %v", card, err)
	}
	if again, _ := h.s.NextPreview(h.ctx, "rep1"); again != card {
		t.Fatalf("second card %+v, want the held one", again)
	}
	if _, err := h.s.NextPreview(h.ctx, "rep2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a rep outside the campaign: %v", err)
	}
	if _, err := h.s.Dial(h.ctx, "rep2", card.AttemptID); !errors.Is(err, ErrState) {
		t.Fatalf("another rep dialing the card: %v", err)
	}
	if _, err := h.s.Skip(h.ctx, "rep1", card.AttemptID, "called yesterday"); err != nil {
		t.Fatal(err)
	}
	if evs := h.callEvents(custs[0]); len(evs) != 1 || evs[0].Reasons[0].Code != ReasonRepSkipped {
		t.Fatalf("skipped timeline %+v", evs)
	}
	card, err = h.s.NextPreview(h.ctx, "rep1")
	if err != nil || card.CustomerID != custs[1] {
		t.Fatalf("next card %+v %v", card, err)
	}
	a, err := h.s.Dial(h.ctx, "rep1", card.AttemptID)
	if err != nil || a.State != AttemptDialing || a.Rep != "rep1" {
		t.Fatalf("dial: %+v %v", a, err)
	}
	h.runUntil(h.s, 5*time.Minute, func() bool {
		a, _ := h.store.Attempt(h.ctx, card.AttemptID)
		return a.State == AttemptDone
	})
	if a, _ := h.store.Attempt(h.ctx, card.AttemptID); a.Outcome != OutcomeAnswered || a.Rep != "rep1" {
		t.Fatalf("preview call %+v", a)
	}
	if _, err := h.s.MarkOutcome(h.ctx, "rep1", card.AttemptID, "callback", "after 6pm"); err != nil {
		t.Fatal(err)
	}
	// The runner never dials a preview campaign by itself.
	if n := len(h.trunk.Dials()); n != 1 {
		t.Fatalf("%d dials, want the rep's one", n)
	}
}
