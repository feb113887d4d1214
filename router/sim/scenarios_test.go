package sim

import (
	"testing"
	"time"

	"github.com/omnigate/omnigate/router"
)

// TestMixedScenario runs each strategy of the report briefly: the scenario
// builds, the router accepts it, and the figures are sane.
func TestMixedScenario(t *testing.T) {
	t.Parallel()
	for _, name := range Strategies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := MixedScenario(name)
			if err != nil {
				t.Fatal(err)
			}
			s.Duration = s.Warmup + s.Duration/8 // one hour
			run, err := Simulate(s, 1)
			if err != nil {
				t.Fatal(err)
			}
			st := Summarise(run, s.Targets)
			if st.Offered < 500 || st.Answered+st.Abandoned+st.Overflowed != st.Offered || st.ServiceLevel <= 0.3 || st.Jain <= 0 || st.Jain > 1 {
				t.Fatalf("%+v", st)
			}
			if (name == "ring") != (st.OwnerHitRate > 0.1) && name != "ring_no_owner_wait" {
				t.Errorf("owner hit rate %.3f", st.OwnerHitRate)
			}
		})
	}
	if _, err := MixedScenario("nope"); err == nil {
		t.Error("unknown strategy accepted")
	}
}

// TestOffers runs the Erlang scenario with offers that reps accept after
// 2 s: every contact is answered or abandoned, none before the accept.
func TestOffers(t *testing.T) {
	t.Parallel()
	s := ErlangScenario(50, 360, 4*time.Minute, 2*time.Minute, 1)
	s.Router.Queues = []router.QueueConfig{{Name: "voice", Offer: router.OfferConfig{AcceptTimeout: 10 * time.Second}}}
	s.AcceptDelay = 2 * time.Second
	run, err := Simulate(s, 3)
	if err != nil {
		t.Fatal(err)
	}
	st := Summarise(run, nil)
	if st.Offered < 500 || st.Answered+st.Abandoned != st.Offered {
		t.Fatalf("%+v", st)
	}
	for _, c := range run.Contacts {
		if c.Answered && c.Wait < 2*time.Second {
			t.Fatalf("answered before accepting: %+v", c)
		}
	}
}
