// Command loadgen measures one gateway under web chat load, on this
// machine only: it opens many visitor WebSockets, sends messages from them
// at a fixed rate, and reports how many sockets the gateway held, its
// resident memory per socket, and the latency from a visitor's send to a
// rep's socket (p50, p99).
//
// By default it builds ./cmd/gateway, runs it as a child process with a
// temporary configuration and data directory (the embedded bolt store),
// and stops it by its PID at the end, so it knows whose memory to read:
//
//	go run ./cmd/loadgen -conns 10000 -rate 2000 -duration 20s
//
// -target points it at a gateway that runs already (loopback only; pass
// -rep-token, and -gateway-pid for the memory figures). Every size and
// time has a hard cap, and it refuses any address that is not loopback: it
// is a benchmark for this machine, not a tool to load someone else's.
//
// -crash N is the SIGKILL durability run instead (crash.go): -conns
// visitors send -rate messages a second for -duration with client ids,
// the gateway is killed with SIGKILL N times meanwhile and restarted on
// the same data directory, visitors reconnect and resend what has no ack,
// and at the end every visitor's timeline is read through the REST API.
// It reports acknowledged, found, lost and duplicated messages, and exits
// with status 1 if any acknowledged message is lost or stored twice:
//
//	go run ./cmd/loadgen -crash 3 -conns 200 -rate 400 -duration 30s
//
// -inbox-reps N adds N rep inbox sockets (inbox.go) to a load run; with
// one message per visitor it measures conversations opening (issue 15:
// 5,000 in 10 s, 200 reps, none cut off):
//
//	go run ./cmd/loadgen -conns 5000 -rate 500 -warmup 0 -duration 10s -inbox-reps 200
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() { os.Exit(loadgen()) }

func loadgen() int {
	var o options
	flag.IntVar(&o.conns, "conns", 10000, fmt.Sprintf("visitor WebSockets to open (at most %d)", maxConns))
	flag.IntVar(&o.rate, "rate", 2000, fmt.Sprintf("messages per second from all visitors together (at most %d)", maxRate))
	flag.DurationVar(&o.duration, "duration", 20*time.Second, fmt.Sprintf("how long to measure at -rate (at most %v)", maxDuration))
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, fmt.Sprintf("sending at -rate before measuring, so every visitor's conversation is open (at most %v)", maxWarmup))
	flag.IntVar(&o.dialers, "dial-concurrency", 200, fmt.Sprintf("sockets being opened at once (at most %d)", maxDialers))
	flag.StringVar(&o.gatewayBin, "gateway-bin", "", "gateway binary to run; empty builds ./cmd/gateway into a temporary directory")
	flag.StringVar(&o.target, "target", "", "base URL of a gateway that runs already, e.g. http://127.0.0.1:8080 (loopback only); empty starts one")
	flag.StringVar(&o.site, "site", "load", "webchat site id (with -target: one of its sites)")
	flag.StringVar(&o.origin, "origin", "", "Origin header of the visitor sockets; empty means the one the started gateway allows, or the target's own origin")
	flag.StringVar(&o.repToken, "rep-token", "", "with -target: a supervisor or admin token for the inbox socket (it follows the events view, every event)")
	flag.IntVar(&o.gatewayPID, "gateway-pid", 0, "with -target: the gateway's PID, to read its resident memory")
	flag.BoolVar(&o.perSecond, "per-second", false, "also print the latency for each second of the measured period")
	flag.IntVar(&o.crash, "crash", 0, fmt.Sprintf("SIGKILL the gateway this many times while -conns visitors send for -duration, restart it, and check every acknowledged message is stored once (at most %d; -warmup, -dial-concurrency and -per-second do not apply)", maxCrashes))
	flag.IntVar(&o.inboxReps, "inbox-reps", 0, fmt.Sprintf("also open this many rep inbox sockets (role rep, unassigned view) and report cut-offs, queue depth and time to each socket (at most %d)", maxReps))
	flag.Parse()
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.deadline())
	defer cancel()

	if o.crash > 0 {
		rep, err := runCrash(ctx, o)
		if rep != nil {
			rep.print(os.Stdout)
			if err == nil {
				err = rep.ok()
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			return 1
		}
		return 0
	}
	rep, err := runLoad(ctx, o)
	if rep != nil {
		rep.print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	return 0
}
