package sim

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// CI is a mean with a confidence interval from independent replications.
type CI struct {
	Mean, Half float64
	N          int
}

// Lo and Hi are the ends of the interval.
func (c CI) Lo() float64 { return c.Mean - c.Half }
func (c CI) Hi() float64 { return c.Mean + c.Half }

// Contains reports whether x lies in the interval.
func (c CI) Contains(x float64) bool { return x >= c.Lo() && x <= c.Hi() }

// Format prints "mean ± half" with both multiplied by scale.
func (c CI) Format(scale float64) string {
	return fmt.Sprintf("%.2f ± %.2f", c.Mean*scale, c.Half*scale)
}

func (c CI) String() string { return c.Format(1) }

// Percent formats a fraction as percent; Seconds a figure in seconds.
func (c CI) Percent() string { return c.Format(100) + " %" }
func (c CI) Seconds() string { return c.Format(1) + " s" }

// Interval is the two-sided 99% Student-t interval of xs, treating each as
// one independent replication (so the within-run correlation of waits
// does not make it too narrow).
func Interval(xs []float64) CI {
	n := len(xs)
	if n < 2 {
		return CI{Mean: mean(xs), Half: math.Inf(1), N: n}
	}
	m := mean(xs)
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	sd := math.Sqrt(ss / float64(n-1))
	return CI{Mean: m, Half: t995(n-1) * sd / math.Sqrt(float64(n)), N: n}
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// t995 is the 0.995 quantile of Student's t with df degrees of freedom.
func t995(df int) float64 {
	table := []float64{0, 63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169,
		3.106, 3.055, 3.012, 2.977, 2.947, 2.921, 2.898, 2.878, 2.861, 2.845,
		2.831, 2.819, 2.807, 2.797, 2.787, 2.779, 2.771, 2.763, 2.756, 2.750}
	switch {
	case df < len(table):
		return table[df]
	case df <= 60:
		return 2.660 + (2.750-2.660)*float64(60-df)/30
	}
	return 2.576
}

// Replicate runs s n times with seeds s.Seed, s.Seed+1, ... on every core
// and summarises each run. The result is the same whatever the core count.
func Replicate(s Scenario, n int) ([]Stats, error) {
	out := make([]Stats, n)
	errs := make([]error, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range work {
				run, err := Simulate(s, s.Seed+uint64(i))
				errs[i] = err
				out[i] = Summarise(run, s.Targets)
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Metric collects one figure from each replication's stats.
func Metric(stats []Stats, f func(Stats) float64) CI {
	xs := make([]float64, len(stats))
	for i, s := range stats {
		xs[i] = f(s)
	}
	return Interval(xs)
}
