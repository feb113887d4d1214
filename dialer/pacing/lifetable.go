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
	inv    float64 // 1/bin
	tau    float64 // seconds; 0 means no decay
	ref    float64 // seconds since epoch of the weight 1
	causes int

	ended  [][]float64 // [cause][bin] decayed weight of items ended there
	all    []float64   // all causes
	sumDur float64     // decayed weight × duration, for the mean
	sumW   float64

	// refreshed by refresh, for bins up to top: surv[i] is the chance to
	// last past bins 0..i-1, upTo[c][i] the chance to end of cause c in
	// bins 0..i-1.
	top  int
	live []float64
	surv []float64
	upTo [][]float64
}

func newLifeTable(bin time.Duration, span time.Duration, causes int, tau time.Duration) *lifeTable {
	n := int(span/bin) + 1
	t := &lifeTable{bin: bin.Seconds(), inv: 1 / bin.Seconds(), tau: tau.Seconds(), causes: causes,
		all: make([]float64, n), live: make([]float64, n), surv: make([]float64, n+1)}
	for range causes {
		t.ended = append(t.ended, make([]float64, n))
		t.upTo = append(t.upTo, make([]float64, n+1))
	}
	return t
}

// idx is the bin of a duration in seconds.
func (t *lifeTable) idx(sec float64) int {
	if sec <= 0 {
		return 0
	}
	return min(int(sec*t.inv), len(t.all)-1)
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
}

// mean is the mean duration observed, in seconds.
func (t *lifeTable) mean() float64 {
	if t.sumW == 0 {
		return 0
	}
	return t.sumDur / t.sumW
}

// refresh computes the table at now with the live items' ages as
// censored observations, for the bins that spans of up to span seconds
// from those ages reach.
func (t *lifeTable) refresh(now float64, ages []time.Duration, span float64) {
	w := t.weight(now)
	clear(t.live[:t.top+1])
	oldest := 0.0
	for _, a := range ages {
		t.live[t.idx(a.Seconds())] += w
		oldest = max(oldest, a.Seconds())
	}
	t.top = t.idx(oldest + span)
	// At risk in bin i: the items ended in bin i or later and the live
	// ones at least that old. Sum them from the top down, starting from
	// the items ended beyond top.
	atRisk := t.sumW
	for _, e := range t.all[:t.top+1] {
		atRisk -= e
	}
	atRisk = max(atRisk, 0)
	for i := t.top; i >= 0; i-- {
		atRisk += t.all[i] + t.live[i]
		t.live[i] = atRisk // reused: live becomes the count at risk
	}
	t.surv[0] = 1
	for i := 0; i <= t.top; i++ {
		risk := t.live[i]
		t.live[i] = 0
		if risk <= 0 {
			t.surv[i+1] = t.surv[i]
			for c := range t.upTo {
				t.upTo[c][i+1] = t.upTo[c][i]
			}
			continue
		}
		for c := range t.upTo {
			t.upTo[c][i+1] = t.upTo[c][i] + t.surv[i]*t.ended[c][i]/risk
		}
		t.surv[i+1] = t.surv[i] * (1 - t.all[i]/risk)
	}
}

// within fills out[h], for h from first to len(out)-1, with the chance
// that an item aged age seconds ends by age+h+shift seconds (of cause,
// if not negative); h+shift is at most the span of the last refresh.
// Within the bin of its age, and the bin of age+h+shift, an item is
// counted as ending at once: bins are short next to the horizons.
func (t *lifeTable) within(age, shift float64, cause, first int, out []float64) {
	i := t.idx(age)
	base := t.surv[i]
	if base <= 0 {
		clear(out[first:]) // older than every item that ended: no end in sight
		return
	}
	inv := 1 / base
	for h := first; h < len(out); h++ {
		j := t.idx(age+float64(h)+shift) + 1
		if cause >= 0 {
			out[h] = (t.upTo[cause][j] - t.upTo[cause][i]) * inv
		} else {
			out[h] = 1 - t.surv[j]*inv
		}
	}
}
