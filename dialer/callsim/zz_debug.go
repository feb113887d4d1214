package callsim

import (
	"fmt"
	"os"
	"sort"
)

var dbg = os.Getenv("SIMDEBUG") != ""

type dbgStats struct{ xs []int }

func (d *dbgStats) add(x int) {
	if dbg {
		d.xs = append(d.xs, x)
	}
}
func (d *dbgStats) print(name string) {
	if !dbg || len(d.xs) == 0 {
		return
	}
	sort.Ints(d.xs)
	n := len(d.xs)
	sum := 0
	for _, x := range d.xs {
		sum += x
	}
	fmt.Fprintf(os.Stderr, "%s mean %.2f p1 %d p10 %d p50 %d p90 %d p99 %d\n", name, float64(sum)/float64(n), d.xs[n/100], d.xs[n/10], d.xs[n/2], d.xs[n*9/10], d.xs[n*99/100])
}
