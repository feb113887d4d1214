package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// report is what one run measured. Memory is in KiB; -1 means unknown.
type report struct {
	opts         options
	started      time.Time
	gateway      string
	nofile       uint64
	stoppedClean bool

	established     int
	connectTime     time.Duration
	connectFailures map[string]int

	rssBefore, rssConnected, rssLoaded, hwm int64
	goBefore, goConnected, goLoaded         goStats

	sentTotal, sentMeasured, writeErrors int64
	received, acks, errorFrames          int64
	latency, ackLatency                  []time.Duration
	latencySent                          []time.Duration // send offset of each latency
	measureFrom                          time.Duration
	dropped                              map[string]int
	repErr                               error
	repReconnects                        map[string]int
	gatewayLog                           string // warnings and errors the started gateway logged
	cpuTicks                             int64
	loadgenCPU                           time.Duration
	loadStart, loadEnd                   string       // /proc/loadavg
	inbox                                *inboxResult // -inbox-reps only
}

func (r *report) print(w io.Writer) {
	o := r.opts
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("Omnigate load run, %s", r.started.UTC().Format(time.RFC3339))
	p("  machine:          %d CPUs (%s), %s/%s, loadgen built with %s", runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	p("  command:          loadgen -conns %d -rate %d -duration %v -warmup %v -inbox-reps %d", o.conns, o.rate, o.duration, o.warmup, o.inboxReps)
	p("  gateway:          %s", r.gateway)
	p("  open files limit: %d", r.nofile)
	p("  load average:     %s at the start, %s at the end (1, 5, 15 min; the machine may be shared)", r.loadStart, r.loadEnd)
	p("")
	p("Connections")
	p("  visitor sockets:  %d of %d established in %.1fs (%.0f/s)", r.established, o.conns, r.connectTime.Seconds(),
		float64(r.established)/max(r.connectTime.Seconds(), 0.001))
	if len(r.connectFailures) > 0 {
		p("  failed to open:   %s", counts(r.connectFailures))
	}
	p("  gateway RSS:      %s idle, %s with the sockets open", kib(r.rssBefore), kib(r.rssConnected))
	if r.rssBefore >= 0 && r.rssConnected >= 0 && r.established > 0 {
		p("  RSS per socket:   %.1f KiB  (target < 30 KiB)", float64(r.rssConnected-r.rssBefore)/float64(r.established))
	}
	perSocket := func(before, after float64) string {
		if before < 0 || after < 0 || r.established == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f KiB", (after-before)/1024/float64(r.established))
	}
	b, c := r.goBefore, r.goConnected
	if b.goroutines >= 0 && c.goroutines >= 0 && r.established > 0 {
		p("  goroutines:       %.0f idle, %.0f with the sockets open (%.2f per socket)", b.goroutines, c.goroutines,
			(c.goroutines-b.goroutines)/float64(r.established))
	}
	p("  of which Go heap: %s per socket (heap in use %s idle, %s open)", perSocket(b.heapInuse, c.heapInuse),
		mib(b.heapInuse), mib(c.heapInuse))
	p("  and stacks:       %s per socket (stacks in use %s idle, %s open)", perSocket(b.stackInuse, c.stackInuse),
		mib(b.stackInuse), mib(c.stackInuse))
	if r.sentTotal == 0 && r.writeErrors == 0 {
		return
	}
	p("")
	p("Messages (visitor → gateway → rep socket)")
	p("  rate:             target %d/s, achieved %.0f/s over the measured %v (after %v warm-up)", o.rate,
		float64(r.sentMeasured)/o.duration.Seconds(), o.duration, o.warmup)
	p("  sent:             %d measured, %d in all; write errors %d", r.sentMeasured, r.sentTotal, r.writeErrors)
	p("  acknowledged:     %d of %d; error frames %d", r.acks, r.sentTotal, r.errorFrames)
	p("  at the rep:       %d of %d measured (missing %d)", r.received, r.sentMeasured, r.sentMeasured-r.received)
	p("  send → rep p50:   %s", pct(r.latency, 50))
	p("  send → rep p90:   %s", pct(r.latency, 90))
	p("  send → rep p99:   %s  (target < 50 ms)", pct(r.latency, 99))
	p("  send → rep max:   %s", pct(r.latency, 100))
	p("  send → ack p50:   %s, p99 %s", pct(r.ackLatency, 50), pct(r.ackLatency, 99))
	if r.cpuTicks >= 0 {
		secs := float64(r.cpuTicks) / clockTicks
		p("  gateway CPU:      %.1f s over %v (%.0f%% of one core)", secs, o.warmup+o.duration, 100*secs/(o.warmup+o.duration).Seconds())
	}
	p("  loadgen CPU:      %.1f s in all", r.loadgenCPU.Seconds())
	p("  gateway RSS:      %s under load, peak %s", kib(r.rssLoaded), kib(r.hwm))
	if r.goLoaded.goroutines >= 0 {
		p("  goroutines:       %.0f under load; Go heap in use %s, stacks %s", r.goLoaded.goroutines, mib(r.goLoaded.heapInuse), mib(r.goLoaded.stackInuse))
	}
	// The p99 follows the collector's mark phases (docs/LOAD.md): how many
	// there were while sending, and the garbage per message that drives them.
	if c, l := r.goConnected, r.goLoaded; c.gcCycles >= 0 && l.gcCycles >= 0 && r.sentTotal > 0 {
		n := l.gcCycles - c.gcCycles
		every := "-"
		if n > 0 {
			every = fmt.Sprintf("%.1f s", (o.warmup+o.duration).Seconds()/n)
		}
		p("  gateway GC:       %.0f collections while sending (one every %s); %.1f KiB allocated per message",
			n, every, (l.allocBytes-c.allocBytes)/1024/float64(r.sentTotal))
	}
	if o.perSecond {
		p("  per second of the measured period (by send time): messages, p50, p99, max")
		for i, b := range r.bySecond() {
			p("    %3ds  %5d  %10s  %10s  %10s", i, len(b), pct(b, 50), pct(b, 99), pct(b, 100))
		}
	}
	if len(r.dropped) > 0 {
		p("  sockets dropped:  %s", counts(r.dropped))
	} else {
		p("  sockets dropped:  none")
	}
	if len(r.repReconnects) > 0 {
		p("  rep reconnected:  after %s (messages appended meanwhile count as missing)", counts(r.repReconnects))
	}
	if r.repErr != nil {
		p("  rep socket:       %v", r.repErr)
	}
	if r.gateway != "" && strings.HasPrefix(r.gateway, "started") {
		p("  gateway stopped:  %v", map[bool]string{true: "cleanly on SIGTERM", false: "not cleanly (see the error)"}[r.stoppedClean])
	}
	if r.inbox != nil {
		r.inbox.print(p)
	}
	if r.gatewayLog != "" {
		p("")
		p("Gateway warnings and errors (its log at level warn, last lines):")
		p("%s", r.gatewayLog)
	}
}

// bySecond groups the latencies by the second of the measured period in
// which they were sent.
func (r *report) bySecond() [][]time.Duration {
	n := int(r.opts.duration / time.Second)
	if r.opts.duration%time.Second != 0 {
		n++
	}
	out := make([][]time.Duration, n)
	for i, d := range r.latency {
		s := int((r.latencySent[i] - r.measureFrom) / time.Second)
		if s >= 0 && s < n {
			out[s] = append(out[s], d)
		}
	}
	return out
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p float64) string {
	if len(ds) == 0 {
		return "n/a"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return fmt.Sprintf("%.2f ms", float64(s[i])/float64(time.Millisecond))
}

func kib(v int64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(v)/1024)
}

func mib(bytes float64) string {
	if bytes < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", bytes/(1<<20))
}

func counts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuTicks is a process's user plus system time in clock ticks, -1 if
// unknown.
func cpuTicks(pid int) int64 {
	if pid == 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return u + s
}

// hwmKiB is a process's peak resident set size.
func hwmKiB(pid int) int64 {
	if pid == 0 {
		return -1
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// ownCPU is loadgen's own user plus system time: it shares the machine's
// cores with the gateway, which the latency figures include.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
