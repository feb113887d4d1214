package pacing

import (
	"testing"
	"time"
)

// ages gives n durations of d each.
func ages(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestLinePacers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		p    Pacer
		s    Snapshot
		want int
	}{
		{"preview never dials", Preview{}, Snapshot{Ready: 5}, 0},
		{"progressive: a line per ready rep", Progressive{}, Snapshot{Ready: 5}, 5},
		{"progressive: ringing calls cover reps", Progressive{}, Snapshot{Ready: 5, Ringing: ages(3, time.Second)}, 2},
		{"progressive: waiting customers cover reps", Progressive{}, Snapshot{Ready: 5, Ringing: ages(3, time.Second), Waiting: 2}, 0},
		{"progressive: never negative", Progressive{}, Snapshot{Ready: 1, Ringing: ages(4, time.Second)}, 0},
		{"ratio 2.5 of 4 ready", FixedRatio{Ratio: 2.5}, Snapshot{Ready: 4}, 10},
		{"ratio 2.5 less ringing", FixedRatio{Ratio: 2.5}, Snapshot{Ready: 4, Ringing: ages(7, time.Second)}, 3},
		{"ratio: nobody ready, no call", FixedRatio{Ratio: 3}, Snapshot{Talking: ages(10, time.Minute)}, 0},
		{"ratio rounds", FixedRatio{Ratio: 2.5}, Snapshot{Ready: 1}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Decide(tc.s); got != tc.want {
				t.Fatalf("Decide = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestVICI(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	v := NewVICI(Config{})
	idle := Snapshot{Ready: 5, Talking: ages(5, time.Minute)} // half the reps idle
	// The first period: level 1.
	for i := range 15 {
		idle.Now = t0.Add(time.Duration(i) * time.Second)
		if got := v.Decide(idle); got != 5 {
			t.Fatalf("second %d: Decide = %d at level 1, want 5", i, got)
		}
	}
	idle.Now = t0.Add(15 * time.Second)
	v.Decide(idle)
	if v.Level() != 1.5 {
		t.Fatalf("after a period with half the reps idle: level %v, want 1.5", v.Level())
	}
	// Reps idle period after period: the level climbs to 3 and stays.
	for i := 16; i < 200; i++ {
		idle.Now = t0.Add(time.Duration(i) * time.Second)
		v.Decide(idle)
	}
	if v.Level() != 3 {
		t.Fatalf("level %v, want clamped to 3", v.Level())
	}
	if got := v.Decide(idle); got != 15 {
		t.Fatalf("Decide at level 3 with 5 ready = %d, want 15", got)
	}
	// The day's drop rate crosses 3%: halved each period down to 1.
	for range 100 {
		v.Observe(Observation{Kind: ObserveAnswered})
	}
	for range 4 {
		v.Observe(Observation{Kind: ObserveAbandoned})
	}
	var levels []float64
	for i := 200; i < 260; i++ {
		idle.Now = t0.Add(time.Duration(i) * time.Second)
		before := v.Level()
		v.Decide(idle)
		if v.Level() != before {
			levels = append(levels, v.Level())
		}
	}
	if len(levels) != 2 || levels[0] != 1.5 || levels[1] != 1 {
		t.Fatalf("levels while over the target %v, want [1.5 1]", levels)
	}
	// Customers waiting: the level goes down, never under 1.
	v2 := NewVICI(Config{})
	busy := Snapshot{Waiting: 3, Talking: ages(10, time.Minute)}
	for i := range 100 {
		busy.Now = t0.Add(time.Duration(i) * time.Second)
		if got := v2.Decide(busy); got != 0 {
			t.Fatalf("Decide with nobody ready = %d", got)
		}
	}
	if v2.Level() != 1 {
		t.Fatalf("level %v with customers waiting, want 1", v2.Level())
	}
}
