package callsim

import (
	"errors"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer/pacing"
)

func short(reps int, shift time.Duration) Scenario {
	sc := Issue13(reps)
	sc.Shift = shift
	return sc
}

func run(t testing.TB, sc Scenario, mode string, seed uint64) Result {
	t.Helper()
	m, err := pacing.ParseMode(mode)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pacing.New(m, pacing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(sc, p, seed)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDeterministicPerSeed(t *testing.T) {
	t.Parallel()
	sc := short(20, 20*time.Minute)
	a, b := run(t, sc, "predictive", 7), run(t, sc, "predictive", 7)
	if a != b {
		t.Fatalf("seed 7 twice:\n%+v\n%+v", a, b)
	}
	if c := run(t, sc, "predictive", 8); c == a {
		t.Fatalf("seeds 7 and 8 gave the same run %+v", c)
	}
}

func TestConservation(t *testing.T) {
	t.Parallel()
	sc := short(20, 20*time.Minute)
	sc.DriftTo = 0.1
	for _, mode := range []string{"progressive", "ratio:3", "vici", "predictive"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			r := run(t, sc, mode, 1)
			if r.Dialed == 0 || r.Answered == 0 {
				t.Fatalf("nothing happened: %+v", r)
			}
			if got := r.Answered + r.Machine + r.Unanswered + r.Ringing; got != r.Dialed {
				t.Fatalf("answered+machine+unanswered+ringing = %d, dialed %d: %+v", got, r.Dialed, r)
			}
			if r.Abandoned > r.Answered {
				t.Fatalf("abandoned %d of %d answered", r.Abandoned, r.Answered)
			}
			if r.TalkOccupancy <= 0 || r.TalkOccupancy > 1 {
				t.Fatalf("occupancy %v", r.TalkOccupancy)
			}
		})
	}
}

func TestProgressiveNeverAbandons(t *testing.T) {
	t.Parallel()
	for _, reps := range []int{1, 10, 50} {
		if r := run(t, short(reps, 30*time.Minute), "progressive", 3); r.Abandoned != 0 || r.Answered == 0 {
			t.Fatalf("%d reps: %+v", reps, r)
		}
	}
}

// TestPredictiveBeatsProgressive: on a short shift, predictive keeps
// reps busier than progressive and abandons under the 3% target.
func TestPredictiveBeatsProgressive(t *testing.T) {
	t.Parallel()
	sc := short(50, 40*time.Minute)
	prog, pred := run(t, sc, "progressive", 2), run(t, sc, "predictive", 2)
	if pred.TalkOccupancy < prog.TalkOccupancy+0.08 {
		t.Fatalf("occupancy predictive %.3f, progressive %.3f: want 8 points more", pred.TalkOccupancy, prog.TalkOccupancy)
	}
	if pred.AbandonRate > 0.03 {
		t.Fatalf("predictive abandoned %.2f%% (%d of %d)", 100*pred.AbandonRate, pred.Abandoned, pred.Answered)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*Scenario)
	}{
		{"no reps", func(s *Scenario) { s.Reps = 0 }},
		{"no shift", func(s *Scenario) { s.Shift = 0 }},
		{"chances over 1", func(s *Scenario) { s.Answer = 0.5 }},
		{"negative chance", func(s *Scenario) { s.Answer, s.NoAnswer = -0.1, 0.85 }},
		{"drift above 1", func(s *Scenario) { s.DriftTo = 1.5 }},
		{"no ring timeout", func(s *Scenario) { s.RingTimeout = 0 }},
		{"negative CV", func(s *Scenario) { s.TalkCV = -1 }},
		{"busy bounds", func(s *Scenario) { s.BusyMin = 5 * time.Second; s.BusyMax = time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := Issue13(10)
			tc.edit(&sc)
			if _, err := Run(sc, pacing.Progressive{}, 1); !errors.Is(err, ErrScenario) {
				t.Fatalf("Run: %v, want ErrScenario", err)
			}
		})
	}
	if err := Issue13(10).Validate(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkShift500 simulates one 8-hour shift of 500 reps with the
// predictive pacer.
func BenchmarkShift500(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		run(b, Issue13(500), "predictive", uint64(i+1))
	}
}
