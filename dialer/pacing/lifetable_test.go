package pacing

import (
	"math"
	"testing"
	"time"
)

func TestLifeTable(t *testing.T) {
	t.Parallel()
	// Wrap-up fixed at 15 s: an item aged 10 s ends within 6 s, not 4.
	wrap := newLifeTable(500*time.Millisecond, 5*time.Minute, 1, 0)
	for range 20 {
		wrap.add(0, 0, 15*time.Second)
	}
	wrap.refresh(0, []time.Duration{10 * time.Second}, 30)
	out := make([]float64, 8)
	wrap.within(10, 0, -1, 1, out)
	if out[4] != 0 || out[6] != 1 {
		t.Fatalf("ended by 4 s %v, by 6 s %v; want 0 and 1", out[4], out[6])
	}
	if m := wrap.mean(); m != 15 {
		t.Fatalf("mean %v", m)
	}

	// Rings: half answered by a person at 10 s, half unanswered at 25 s.
	ring := newLifeTable(500*time.Millisecond, 2*time.Minute, 2, 0)
	for range 50 {
		ring.add(0, ringHuman, 10*time.Second)
		ring.add(0, ringOther, 25*time.Second)
	}
	ring.refresh(0, nil, 30)
	out = make([]float64, 30)
	ring.within(0, 0, ringHuman, 1, out)
	if math.Abs(out[12]-0.5) > 1e-9 {
		t.Fatalf("a new call answered by a person within 12 s: %v, want 0.5", out[12])
	}
	ring.within(12, 0, ringHuman, 1, out)
	if out[12] != 0 {
		t.Fatalf("a call that rang 12 s answered by a person later: %v, want 0", out[12])
	}
	// 100 calls ringing for 15 s, censored: they lasted past 10 s
	// without an answer, so fewer calls are answered than the ended ones
	// alone say.
	live := make([]time.Duration, 100)
	for i := range live {
		live[i] = 15 * time.Second
	}
	ring.refresh(0, live, 30)
	ring.within(0, 0, ringHuman, 1, out)
	if math.Abs(out[12]-0.25) > 1e-9 {
		t.Fatalf("with 100 calls ringing past 10 s: %v, want 0.25", out[12])
	}
}
