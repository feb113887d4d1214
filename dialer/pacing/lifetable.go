package pacing

import (
	"math"
	"time"
)

// lifeTable learns a duration's distribution online, with competing
// causes of its end (a ring ends in a person, a machine, or nothing), as
// an actuarial life table: per bin, the (time-decayed) weight of the
// items that ended in it, by cause. Items still running are censored
// observations: refresh counts them at risk up to their current age, so
// early in a shift, when only the short talks have ended, the long ones
// still running keep the hazard honest (Kaplan-Meier).
//
// Weights decay with time constant tau so the table follows drift (the
// answer rate falling through the day); an observation at time t weighs
// exp((t-ref)/tau), renormalised when that grows large.
type lifeTable struct {
	bin    float64 // seconds a bin
	tau    float64 // seconds; 0 means no decay
	ref    float64 // seconds since epoch of the weight 1
	causes int

	ended  [][]float64 // [cause][bin] decayed weight of items ended there
	all    []float64   // all causes
	sumDur float64     // decayed weight × duration, for the mean
	sumW   float64

	// above[i] is the weight of items ended in bin i or later, rebuilt
	// when dirty (an item ended since).
	above []float64
	dirty bool

	// refreshed by refresh, for bins up to top
	top    int
	live   []float64
	hazard []float64   // all causes
	cause  [][]float64 // hazard by cause
}

func newLifeTable(bin time.Duration, span time.Duration, causes int, tau time.Duration) *lifeTable {
	n := int(span/bin) + 1
	t := &lifeTable{bin: bin.Seconds(), tau: tau.Seconds(), causes: causes,
		all: make([]float64, n), above: make([]float64, n), live: make([]float64, n), hazard: make([]float64, n)}
	for range causes {
		t.ended = append(t.ended, make([]float64, n))
		t.cause = append(t.cause, make([]float64, n))
	}
	return t
}

// idx is the bin of a duration in seconds.
func (t *lifeTable) idx(sec float64) int {
	if sec <= 0 {
		return 0
	}
	return min(int(sec/t.bin), len(t.all)-1)
}

// weight is the weight of an observation made at now (seconds), after
// renormalising the table if it has grown too large.
func (t *lifeTable) weight(now float64) float64 {
	if t.tau == 0 {
		return 1
	}
	if t.sumW == 0 {
		t.ref = now
	}
	w := math.Exp((now - t.ref) / t.tau)
	if w > 1e50 {
		for c := range t.ended {
			for i := range t.ended[c] {
				t.ended[c][i] /= w
			}
		}
		for i := range t.all {
			t.all[i] /= w
		}
		t.sumDur /= w
		t.sumW /= w
		t.dirty = true
		t.ref = now
		w = 1
	}
	return w
}

// add records an item of cause c that ended after d, observed at now.
func (t *lifeTable) add(now float64, c int, d time.Duration) {
	w := t.weight(now)
	i := t.idx(d.Seconds())
	t.ended[c][i] += w
	t.all[i] += w
	t.sumDur += w * d.Seconds()
	t.sumW += w
	t.dirty = true
}

// mean is the mean duration observed, in seconds.
func (t *lifeTable) mean() float64 {
	if t.sumW == 0 {
		return 0
	}
	return t.sumDur / t.sumW
}

// refresh computes the hazards at now with the live items' ages as
// censored observations, for the bins that walks of up to span seconds
// from those ages reach.
func (t *lifeTable) refresh(now float64, ages []time.Duration, span float64) {
	w := t.weight(now)
	if t.dirty {
		sum := 0.0
		for i := len(t.all) - 1; i >= 0; i-- {
			sum += t.all[i]
			t.above[i] = sum
		}
		t.dirty = false
	}
	clear(t.live[:t.top+1])
	oldest := 0.0
	for _, a := range ages {
		t.live[t.idx(a.Seconds())] += w
		oldest = max(oldest, a.Seconds())
	}
	t.top = t.idx(oldest + span)
	live := 0.0
	for i := t.top; i >= 0; i-- {
		live += t.live[i]
		risk := t.above[i] + live
		if risk <= 0 {
			t.hazard[i] = 0
			for c := range t.cause {
				t.cause[c][i] = 0
			}
			continue
		}
		t.hazard[i] = t.all[i] / risk
		for c := range t.cause {
			t.cause[c][i] = t.ended[c][i] / risk
		}
	}
}

// walker follows one item (or a group of items of one age) forward
// through the bins: the probability that it ends, and ends of a cause,
// by each horizon.
type walker struct {
	t       *lifeTable
	age     float64
	next    int // next bin to account
	survive float64
	byCause float64
	cause   int
}

func (t *lifeTable) walk(age time.Duration, cause int) walker {
	a := age.Seconds()
	return walker{t: t, age: a, next: t.idx(a), survive: 1, cause: cause}
}

// to advances to age+x seconds (x at most the span of the last
// refresh) and reports the probability that the
// item has ended by then, and ended of the walker's cause.
func (w *walker) to(x float64) (ended, byCause float64) {
	last := w.t.idx(w.age + x)
	for ; w.next <= last; w.next++ {
		if w.cause >= 0 {
			w.byCause += w.survive * w.t.cause[w.cause][w.next]
		}
		w.survive *= 1 - w.t.hazard[w.next]
	}
	return 1 - w.survive, w.byCause
}
