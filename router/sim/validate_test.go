package sim

import (
	"flag"
	"testing"
	"time"
)

var long = flag.Bool("long", false, "run the Erlang validation with 10× the simulated hours")

// The validation runs independent replications (seeds 1..n) of a
// 30-minute warm-up and some hours of arrivals each, and asserts that
// the analytic value lies in the 99% Student-t interval of the replication
// means, and that the interval is narrow enough to mean something.
func replications(n int, hours float64) (int, float64) {
	if *long {
		return 40, 5 * hours
	}
	return n, hours
}

func TestErlangC(t *testing.T) {
	t.Parallel()
	const reps, calls = 55, 360.0
	h := 240 * time.Second
	a := calls / 1800 * h.Seconds()
	n, hours := replications(12, 16)
	stats, err := Replicate(ErlangScenario(reps, calls, h, 0, hours), n)
	if err != nil {
		t.Fatal(err)
	}
	check := []struct {
		name     string
		analytic float64
		ci       CI
		maxHalf  float64
		scale    float64
	}{
		{"P(wait)", ErlangC(reps, a), Metric(stats, func(s Stats) float64 { return s.PWait }), 0.035, 100},
		{"service level 80/20", ServiceLevel(reps, a, h, 20*time.Second), Metric(stats, func(s Stats) float64 { return s.ServiceLevel }), 0.025, 100},
		{"ASA (s)", ASA(reps, a, h).Seconds(), Metric(stats, func(s Stats) float64 { return s.ASA.Seconds() }), 3, 1},
		{"occupancy", a / reps, Metric(stats, func(s Stats) float64 { return s.OccupancyMean }), 0.02, 100},
	}
	for _, c := range check {
		t.Logf("%-20s analytic %7.2f  simulated %s (n=%d, 99%%)", c.name, c.analytic*c.scale, c.ci.Format(c.scale), c.ci.N)
		if !c.ci.Contains(c.analytic) {
			t.Errorf("%s: analytic %.4f outside %s", c.name, c.analytic, c.ci)
		}
		if c.ci.Half > c.maxHalf {
			t.Errorf("%s: interval ±%.4f wider than ±%.4f: too few simulated hours", c.name, c.ci.Half, c.maxHalf)
		}
	}
}

func TestErlangA(t *testing.T) {
	t.Parallel()
	h, p := 240*time.Second, 120*time.Second
	n, hours := replications(10, 6)
	for _, tc := range []struct {
		reps int
		want float64 // the published figure
	}{{48, 0.067}, {52, 0.033}} {
		stats, err := Replicate(ErlangScenario(tc.reps, 360, h, p, hours), n)
		if err != nil {
			t.Fatal(err)
		}
		ea := ErlangA(tc.reps, 0.2, h, p)
		ab := Metric(stats, func(s Stats) float64 { return s.AbandonRate })
		pw := Metric(stats, func(s Stats) float64 { return s.PWait })
		t.Logf("%d reps: abandonment analytic %.2f %% simulated %s; P(wait) analytic %.2f %% simulated %s",
			tc.reps, ea.Abandon*100, ab.Percent(), ea.PWait*100, pw.Percent())
		if d := ea.Abandon - tc.want; d > 0.001 || d < -0.001 {
			t.Errorf("analytic abandonment %.4f, published %.3f", ea.Abandon, tc.want)
		}
		if !ab.Contains(ea.Abandon) || !pw.Contains(ea.PWait) {
			t.Errorf("%d reps: analytic outside the interval", tc.reps)
		}
		if ab.Half > 0.015 {
			t.Errorf("abandonment interval ±%.4f too wide", ab.Half)
		}
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	s := ErlangScenario(50, 360, 240*time.Second, 120*time.Second, 1)
	a, err := Simulate(s, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Simulate(s, 7)
	if len(a.Contacts) == 0 || len(a.Contacts) != len(b.Contacts) || a.Decisions != b.Decisions {
		t.Fatalf("runs differ: %d/%d contacts", len(a.Contacts), len(b.Contacts))
	}
	for i := range a.Contacts {
		if a.Contacts[i] != b.Contacts[i] {
			t.Fatalf("contact %d differs: %+v vs %+v", i, a.Contacts[i], b.Contacts[i])
		}
	}
}
