// Command kpiload measures what the KPIs cost the gateway and how fast
// the wallboard follows, on this machine only (loopback, hard caps).
//
// It runs the gateway in this process with KPIs on, builds ./cmd/loadgen
// and points it at the gateway (-conns visitors sending -rate messages a
// second), profiles the CPU over the steady part of the load and reports
// the share of the samples spent in the KPIs (package internal/kpi and
// the inbox's wallboard loop): a ratio within one run, which a shared
// machine disturbs far less than the CPU seconds of two runs with KPIs
// off and on (reports.disabled), whose difference is smaller than their
// noise here. Meanwhile it watches the wallboard frame on a supervisor's
// socket and, once the load is steady, opens a new visitor every second
// whose first message must show in the frame (the queue's offered
// count): the time from its send, and from its ack (stored), to the
// frame is the wallboard's latency under load.
//
//	go run ./cmd/kpiload -conns 10000 -rate 2000 -duration 20s
//
// The machine may be shared: the report prints the load average before
// and after; run it twice and compare before trusting a figure.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

const (
	maxConns    = 20000
	maxRate     = 10000
	maxDuration = 2 * time.Minute
	token       = "kpiload-supervisor-token-0123456789"
	origin      = "http://loadgen.localhost"
	site        = "load"
)

type options struct {
	conns, rate      int
	duration, warmup time.Duration
}

func main() { os.Exit(run()) }

func run() int {
	var o options
	flag.IntVar(&o.conns, "conns", 10000, fmt.Sprintf("visitor sockets (at most %d)", maxConns))
	flag.IntVar(&o.rate, "rate", 2000, fmt.Sprintf("messages per second (at most %d)", maxRate))
	flag.DurationVar(&o.duration, "duration", 30*time.Second, fmt.Sprintf("measured time per run (at most %v)", maxDuration))
	flag.DurationVar(&o.warmup, "warmup", 10*time.Second, "sending before measuring, so every visitor's conversation is open")
	flag.Parse()
	switch {
	case o.conns < 1 || o.conns > maxConns, o.rate < 1 || o.rate > maxRate,
		o.duration <= 0 || o.duration > maxDuration, o.warmup < 0 || o.warmup > time.Minute:
		fmt.Fprintln(os.Stderr, "kpiload: a size or a time is out of range (see -h)")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "kpiload")
	if err != nil {
		fmt.Fprintln(os.Stderr, "kpiload:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	loadgen := filepath.Join(dir, "loadgen")
	fmt.Fprintln(os.Stderr, "kpiload: building ./cmd/loadgen")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", loadgen, "github.com/omnigate/omnigate/cmd/loadgen").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "kpiload: go build ./cmd/loadgen: %v\n%s", err, out)
		return 1
	}
	fmt.Printf("kpiload %s, %s\n", strings.Join(os.Args[1:], " "), time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("  machine: %d CPUs, %s/%s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	res, err := profileRun(ctx, o, loadgen, filepath.Join(dir, "run"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kpiload:", err)
		return 1
	}
	fmt.Printf("\nload average %s before, %s after; loadgen said:\n%s", res.loadBefore, res.loadAfter, indent(res.loadgen))
	fmt.Println("\nSummary")
	fmt.Printf("  KPIs' share of the gateway's CPU samples: %.2f%% of %s profiled  (pprof focus %s; target < 5%%)\n",
		res.share, res.profiled, kpiFrames)
	for _, d := range []struct {
		what string
		lat  []time.Duration
	}{{"send → frame (with the gateway's own lag)", res.latency}, {"stored (visitor's ack) → frame", res.fromAck}} {
		if len(d.lat) == 0 {
			continue
		}
		slices.Sort(d.lat)
		q := func(p int) time.Duration { return d.lat[min(len(d.lat)-1, len(d.lat)*p/100)].Round(time.Millisecond) }
		fmt.Printf("  wallboard, %s: %d probes, p50 %v, p90 %v, max %v  (target < 1s)\n", d.what, len(d.lat), q(50), q(90), q(100))
	}
	return 0
}

type result struct {
	share                 float64 // profile: % of the samples in kpiFrames
	profiled              string  // profile: the samples' total
	loadgen               string
	latency, fromAck      []time.Duration
	loadBefore, loadAfter string
}

// runLoadgen runs cmd, with during called meanwhile (it returns by the
// time exited is closed), and puts its output and the load average after
// it into res.
func runLoadgen(cmd *exec.Cmd, res *result, during func(exited <-chan struct{})) error {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	during(exited)
	<-exited
	if waitErr != nil {
		return fmt.Errorf("loadgen: %w\n%s", waitErr, out.String())
	}
	res.loadgen, res.loadAfter = out.String(), loadavg()
	return nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// loopback makes sure a URL is this machine's.
func loopback(base string) error {
	u, err := url.Parse(base)
	if err != nil || u.Hostname() != "127.0.0.1" {
		return fmt.Errorf("kpiload: %q is not a loopback address", base)
	}
	return nil
}
