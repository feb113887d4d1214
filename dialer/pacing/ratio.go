package pacing

import "math"

// Preview places no call by itself: the rep sees the customer (not the
// number) and clicks call or skip, and the runner dials on the click.
type Preview struct{}

func (Preview) Observe(Observation) {}

func (Preview) Decide(Snapshot) int { return 0 }

// FixedRatio keeps Ratio lines per ready rep: it places
// round(Ratio × Ready) minus the calls already ringing or waiting. This
// is how ratio dialers (and VICIdial's dial level with "available only"
// tally) count: calls in flight are charged against the ready reps they
// were placed for, so a campaign with no ready rep places nothing.
type FixedRatio struct {
	Ratio float64
}

func (FixedRatio) Observe(Observation) {}

func (f FixedRatio) Decide(s Snapshot) int {
	return linesFor(f.Ratio, s)
}

// linesFor is the count a dial level asks for in s.
func linesFor(level float64, s Snapshot) int {
	return max(int(math.Round(level*float64(s.Ready)))-len(s.Ringing)-s.Waiting, 0)
}

var (
	_ Pacer = Preview{}
	_ Pacer = Progressive{}
	_ Pacer = FixedRatio{}
)
