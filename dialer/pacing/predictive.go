package pacing

import (
	"math"
	"time"
)

// Causes of a ring's end in Predictive's ring table.
const (
	ringHuman = iota
	ringOther // machine, busy, failed, no answer
)

// Tuning of Predictive. The defaults were chosen on the simulator's
// scenario (README, "Dialer pacing simulation").
const (
	// predictiveWarmup: until this many answers, talks and wrap-ups have
	// been seen, Predictive dials progressively.
	predictiveWarmup = 20
	// ringDecay and workDecay are the time constants of the learned
	// distributions: the answer mix drifts within hours, talk and wrap
	// less.
	ringDecay = 30 * time.Minute
	workDecay = 2 * time.Hour
	// minAnswerShare: horizons by which a new call is answered by a
	// person with less than this probability are not constraints (the
	// new calls hardly change them).
	minAnswerShare = 0.02
	// riskStep is how far one abandoned call moves the risk quantile;
	// riskMin and riskMax bound it (in standard deviations).
	riskStep = 0.05
	riskMin  = -1.0
	riskMax  = 4.0
	riskInit = 1.0
	// goalShare: the measured abandonment is steered to this share of
	// the target; guardShare: over this share of the target the day's
	// rate stops the quantile from going down.
	goalShare  = 0.6
	guardShare = 0.85
	// idleRef: with fewer reps idle than this share, lowering the
	// quantile buys little talk time, so it goes down more slowly.
	idleRef   = 0.03
	idleDecay = 5 * time.Minute
)

// Predictive paces on a model of the next seconds. At each decision, for
// each horizon h (one second apart, up to the longest ring seen) it
// forecasts
//
//   - supply: the reps free by h plus the connect limit (an answer at h
//     may wait that long): ready reps, reps in wrap-up whose wrap ends by
//     then, and reps talking whose talk ends by then less a mean wrap-up,
//     each from the learned distribution's residual life at the rep's
//     current age;
//   - demand: the customers waiting plus the people expected to answer
//     by h among the calls ringing, each by the learned chance that a
//     call which has rung this long is answered by a person within h
//     (the answer/machine/unanswered mix and the time-to-answer together,
//     as competing causes in one life table);
//
// with their variances (each rep and call a Bernoulli), and places the
// most new calls n such that, at every horizon, demand plus the answers
// expected from n new calls stays under the supply by z standard
// deviations of the shortfall. z, the risk quantile, is closed-loop: each
// abandoned call raises it, each answered call lowers it a little (less
// while reps are seldom idle, where more lines buy little talk time), so
// the measured abandonment settles at goalShare of the target; while the
// day's rate is over guardShare of the target, z does not come down.
// Nothing locks the dial level: the loop only moves z.
type Predictive struct {
	target  float64
	connect float64 // seconds

	ring, talk, wrap       *lifeTable
	nHumans, nTalks, nWrap int64
	longestRing            time.Duration

	z                   float64
	answered, abandoned int64
	idle                float64
	lastIdle            time.Time

	// scratch, reused across decisions
	supply, demand, variance, fresh []float64
	ringBins                        []int
}

// NewPredictive builds a Predictive with nothing learned. New validates
// c; NewPredictive assumes it.
func NewPredictive(c Config) *Predictive {
	c = c.withDefaults()
	return &Predictive{
		target:    c.TargetAbandon,
		connect:   c.ConnectLimit.Seconds(),
		ring:      newLifeTable(500*time.Millisecond, 2*time.Minute, 2, ringDecay),
		talk:      newLifeTable(time.Second, time.Hour, 1, workDecay),
		wrap:      newLifeTable(500*time.Millisecond, 10*time.Minute, 1, workDecay),
		z:         riskInit,
		answered:  c.Answered,
		abandoned: c.Abandoned,
	}
}

// Risk is the current risk quantile z, for supervisors and tests.
func (p *Predictive) Risk() float64 { return p.z }

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func (p *Predictive) Observe(o Observation) {
	now := seconds(o.At)
	switch o.Kind {
	case ObserveAnswered:
		p.ring.add(now, ringHuman, o.Duration)
		p.nHumans++
		p.answered++
		p.longestRing = max(p.longestRing, o.Duration)
		if float64(p.abandoned) < guardShare*p.target*float64(p.answered) {
			gate := min(max(p.idle/idleRef, 0.1), 1)
			p.z = max(p.z-riskStep*goalShare*p.target*gate, riskMin)
		}
	case ObserveMachine, ObserveUnanswered:
		p.ring.add(now, ringOther, o.Duration)
		p.longestRing = max(p.longestRing, o.Duration)
	case ObserveAbandoned:
		p.abandoned++
		p.z = min(p.z+riskStep, riskMax)
	case ObserveTalk:
		p.talk.add(now, 0, o.Duration)
		p.nTalks++
	case ObserveWrap:
		p.wrap.add(now, 0, o.Duration)
		p.nWrap++
	}
}

func (p *Predictive) Decide(s Snapshot) int {
	reps := s.Ready + len(s.Talking) + len(s.Wrapping)
	p.noteIdle(s, reps)
	if reps == 0 {
		return 0
	}
	if p.nHumans < predictiveWarmup || p.nTalks < predictiveWarmup || p.nWrap < predictiveWarmup {
		return Progressive{}.Decide(s)
	}
	now := seconds(s.Now)
	p.ring.refresh(now, s.Ringing)
	p.talk.refresh(now, s.Talking)
	p.wrap.refresh(now, s.Wrapping)
	k := max(int(math.Ceil(p.longestRing.Seconds())), 1)
	p.forecast(s, k)
	best := math.Inf(1)
	for h := 1; h <= k; h++ {
		f := p.fresh[h]
		if f < minAnswerShare {
			continue
		}
		u := newAnswers(p.supply[h]-p.demand[h], p.variance[h], f, p.z)
		best = min(best, u/f)
	}
	if math.IsInf(best, 1) {
		return Progressive{}.Decide(s)
	}
	// A campaign never needs more lines than every rep's worth of calls
	// over a second; the cap keeps a model gone wrong from flooding.
	return min(int(best), 10*reps)
}

// forecast fills, for horizons 1..k seconds: supply (reps free by
// h+connect), demand (answers by h, waiting customers included), their
// summed variance, and fresh (the chance a call placed now is answered
// by a person by h).
func (p *Predictive) forecast(s Snapshot, k int) {
	p.supply = resize(p.supply, k+1, float64(s.Ready))
	p.demand = resize(p.demand, k+1, float64(s.Waiting))
	p.variance = resize(p.variance, k+1, 0)
	p.fresh = resize(p.fresh, k+1, 0)
	for _, a := range s.Wrapping {
		w := p.wrap.walk(a, -1)
		for h := 1; h <= k; h++ {
			e, _ := w.to(float64(h) + p.connect)
			p.supply[h] += e
			p.variance[h] += e * (1 - e)
		}
	}
	// A talk ending frees its rep a wrap-up later: the mean wrap-up
	// stands for its distribution (exact when wrap-up is fixed).
	wrapMean := p.wrap.mean()
	for _, a := range s.Talking {
		w := p.talk.walk(a, -1)
		for h := 1; h <= k; h++ {
			x := float64(h) + p.connect - wrapMean
			if x <= 0 {
				continue
			}
			e, _ := w.to(x)
			p.supply[h] += e
			p.variance[h] += e * (1 - e)
		}
	}
	// Calls ringing, grouped by their bin of age: with hundreds ringing
	// there are far fewer bins than calls.
	p.ringBins = resizeInt(p.ringBins, len(p.ring.all))
	for _, a := range s.Ringing {
		p.ringBins[p.ring.idx(a.Seconds())]++
	}
	for i, n := range p.ringBins {
		if n == 0 {
			continue
		}
		w := p.ring.walk(time.Duration((float64(i)+0.5)*p.ring.bin*1e9), ringHuman)
		for h := 1; h <= k; h++ {
			_, q := w.to(float64(h))
			p.demand[h] += float64(n) * q
			p.variance[h] += float64(n) * q * (1 - q)
		}
	}
	w := p.ring.walk(0, ringHuman)
	for h := 1; h <= k; h++ {
		_, p.fresh[h] = w.to(float64(h))
	}
}

// newAnswers solves u + z·sqrt(v + u(1-f)) = room for u >= 0, the answers
// new calls may bring by a horizon: room is the supply less the demand
// forecast, v their variance, f the chance that one new call is
// answered by then (so u new answers add about u(1-f) of variance), z
// the risk quantile.
func newAnswers(room, v, f, z float64) float64 {
	if z == 0 {
		return max(room, 0)
	}
	// (room-u)² = z²(v + u(1-f)), with u below room for z > 0 and above
	// it for z < 0.
	b := 2*room + z*z*(1-f)
	disc := b*b - 4*(room*room-z*z*v)
	if disc < 0 {
		return 0
	}
	if z > 0 {
		if room-z*math.Sqrt(v) <= 0 {
			return 0
		}
		return (b - math.Sqrt(disc)) / 2
	}
	return max((b+math.Sqrt(disc))/2, 0)
}

// noteIdle follows the share of reps idle, the benefit of dialing more.
func (p *Predictive) noteIdle(s Snapshot, reps int) {
	share := 0.0
	if reps > 0 && s.Waiting == 0 {
		share = float64(s.Ready) / float64(reps)
	}
	if p.lastIdle.IsZero() {
		p.idle, p.lastIdle = share, s.Now
		return
	}
	dt := s.Now.Sub(p.lastIdle).Seconds()
	if dt <= 0 {
		return
	}
	a := 1 - math.Exp(-dt/idleDecay.Seconds())
	p.idle += a * (share - p.idle)
	p.lastIdle = s.Now
}

func resize(b []float64, n int, fill float64) []float64 {
	if cap(b) < n {
		b = make([]float64, n)
	}
	b = b[:n]
	for i := range b {
		b[i] = fill
	}
	return b
}

func resizeInt(b []int, n int) []int {
	if cap(b) < n {
		b = make([]int, n)
	}
	b = b[:n]
	clear(b)
	return b
}

var _ Pacer = (*Predictive)(nil)
