package dialer

import (
	"testing"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/dialer/pacing"
	"github.com/omnigate/omnigate/sessions"
)

// With the real contact policy: a dial is a touch with the attempt's id,
// and an abandoned call locks its customer out of campaign calls.
func TestAbandonedCallLocksTheCustomerOutUnderTheRealPolicy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, 1)
	h.clock.Advance(16 * time.Hour) // 10:00 in Shanghai, inside contact hours
	policy, err := contact.NewPolicy(contact.Config{}, contact.Options{Ledger: h.ledger,
		Suppressions: contact.NewMemorySuppressions(), Store: h.sess, Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	h.pacer = func(PacerConfig) (pacing.Pacer, error) { return ratioPacer{2}, nil }
	s, err := New(Options{Store: h.store, Sessions: h.sess, Policy: policy, Ledger: h.ledger, Reps: h.reps,
		Roster: h.s.o.Roster, Trunk: h.trunk, Clock: h.clock, Pacer: h.pacer})
	if err != nil {
		t.Fatal(err)
	}
	custs := h.customers(2, "0")
	spec := h.spec("lock", custs)
	spec.Mode, spec.Purpose, spec.Attempts = ModePredictive, "service", 1
	if _, err := s.Create(h.ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(h.ctx, "lock"); err != nil {
		t.Fatal(err)
	}
	h.runUntil(s, 10*time.Minute, func() bool { return h.state("lock") == StateDone })
	as, _ := h.store.Attempts(h.ctx, "lock")
	var abandoned Attempt
	for _, a := range as {
		if a.Policy != string(channels.Allow) {
			t.Fatalf("attempt %+v was not allowed by the policy", a)
		}
		if ts, _ := h.ledger.Touches(h.ctx, a.CustomerID, time.Time{}); len(ts) == 0 || ts[0].ID != a.ID {
			t.Fatalf("the dial's touch is not the attempt: %+v", ts)
		}
		if a.Outcome == OutcomeAbandoned {
			abandoned = a
		}
	}
	if abandoned.ID == "" {
		t.Fatalf("no call abandoned: %+v", as)
	}
	d, err := policy.Evaluate(h.ctx, contact.Request{CustomerID: abandoned.CustomerID, Channel: sessions.ChannelVoice,
		Purpose: "service", Campaign: "another", Topic: Topic("another"), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	locked := false
	for _, r := range d.Reasons {
		locked = locked || r.Code == contact.ReasonAbandonedLockout
	}
	if d.Decision == channels.Allow || !locked {
		t.Fatalf("after an abandoned call: %+v, want the abandoned lockout", d)
	}
}
