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

// Tuning of Predictive, chosen on the simulator's scenario (README,
// "Dialer pacing simulation").
const (
	// predictiveWarmup: until this many people have answered, and while
	// a call rings longer than any ring seen (the ring table knows
	// nothing of such ages yet), Predictive dials progressively. Talk and
	// wrap-up need no warm-up: until some have ended, their life tables
	// see no end coming and count no rep freeing, which errs on the side
	// of idle reps.
	predictiveWarmup = 20
	// ringDecay and workDecay are the time constants of the learned
	// distributions: the answer mix drifts within hours, talk and wrap
	// less.
	ringDecay = 30 * time.Minute
	workDecay = 2 * time.Hour
	// correctable (seconds): a shortfall that shows more than this long
	// before a horizon is made up by the decisions in between (they
	// place fewer or more calls), so only the answers and frees of the
	// last correctable seconds before a horizon count in its variance.
	correctable = 10
	// riskInit, riskMin, riskMax: the per-call abandonment risk the
	// pacer accepts, at the start and its bounds; riskStep is the step
	// of its logarithm for one abandoned call. Talk time is concave in
	// the risk, so a risk that jitters buys less of it than a steady one
	// at the same abandonment: a step of 0.05 (20 abandoned calls move
	// the risk by a factor e) gave 0.3-0.4 points more occupancy with 10
	// reps than 0.1 (seeds 1-40), and the same at 50 and 500 reps; 0.03
	// and below reacted too slowly to early abandonment.
	riskInit = 0.01
	riskMin  = 0.0005
	riskMax  = 0.2
	riskStep = 0.05
	// goalShare: the measured abandonment is steered to this share of
	// the target, or to the share of reps idle if that is lower;
	// guardShare: over this share of the target, once guardAfter people
	// have answered (before, one early abandonment would freeze the
	// loop), the day's rate stops the risk from going up and doubles its
	// steps down. idleDecay is the time constant of the idle share's
	// average.
	goalShare  = 0.8
	guardShare = 0.85
	guardAfter = 100
	idleDecay  = 5 * time.Minute
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
//     (the answer/machine/unanswered mix and the time to answer
//     together, as competing causes in one life table);
//
// and the variance of the shortfall (each rep and call a Bernoulli,
// counted over the last correctable seconds before h). It then places
// calls one by one while the next call's risk stays at most the
// accepted risk: the chance that, answered by a person, it finds demand
// (the calls placed before it included) over supply, by the normal
// approximation with continuity correction, averaged over when it would
// be answered.
//
// The accepted risk closes the loop on measured abandonment as a
// quantile tracker: each answer raises it a little, each abandoned call
// lowers it, so the measured rate settles where they balance: at
// goalShare of the target, or at the share of reps idle if lower (at
// scale, where reps are seldom idle, more risk buys little talk time, so
// one abandoned call is traded for no more than one idle rep). While the
// day's rate is over guardShare of the target the risk only goes down.
// Nothing locks the dial level: the loop moves the risk, never to zero.
type Predictive struct {
	target  float64
	connect float64 // seconds

	ring, talk, wrap *lifeTable
	nHumans          int64
	longestRing      time.Duration

	risk                float64
	answered, abandoned int64
	idle                float64
	lastIdle            time.Time

	// scratch, reused across decisions
	supply, demand, variance, fresh, cum []float64
	ringBins                             []int
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
		risk:      riskInit,
		answered:  c.Answered,
		abandoned: c.Abandoned,
	}
}

// Risk is the per-call abandonment risk the pacer accepts now, for
// supervisors and tests.
func (p *Predictive) Risk() float64 { return p.risk }

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func (p *Predictive) Observe(o Observation) {
	now := seconds(o.At)
	switch o.Kind {
	case ObserveAnswered:
		p.ring.add(now, ringHuman, o.Duration)
		p.nHumans++
		p.answered++
		p.longestRing = max(p.longestRing, o.Duration)
		if !p.overGuard() {
			goal := min(goalShare*p.target, p.idle)
			p.risk = min(p.risk*math.Exp(riskStep*goal), riskMax)
		}
	case ObserveMachine, ObserveUnanswered:
		p.ring.add(now, ringOther, o.Duration)
		p.longestRing = max(p.longestRing, o.Duration)
	case ObserveAbandoned:
		p.abandoned++
		step := riskStep
		if p.overGuard() {
			step *= 2
		}
		p.risk = max(p.risk*math.Exp(-step), riskMin)
	case ObserveTalk:
		p.talk.add(now, 0, o.Duration)
	case ObserveWrap:
		p.wrap.add(now, 0, o.Duration)
	}
}

// overGuard says whether the day's abandonment is over guardShare of
// the target.
func (p *Predictive) overGuard() bool {
	return p.answered >= guardAfter && float64(p.abandoned) > guardShare*p.target*float64(p.answered)
}

func (p *Predictive) Decide(s Snapshot) int {
	reps := s.Ready + len(s.Talking) + len(s.Wrapping)
	p.noteIdle(s, reps)
	if reps == 0 {
		return 0
	}
	if p.nHumans < predictiveWarmup || oldest(s.Ringing) > p.longestRing {
		return Progressive{}.Decide(s)
	}
	now := seconds(s.Now)
	k := max(int(math.Ceil(p.longestRing.Seconds())), 1)
	span := float64(k) + p.connect
	p.ring.refresh(now, s.Ringing, span)
	p.talk.refresh(now, s.Talking, span)
	p.wrap.refresh(now, s.Wrapping, span)
	p.forecast(s, k)
	if p.fresh[k] <= 0 {
		return Progressive{}.Decide(s)
	}
	// The most calls n such that the last one's risk is within the
	// accepted risk: the risk grows with n, so search by doubling then
	// halving. A campaign never needs more than ten new lines a rep in a
	// second; the cap keeps a model gone wrong from flooding the trunk.
	ok := func(n int) bool { return p.callRisk(n-1, k) <= p.risk }
	limit := 10 * reps
	lo, hi := 0, 1 // ok(lo) holds; hi is the first n tried beyond it
	for hi <= limit && ok(hi) {
		lo, hi = hi, 2*hi
	}
	hi = min(hi, limit+1)
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; ok(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// forecast fills, for horizons 1..k seconds: supply (reps free by
// h+connect), demand (answers by h, waiting customers included), the
// variance of their difference, and fresh (the chance a call placed now
// is answered by a person by h).
func (p *Predictive) forecast(s Snapshot, k int) {
	p.supply = resize(p.supply, k+1, float64(s.Ready))
	p.demand = resize(p.demand, k+1, float64(s.Waiting))
	p.variance = resize(p.variance, k+1, 0)
	p.fresh = resize(p.fresh, k+1, 0)
	p.cum = resize(p.cum, k+1, 0)
	for _, a := range s.Wrapping {
		p.add(p.wrap, a.Seconds(), -1, p.connect, 1, p.supply)
	}
	// A talk ending frees its rep a wrap-up later: the mean wrap-up
	// stands for its distribution (exact when wrap-up is fixed).
	wrapMean := p.wrap.mean()
	for _, a := range s.Talking {
		p.add(p.talk, a.Seconds(), -1, p.connect-wrapMean, 1, p.supply)
	}
	// Calls ringing, grouped by their bin of age: with hundreds ringing
	// there are far fewer bins than calls.
	p.ringBins = resizeInt(p.ringBins, len(p.ring.all))
	for _, a := range s.Ringing {
		p.ringBins[p.ring.idx(a.Seconds())]++
	}
	for i, n := range p.ringBins {
		if n > 0 {
			age := (float64(i) + 0.5) * p.ring.bin
			p.add(p.ring, age, ringHuman, 0, float64(n), p.demand)
		}
	}
	p.ring.within(0, 0, ringHuman, 1, p.fresh)
}

// add counts n items alike, aged age seconds, in the horizons: at
// horizon h, the chance each has ended (of cause, if not negative) by
// h+shift seconds is added n times to into, and the variance of the
// count ending in the correctable seconds before h to p.variance.
func (p *Predictive) add(t *lifeTable, age float64, cause int, shift, n float64, into []float64) {
	// Horizons before the item can end (a talk's wrap-up still to
	// come) add nothing.
	first := max(1, int(math.Floor(-shift))+1)
	clear(p.cum[:first])
	t.within(age, shift, cause, first, p.cum)
	for h := first; h < len(into); h++ {
		e := p.cum[h]
		into[h] += n * e
		q := e
		if h > correctable {
			q -= p.cum[h-correctable]
		}
		p.variance[h] += n * q * (1 - q)
	}
}

// callRisk is the chance that one more call, after n placed now, finds
// no rep if a person answers it: over the horizons at which it may be
// answered, the chance that demand there (the n before it included)
// overruns supply.
func (p *Predictive) callRisk(n, k int) float64 {
	others := float64(n)
	total := 0.0
	for h := 1; h <= k; h++ {
		f := p.fresh[h]
		if f == p.fresh[h-1] {
			continue // no answer comes in this second
		}
		room := p.supply[h] - p.demand[h] - others*f - 1
		v := p.variance[h] + others*f*(1-f)
		var over float64
		switch {
		case v > 1e-9:
			over = 0.5 * math.Erfc((room+0.5)/math.Sqrt(2*v))
		case room < -0.5:
			over = 1
		}
		total += (f - p.fresh[h-1]) * over
	}
	return total / p.fresh[k]
}

func oldest(ringing []time.Duration) time.Duration {
	var o time.Duration
	for _, a := range ringing {
		o = max(o, a)
	}
	return o
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
