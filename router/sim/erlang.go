package sim

import (
	"math"
	"time"
)

// ErlangB is the blocking probability of n servers offered a Erlangs
// (Erlang's loss formula), by the stable recursion
// B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)).
func ErlangB(n int, a float64) float64 {
	b := 1.0
	for k := 1; k <= n; k++ {
		b = a * b / (float64(k) + a*b)
	}
	return b
}

// ErlangC is the probability that a contact waits in an M/M/n queue
// offered a Erlangs (a < n): C = n·B / (n − a·(1 − B)).
func ErlangC(n int, a float64) float64 {
	if a >= float64(n) {
		return 1
	}
	b := ErlangB(n, a)
	return float64(n) * b / (float64(n) - a*(1-b))
}

// ServiceLevel is the fraction of contacts answered within t in an M/M/n
// queue with mean handle time h: 1 − C·exp(−(n − a)·t/h).
func ServiceLevel(n int, a float64, h, t time.Duration) float64 {
	return 1 - ErlangC(n, a)*math.Exp(-(float64(n)-a)*t.Seconds()/h.Seconds())
}

// ASA is the average speed of answer of an M/M/n queue: C·h/(n − a).
func ASA(n int, a float64, h time.Duration) time.Duration {
	s := ErlangC(n, a) * h.Seconds() / (float64(n) - a)
	return time.Duration(s * float64(time.Second))
}

// ErlangA gives the M/M/n+M queue (Palm's model with exponential patience):
// arrivals at rate lambda per second, mean handle time h, mean patience p.
// It solves the birth–death chain exactly: in state k (contacts in the
// system) arrivals come at λ and leave at min(k, n)·μ + max(k − n, 0)·θ,
// so π(k) = π(k−1)·λ / (min(k, n)·μ + max(k − n, 0)·θ). The chain is
// summed until the terms vanish.
type ErlangAResult struct {
	// PWait is the probability an arrival finds every rep busy.
	PWait float64
	// Abandon is the fraction of arrivals who give up:
	// Σ π(k)·(k − n)·θ / λ over k > n.
	Abandon float64
	// MeanWait is the mean time in queue over all arrivals (Little: Lq/λ).
	MeanWait time.Duration
}

// ErlangA solves M/M/n+M; see ErlangAResult.
func ErlangA(n int, lambda float64, h, p time.Duration) ErlangAResult {
	mu := 1 / h.Seconds()
	theta := 1 / p.Seconds()
	// Unnormalised weights relative to π(0) = 1, kept in log space to
	// avoid overflow for large n.
	var logs []float64
	lp := 0.0
	logs = append(logs, 0)
	for k := 1; ; k++ {
		rate := float64(min(k, n))*mu + float64(max(k-n, 0))*theta
		lp += math.Log(lambda / rate)
		logs = append(logs, lp)
		if k > n && lp < logs[n]-50 { // relative to the mode region: negligible
			break
		}
	}
	peak := logs[0]
	for _, l := range logs {
		peak = max(peak, l)
	}
	var sum, wait, ab, lq float64
	for k, l := range logs {
		w := math.Exp(l - peak)
		sum += w
		if k >= n {
			wait += w
		}
		if k > n {
			ab += w * float64(k-n) * theta
			lq += w * float64(k-n)
		}
	}
	return ErlangAResult{
		PWait:    wait / sum,
		Abandon:  ab / sum / lambda,
		MeanWait: time.Duration(lq / sum / lambda * float64(time.Second)),
	}
}
