package pacing

import "time"

// VICIAdjustEvery is how often VICI moves its dial level, as VICIdial's
// adaptive modes do.
const VICIAdjustEvery = 15 * time.Second

// VICI is VICIdial's adaptive pacing (ADAPT_TAPERED and ADAPT_HARD_LIMIT
// combined): lines are counted as FixedRatio counts them, at a dial
// level that every VICIAdjustEvery moves by the average of ready reps
// minus waiting calls over the period, relative to the reps logged in
// (more reps idle: dial more; customers waiting: dial less), clamped to
// [1, 3]. Once the measured drop rate (abandoned / answered since the
// pacer started, plus Config's carried counts) is over the target the
// level is halved every period, so it is locked at 1 until the rate is
// back under.
type VICI struct {
	target float64

	level    float64
	next     time.Time
	diff     float64 // sum over the period of Ready - Waiting
	reps     float64 // sum over the period of reps logged in
	answered int64
	dropped  int64
}

// NewVICI starts at dial level 1. New validates c; NewVICI assumes it.
func NewVICI(c Config) *VICI {
	c = c.withDefaults()
	return &VICI{target: c.TargetAbandon, level: 1, answered: c.Answered, dropped: c.Abandoned}
}

func (v *VICI) Observe(o Observation) {
	switch o.Kind {
	case ObserveAnswered:
		v.answered++
	case ObserveAbandoned:
		v.dropped++
	}
}

func (v *VICI) Decide(s Snapshot) int {
	v.diff += float64(s.Ready - s.Waiting)
	v.reps += float64(s.Ready + len(s.Talking) + len(s.Wrapping))
	if v.next.IsZero() {
		v.next = s.Now.Add(VICIAdjustEvery)
	} else if !s.Now.Before(v.next) {
		v.adjust()
		v.next = s.Now.Add(VICIAdjustEvery)
	}
	return linesFor(v.level, s)
}

// Level is the current dial level, for supervisors.
func (v *VICI) Level() float64 { return v.level }

func (v *VICI) adjust() {
	if v.answered > 0 && float64(v.dropped) > v.target*float64(v.answered) {
		v.level = max(1, v.level/2)
	} else if v.reps > 0 {
		// Ready reps are time idle: the share of reps idle (or, negative,
		// of customers waiting) raises (lowers) the level by as much.
		v.level = min(max(v.level*(1+v.diff/v.reps), 1), 3)
	}
	v.diff, v.reps = 0, 0
}

var _ Pacer = (*VICI)(nil)
