package sim

import (
	"math"
	"testing"
	"time"
)

func TestErlangFormulas(t *testing.T) {
	t.Parallel()
	h := 240 * time.Second
	a := 360.0 / 1800 * h.Seconds() // 48 Erlangs
	near := func(name string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.4f, want %.4f ± %.4f", name, got, want, tol)
		}
	}
	near("offered load", a, 48, 1e-9)
	near("Erlang C", ErlangC(55, a), 0.239, 0.001)
	near("service level 20s", ServiceLevel(55, a, h, 20*time.Second), 0.867, 0.001)
	near("ASA", ASA(55, a, h).Seconds(), 8.2, 0.05)
	near("Erlang B(1, 1)", ErlangB(1, 1), 0.5, 1e-12)
	near("Erlang C(1, 0.5)", ErlangC(1, 0.5), 0.5, 1e-12) // M/M/1: ρ
	ea := ErlangA(48, 0.2, h, 120*time.Second)
	near("Erlang A abandonment, 48 reps", ea.Abandon, 0.067, 0.001)
	near("Erlang A abandonment, 52 reps", ErlangA(52, 0.2, h, 120*time.Second).Abandon, 0.033, 0.001)
	// With patience far longer than any wait, Erlang A is Erlang C.
	inf := ErlangA(55, 0.2, h, 1e6*time.Second)
	near("Erlang A → C", inf.PWait, ErlangC(55, a), 1e-3)
	near("Erlang A → C ASA", inf.MeanWait.Seconds(), ASA(55, a, h).Seconds(), 0.05)
}
