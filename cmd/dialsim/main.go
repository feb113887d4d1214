// Command dialsim runs the dialer's pacers against simulated calls
// (package dialer/callsim) and prints talk occupancy and abandonment per
// mode and team size: a markdown table, or one JSON object per run.
//
//	go run ./cmd/dialsim -reps 10,50,500 -seeds 10 -mode progressive,ratio:2,ratio:3,vici,predictive
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/omnigate/omnigate/dialer/callsim"
	"github.com/omnigate/omnigate/dialer/pacing"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dialsim:", err)
		os.Exit(2)
	}
}

type options struct {
	reps   []int
	modes  []pacing.Mode
	seeds  int
	first  uint64
	jobs   int
	json   bool
	sc     callsim.Scenario
	target float64
}

func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("dialsim", flag.ContinueOnError)
	def := callsim.Issue13(0)
	reps := fs.String("reps", "10,50,500", "reps logged in, a comma-separated list")
	modes := fs.String("mode", "progressive,ratio:2,ratio:3,vici,predictive", "pacing modes, a comma-separated list (progressive, ratio:R, vici, predictive)")
	seeds := fs.Int("seeds", 10, "runs (seeds) per mode and team size")
	first := fs.Uint64("seed", 1, "first seed")
	jobs := fs.Int("jobs", runtime.NumCPU(), "runs in parallel")
	hours := fs.Float64("hours", def.Shift.Hours(), "shift length in hours")
	answer := fs.Float64("answer", def.Answer, "chance a person answers (alone, the other chances keep their proportions and fill the rest)")
	machine := fs.Float64("machine", def.Machine, "chance an answering machine answers (detected)")
	busy := fs.Float64("busy", def.Busy, "chance the call is busy or fails")
	noanswer := fs.Float64("noanswer", def.NoAnswer, "chance nobody answers")
	ring := fs.Duration("ring-timeout", def.RingTimeout, "ring timeout")
	answerMean := fs.Duration("answer-mean", def.AnswerMean, "mean time to answer (lognormal)")
	answerCV := fs.Float64("answer-cv", def.AnswerCV, "time to answer's coefficient of variation")
	talkMean := fs.Duration("talk-mean", def.TalkMean, "mean talk time (lognormal)")
	talkCV := fs.Float64("talk-cv", def.TalkCV, "talk time's coefficient of variation")
	wrap := fs.Duration("wrap", def.Wrap, "wrap-up time (fixed)")
	connect := fs.Duration("connect-limit", def.ConnectLimit, "how long an answered customer waits for a rep")
	driftTo := fs.Float64("drift-to", -1, "chance a person answers at the end of the shift (linear drift from -answer; the other chances scale); negative: no drift")
	target := fs.Float64("target-abandon", pacing.DefaultTargetAbandon, "abandonment target (share of answered calls)")
	asJSON := fs.Bool("json", false, "one JSON object per run instead of the table")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o := options{seeds: *seeds, first: *first, jobs: *jobs, json: *asJSON, target: *target}
	for _, r := range strings.Split(*reps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n < 1 {
			return options{}, fmt.Errorf("-reps: %q is not a positive number", r)
		}
		o.reps = append(o.reps, n)
	}
	for _, m := range strings.Split(*modes, ",") {
		pm, err := pacing.ParseMode(strings.TrimSpace(m))
		if err != nil {
			return options{}, fmt.Errorf("-mode: %w", err)
		}
		o.modes = append(o.modes, pm)
	}
	if o.seeds < 1 || o.jobs < 1 {
		return options{}, fmt.Errorf("-seeds and -jobs must be at least 1")
	}
	if err := (pacing.Config{TargetAbandon: *target}).Validate(); err != nil {
		return options{}, fmt.Errorf("-target-abandon: %w", err)
	}
	o.sc = def
	o.sc.Shift = time.Duration(*hours * float64(time.Hour))
	o.sc.Answer, o.sc.Machine, o.sc.Busy, o.sc.NoAnswer = *answer, *machine, *busy, *noanswer
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["machine"] && !set["busy"] && !set["noanswer"] {
		// Only -answer given: the other outcomes keep the default
		// proportions and fill the rest.
		scale := (1 - o.sc.Answer) / (def.Machine + def.Busy + def.NoAnswer)
		o.sc.Machine, o.sc.Busy, o.sc.NoAnswer = def.Machine*scale, def.Busy*scale, def.NoAnswer*scale
	}
	o.sc.RingTimeout, o.sc.AnswerMean, o.sc.AnswerCV = *ring, *answerMean, *answerCV
	o.sc.TalkMean, o.sc.TalkCV, o.sc.Wrap = *talkMean, *talkCV, *wrap
	o.sc.ConnectLimit, o.sc.DriftTo = *connect, *driftTo
	o.sc.Reps = 1 // checked per run; Validate the rest now
	if err := o.sc.Validate(); err != nil {
		return options{}, err
	}
	return o, nil
}

type job struct {
	mode pacing.Mode
	reps int
	seed uint64
}

func run(args []string, out io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	var jobs []job
	for _, r := range o.reps {
		for _, m := range o.modes {
			for i := range uint64(o.seeds) {
				jobs = append(jobs, job{m, r, o.first + i})
			}
		}
	}
	results := make([]callsim.Result, len(jobs))
	errs := make([]error, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range o.jobs {
		wg.Go(func() {
			for i := range next {
				results[i], errs[i] = simulate(o, jobs[i])
			}
		})
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(out)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	return table(out, o, results)
}

func simulate(o options, j job) (callsim.Result, error) {
	p, err := pacing.New(j.mode, pacing.Config{TargetAbandon: o.target, ConnectLimit: o.sc.ConnectLimit})
	if err != nil {
		return callsim.Result{}, err
	}
	sc := o.sc
	sc.Reps = j.reps
	r, err := callsim.Run(sc, p, j.seed)
	r.Mode = j.mode.String()
	return r, err
}

// table prints a row per team size and mode, in the order given.
func table(out io.Writer, o options, results []callsim.Result) error {
	w := &errWriter{w: out}
	w.printf("| reps | mode | talk occupancy mean | min | abandoned mean | max | seeds over %.1f%% | dialed/rep/h |\n", 100*o.target)
	w.printf("|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for i := 0; i < len(results); i += o.seeds {
		row := results[i : i+o.seeds]
		occ, occMin, ab, abMax, over, dialed := 0.0, 1.0, 0.0, 0.0, 0, 0
		for _, r := range row {
			occ += r.TalkOccupancy
			occMin = min(occMin, r.TalkOccupancy)
			ab += r.AbandonRate
			abMax = max(abMax, r.AbandonRate)
			if r.AbandonRate > o.target {
				over++
			}
			dialed += r.Dialed
		}
		n := float64(len(row))
		w.printf("| %d | %s | %.1f%% | %.1f%% | %.2f%% | %.2f%% | %d of %d | %.0f |\n",
			row[0].Reps, row[0].Mode, 100*occ/n, 100*occMin, 100*ab/n, 100*abMax, over, len(row),
			float64(dialed)/n/float64(row[0].Reps)/o.sc.Shift.Hours())
	}
	return w.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}
