package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"syscall"

	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/internal/gateway"
)

// kpiFrames are the functions whose samples are the KPIs' cost: the
// engine (counting, flushing, reports, the live view) and the inbox's
// wallboard loop.
const kpiFrames = `omnigate/internal/kpi\.|omnigate/internal/inbox\.\(\*Hub\)\.startWallboard`

var shareLine = regexp.MustCompile(`Showing nodes accounting for [^,]+, ([0-9.]+)% of ([0-9.]+m?s) total`)

// profileRun runs the gateway in this process, with KPIs on, under
// loadgen's load, profiles the CPU over the steady part, and reports the
// share of samples in kpiFrames: robust on a shared machine, where two
// runs' CPU seconds differ by more than the KPIs cost.
func profileRun(ctx context.Context, o options, loadgenBin, dir string) (*result, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The gateway's sockets are this process's now.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	y, err := gatewayConfig(dir, o)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(y, func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	g, err := gateway.New(gctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	ran := make(chan error, 1)
	go func() { ran <- g.Run(gctx) }()
	defer func() {
		stop()
		<-ran
	}()
	base := g.BaseURL()
	if err := loopback(base); err != nil {
		return nil, err
	}
	board, err := watchWallboard(ctx, base)
	if err != nil {
		return nil, err
	}
	defer board.close()
	res := &result{loadBefore: loadavg()}
	var prof bytes.Buffer
	profiling := false
	err = runLoadgen(loadgenCmd(ctx, loadgenBin, base, os.Getpid(), o), res, func(exited <-chan struct{}) {
		res.latency, res.fromAck = probe(ctx, base, board, o, exited, func() {
			profiling = pprof.StartCPUProfile(&prof) == nil
		})
	})
	if profiling {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return nil, err
	}
	profPath := filepath.Join(dir, "cpu.pprof")
	if !profiling {
		return nil, errors.New("the load never became steady enough to profile")
	}
	if err := os.WriteFile(profPath, prof.Bytes(), 0o600); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=100000", "-nodefraction=0",
		"-edgefraction=0", "-focus="+kpiFrames, exe, profPath).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %w\n%s", err, top)
	}
	m := shareLine.FindSubmatch(top)
	if m == nil {
		// No sample at all in kpiFrames.
		res.share = 0
		return res, nil
	}
	res.share, _ = strconv.ParseFloat(string(m[1]), 64)
	res.profiled = string(m[2])
	return res, nil
}

// loadgenCmd is loadgen against base, measuring the process pid.
func loadgenCmd(ctx context.Context, bin, base string, pid int, o options) *exec.Cmd {
	return exec.CommandContext(ctx, bin, "-target", base, "-rep-token", token,
		"-gateway-pid", strconv.Itoa(pid), "-site", site, "-origin", origin,
		"-conns", strconv.Itoa(o.conns), "-rate", strconv.Itoa(o.rate),
		"-duration", o.duration.String(), "-warmup", o.warmup.String())
}
