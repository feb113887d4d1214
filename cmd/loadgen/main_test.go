package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoopbackURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want string // "" means refused
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"http://localhost:8080", "http://127.0.0.1:8080"},
		{"http://LOCALHOST:9", "http://127.0.0.1:9"},
		{"http://127.8.9.10:1", "http://127.8.9.10:1"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"http://10.0.0.1:8080", ""},
		{"http://0.0.0.0:8080", ""},
		{"http://example.com:8080", ""},
		{"http://127.0.0.1.example.com:80", ""},
		{"http://localhost.example.com:80", ""},
		{"https://127.0.0.1:8443", ""},
		{"ws://127.0.0.1:8080", ""},
		{"http://127.0.0.1", ""},
		{"http://user:pw@127.0.0.1:8080", ""},
		{"http://127.0.0.1:8080/v1", ""},
		{"127.0.0.1:8080", ""},
		{"", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			u, err := loopbackURL(tc.in)
			switch {
			case tc.want == "" && err == nil:
				t.Errorf("loopbackURL(%q) = %v, want refused", tc.in, u)
			case tc.want != "" && err != nil:
				t.Errorf("loopbackURL(%q): %v", tc.in, err)
			case tc.want != "" && u.String() != tc.want:
				t.Errorf("loopbackURL(%q) = %v, want %s", tc.in, u, tc.want)
			}
		})
	}
}

func TestOptionsCaps(t *testing.T) {
	t.Parallel()
	ok := options{conns: 10, rate: 10, duration: time.Second, warmup: 0, dialers: 10, site: "load"}
	for _, tc := range []struct {
		name   string
		change func(*options)
		errHas string // "" means valid
	}{
		{"defaults-like", func(*options) {}, ""},
		{"max", func(o *options) {
			o.conns, o.rate, o.duration, o.warmup, o.dialers = maxConns, maxRate, maxDuration, maxWarmup, maxDialers
		}, ""},
		{"too many conns", func(o *options) { o.conns = maxConns + 1 }, "-conns"},
		{"no conns", func(o *options) { o.conns = 0 }, "-conns"},
		{"rate over cap", func(o *options) { o.rate = maxRate + 1 }, "-rate"},
		{"duration over cap", func(o *options) { o.duration = maxDuration + time.Second }, "-duration"},
		{"warmup over cap", func(o *options) { o.warmup = maxWarmup + time.Second }, "-warmup"},
		{"dialers over cap", func(o *options) { o.dialers = maxDialers + 1 }, "-dial-concurrency"},
		{"remote target", func(o *options) { o.target, o.repToken = "http://192.0.2.1:80", "t" }, "not a loopback"},
		{"target without token", func(o *options) { o.target = "http://127.0.0.1:80" }, "-rep-token"},
		{"token without target", func(o *options) { o.repToken = "t" }, "for -target"},
		{"crash", func(o *options) { o.crash = 1 }, ""},
		{"crashes over cap", func(o *options) { o.crash = maxCrashes + 1 }, "-crash"},
		{"crash with target", func(o *options) { o.crash, o.target, o.repToken = 1, "http://127.0.0.1:80", "t" }, "not with -target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.change(&o)
			err := o.validate()
			switch {
			case tc.errHas == "" && err != nil:
				t.Errorf("validate: %v", err)
			case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
				t.Errorf("validate = %v, want an error about %s", err, tc.errHas)
			}
		})
	}
}

func TestSentAt(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"c1-2-12345": 12345, "c10-1-0": 0} {
		if got, ok := sentAt(in); !ok || got != want {
			t.Errorf("sentAt(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "nodash", "c1-2-x"} {
		if _, ok := sentAt(in); ok {
			t.Errorf("sentAt(%q) ok, want not", in)
		}
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]string{50: "50.00 ms", 99: "99.00 ms", 100: "100.00 ms", 1: "1.00 ms"} {
		if got := pct(ds, p); got != want {
			t.Errorf("pct(%v) = %s, want %s", p, got, want)
		}
	}
	if got := pct(nil, 50); got != "n/a" {
		t.Errorf("pct(nil) = %s", got)
	}
}

// TestSmallRun runs the whole program small: build and start the real
// gateway, open 20 visitor sockets, send for a second, and expect every
// message at the rep's socket and the gateway stopped cleanly. It keeps
// loadgen working as the protocols change; the figures are not checked.
func TestSmallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	o := options{conns: 20, rate: 40, duration: time.Second, warmup: 200 * time.Millisecond, dialers: 5, site: "load", gatewayBin: gatewayBin(t)}
	rep := runLogged(t, o, runLoad)
	if rep.established != o.conns {
		t.Errorf("established %d sockets, want %d (failures: %v)", rep.established, o.conns, rep.connectFailures)
	}
	if rep.sentMeasured == 0 || rep.received != rep.sentMeasured {
		t.Errorf("rep received %d of %d measured messages", rep.received, rep.sentMeasured)
	}
	if rep.acks != rep.sentTotal {
		t.Errorf("%d acks for %d messages", rep.acks, rep.sentTotal)
	}
	if len(rep.dropped) > 0 || rep.repErr != nil {
		t.Errorf("sockets dropped: %v; rep socket: %v", rep.dropped, rep.repErr)
	}
	if !rep.stoppedClean {
		t.Error("the gateway did not stop cleanly")
	}
	if rep.rssBefore <= 0 || rep.rssConnected <= 0 {
		t.Errorf("RSS not read: %d, %d", rep.rssBefore, rep.rssConnected)
	}
}

// TestCrashRun is the SIGKILL durability run, short: a few visitors, one
// kill mid-stream, a restart, resends; every acknowledged message must be
// on its visitor's timeline exactly once, and a second gateway started on
// the same data_dir meanwhile must be refused, naming the first's pid.
// `go run ./cmd/loadgen -crash N` is the long form (README).
func TestCrashRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	o := options{conns: 10, rate: 40, duration: 4 * time.Second, dialers: 1, site: "load", crash: 1, gatewayBin: gatewayBin(t)}
	rep := runLogged(t, o, runCrash)
	if err := rep.ok(); err != nil {
		t.Error(err)
	}
	if rep.reconnects < o.conns {
		t.Errorf("%d reconnects for %d visitors: the kill did not cut the sockets", rep.reconnects, o.conns)
	}
	if !rep.stoppedClean {
		t.Error("the gateway did not stop cleanly after the restart")
	}
}

// runLogged validates o, runs it with run (within two minutes), logs the
// report and fails t if the run failed.
func runLogged[R interface {
	comparable
	print(io.Writer)
}](t *testing.T, o options, run func(context.Context, options) (R, error)) R {
	t.Helper()
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := run(ctx, o)
	var none R
	if rep != none {
		var out bytes.Buffer
		rep.print(&out)
		t.Logf("\n%s", out.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// gatewayBin builds ./cmd/gateway once for the package's tests.
func gatewayBin(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "omnigate-loadgen-test-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "gateway")
		out, err := exec.Command("go", "build", "-o", built.bin, "github.com/omnigate/omnigate/cmd/gateway").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build ./cmd/gateway: %w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}
