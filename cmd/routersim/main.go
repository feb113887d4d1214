// Command routersim runs the router simulator: the strategy comparison
// report (-report) and the Erlang validation (-erlang), as markdown.
//
//	go run ./cmd/routersim -report
//	go run ./cmd/routersim -erlang
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/omnigate/omnigate/router/sim"
)

func main() {
	report := flag.Bool("report", false, "compare routing strategies on the mixed multi-channel scenario")
	erlang := flag.Bool("erlang", false, "validate the simulator against Erlang C and Erlang A")
	n := flag.Int("replications", 10, "independent replications (seeds) per figure")
	hours := flag.Float64("hours", 40, "simulated hours of arrivals per replication for -erlang")
	flag.Parse()
	if !*report && !*erlang {
		flag.Usage()
		os.Exit(2)
	}
	if *report {
		if err := compare(os.Stdout, *n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if *erlang {
		if err := validate(os.Stdout, *n, *hours); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func compare(w io.Writer, n int) error {
	fmt.Fprintf(w, "Mixed scenario: 8 h of voice (300/h), web chat (380/h), WeChat (180/h) and SMS (90/h), 64 reps; "+
		"%d replications, mean ± 99%% interval.\n", n)
	fmt.Fprintf(w, "Service level: answered within 20 s (voice), 60 s (web chat), 5 min (WeChat, SMS), over all offered.\n\n")
	fmt.Fprintln(w, "| strategy | service level | ASA | abandoned | P99 wait | occupancy mean | occupancy std dev | Jain's index | VIP service level | owner hit rate |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, name := range sim.Strategies {
		s, err := sim.MixedScenario(name)
		if err != nil {
			return err
		}
		stats, err := sim.Replicate(s, n)
		if err != nil {
			return err
		}
		m := func(f func(sim.Stats) float64) sim.CI { return sim.Metric(stats, f) }
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %.3f | %s | %s |\n", name,
			m(func(s sim.Stats) float64 { return s.ServiceLevel }).Percent(),
			m(func(s sim.Stats) float64 { return s.ASA.Seconds() }).Seconds(),
			m(func(s sim.Stats) float64 { return s.AbandonRate }).Percent(),
			m(func(s sim.Stats) float64 { return s.P99Wait.Seconds() }).Seconds(),
			m(func(s sim.Stats) float64 { return s.OccupancyMean }).Percent(),
			m(func(s sim.Stats) float64 { return s.OccupancyStd }).Format(100)+" pp",
			m(func(s sim.Stats) float64 { return s.Jain }).Mean,
			m(func(s sim.Stats) float64 { return s.VIPServiceLevel }).Percent(),
			m(func(s sim.Stats) float64 { return s.OwnerHitRate }).Percent(),
		)
	}
	fmt.Fprintln(w)
	return nil
}

func validate(w io.Writer, n int, hours float64) error {
	h, p := 240*time.Second, 120*time.Second
	const a = 48.0
	fmt.Fprintf(w, "Erlang validation: one skill, 360 calls per 30 min, 240 s mean handle time (48 Erlangs); "+
		"%d replications × %.0f h after a 30-min warm-up; mean ± 99%% Student-t interval.\n\n", n, hours)
	fmt.Fprintln(w, "| case | figure | analytic | simulated | inside |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	row := func(c, fig string, analytic float64, ci sim.CI, scale float64, unit string) {
		fmt.Fprintf(w, "| %s | %s | %.2f%s | %s%s | %v |\n", c, fig, analytic*scale, unit, ci.Format(scale), unit, ci.Contains(analytic))
	}
	stats, err := sim.Replicate(sim.ErlangScenario(55, 360, h, 0, hours), n)
	if err != nil {
		return err
	}
	row("Erlang C, 55 reps", "P(wait)", sim.ErlangC(55, a), sim.Metric(stats, func(s sim.Stats) float64 { return s.PWait }), 100, " %")
	row("Erlang C, 55 reps", "answered in 20 s", sim.ServiceLevel(55, a, h, 20*time.Second), sim.Metric(stats, func(s sim.Stats) float64 { return s.ServiceLevel }), 100, " %")
	row("Erlang C, 55 reps", "ASA", sim.ASA(55, a, h).Seconds(), sim.Metric(stats, func(s sim.Stats) float64 { return s.ASA.Seconds() }), 1, " s")
	for _, reps := range []int{48, 52} {
		stats, err := sim.Replicate(sim.ErlangScenario(reps, 360, h, p, hours), n)
		if err != nil {
			return err
		}
		ea := sim.ErlangA(reps, 0.2, h, p)
		c := fmt.Sprintf("Erlang A, %d reps, 120 s patience", reps)
		row(c, "abandoned", ea.Abandon, sim.Metric(stats, func(s sim.Stats) float64 { return s.AbandonRate }), 100, " %")
		row(c, "P(wait)", ea.PWait, sim.Metric(stats, func(s sim.Stats) float64 { return s.PWait }), 100, " %")
	}
	fmt.Fprintln(w)
	return nil
}
