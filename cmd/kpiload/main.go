// Command kpiload measures what the KPIs cost the gateway and how fast
// the wallboard follows, on this machine only (loopback, hard caps).
//
// It builds ./cmd/gateway and ./cmd/loadgen, then runs the same web chat
// load (loadgen: -conns visitors sending -rate messages a second) twice
// against a fresh gateway: once with reports.disabled (no KPI consumer,
// no wallboard) and once with KPIs on. The gateway's CPU over each run
// (loadgen's own figure, from /proc/<pid>/stat) gives the KPIs' share:
// (on - off) / on. With KPIs on it also watches the wallboard frame on a
// supervisor's socket and, once the load is steady, opens a new visitor
// every second whose first message must show in the frame (the queue's
// offered count): the time from that send to the frame is the
// wallboard's latency under load.
//
//	go run ./cmd/kpiload -conns 10000 -rate 2000 -duration 30s
//
// The machine may be shared: the report prints the load average before
// and after each run; run it twice and compare before trusting a figure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
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
	modes            []string
}

func main() { os.Exit(run()) }

func run() int {
	var o options
	var modes string
	flag.IntVar(&o.conns, "conns", 10000, fmt.Sprintf("visitor sockets (at most %d)", maxConns))
	flag.IntVar(&o.rate, "rate", 2000, fmt.Sprintf("messages per second (at most %d)", maxRate))
	flag.DurationVar(&o.duration, "duration", 30*time.Second, fmt.Sprintf("measured time per run (at most %v)", maxDuration))
	flag.DurationVar(&o.warmup, "warmup", 10*time.Second, "sending before measuring, so every visitor's conversation is open")
	flag.StringVar(&modes, "modes", "profile", "runs, in order: profile (KPIs on, the gateway in this process, CPU profiled: the KPIs' share of its samples), off (reports.disabled) and on (the gateway binary; compare their CPU seconds)")
	flag.Parse()
	o.modes = strings.Split(modes, ",")
	switch {
	case o.conns < 1 || o.conns > maxConns, o.rate < 1 || o.rate > maxRate,
		o.duration <= 0 || o.duration > maxDuration, o.warmup < 0 || o.warmup > time.Minute:
		fmt.Fprintln(os.Stderr, "kpiload: a size or a time is out of range (see -h)")
		return 2
	}
	for _, m := range o.modes {
		if m != "on" && m != "off" && m != "profile" {
			fmt.Fprintf(os.Stderr, "kpiload: mode %q is not profile, on or off\n", m)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "kpiload")
	if err != nil {
		fmt.Fprintln(os.Stderr, "kpiload:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins := map[string]string{}
	for _, name := range []string{"gateway", "loadgen"} {
		bins[name] = filepath.Join(dir, name)
		fmt.Fprintf(os.Stderr, "kpiload: building ./cmd/%s\n", name)
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bins[name], "github.com/omnigate/omnigate/cmd/"+name).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "kpiload: go build ./cmd/%s: %v\n%s", name, err, out)
			return 1
		}
	}
	fmt.Printf("kpiload %s, %s\n", strings.Join(os.Args[1:], " "), time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("  machine: %d CPUs, %s/%s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	cpu := map[string]float64{}
	var lat, fromAck []time.Duration
	var share *result
	for i, mode := range o.modes {
		rdir := filepath.Join(dir, fmt.Sprintf("run%d", i))
		var res *result
		var err error
		if mode == "profile" {
			res, err = profileRun(ctx, o, bins["loadgen"], rdir)
			share = res
		} else {
			res, err = measure(ctx, o, bins, rdir, mode)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "kpiload: run %s: %v\n", mode, err)
			return 1
		}
		cpu[mode] = res.cpu
		lat, fromAck = append(lat, res.latency...), append(fromAck, res.fromAck...)
		fmt.Printf("\nrun %s (load average %s before, %s after):\n%s", mode, res.loadBefore, res.loadAfter, indent(res.loadgen))
	}
	fmt.Println("\nSummary")
	for _, m := range []string{"off", "on"} {
		if v, ok := cpu[m]; ok {
			fmt.Printf("  gateway CPU, KPIs %-3s  %.1f s\n", m, v)
		}
	}
	if share != nil {
		fmt.Printf("  KPIs' share of the gateway's CPU samples: %.2f%% of %s profiled  (pprof focus %s; target < 5%%)\n",
			share.share, share.profiled, kpiFrames)
	}
	if on, off := cpu["on"], cpu["off"]; on > 0 && off > 0 {
		fmt.Printf("  KPIs' share of the gateway's CPU: %.1f%%  ((on - off) / on; target < 5%%)\n", 100*(on-off)/on)
	}
	for _, d := range []struct {
		what string
		lat  []time.Duration
	}{{"send → frame (with the gateway's own lag)", lat}, {"stored (visitor's ack) → frame", fromAck}} {
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
	cpu                   float64
	share                 float64 // profile: % of the samples in kpiFrames
	profiled              string  // profile: the samples' total
	loadgen               string
	latency, fromAck      []time.Duration
	loadBefore, loadAfter string
}

var cpuLine = regexp.MustCompile(`gateway CPU:\s+([0-9.]+) s`)

// measure runs one gateway with KPIs on or off under loadgen's load.
func measure(ctx context.Context, o options, bins map[string]string, dir, mode string) (*result, error) {
	gw, err := startGateway(ctx, bins["gateway"], dir, mode == "off", o)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	res := &result{loadBefore: loadavg()}
	var board *wallboard
	if mode == "on" {
		if board, err = watchWallboard(ctx, gw.base); err != nil {
			return nil, err
		}
		defer board.close()
	}
	err = runLoadgen(loadgenCmd(ctx, bins["loadgen"], gw.base, gw.cmd.Process.Pid, o), res, func(exited <-chan struct{}) {
		if board != nil {
			res.latency, res.fromAck = probe(ctx, gw.base, board, o, exited, nil)
		}
	})
	if err != nil {
		return nil, err
	}
	m := cpuLine.FindStringSubmatch(res.loadgen)
	if m == nil {
		return nil, errors.New("loadgen printed no gateway CPU:\n" + res.loadgen)
	}
	res.cpu, _ = strconv.ParseFloat(m[1], 64)
	return res, nil
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
