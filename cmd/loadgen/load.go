package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// phases name the parts of a run, for saying when something happened.
var phases = [...]string{"connecting", "settling", "warm-up", "measured", "draining"}

const (
	phaseConnecting = iota
	phaseSettling
	phaseWarmup
	phaseMeasured
	phaseDraining
)

// senders is how many goroutines write visitors' messages; each owns
// every senders-th visitor, so no socket has two writers.
const senders = 4

// run is one load run's shared state. t0 is the clock every timestamp in
// a message is relative to (monotonic, this process only).
type run struct {
	o       options
	base    *url.URL
	origin  string
	t0      time.Time
	closing atomic.Bool
	phase   atomic.Int32 // index into phases

	// measureFrom is the offset from t0 from which sends are measured.
	measureFrom atomic.Int64
	// sentMeasured counts messages sent in the measured period.
	sentMeasured atomic.Int64
	sentTotal    atomic.Int64
	writeErrors  atomic.Int64

	acks   atomic.Int64
	events atomic.Int64
	errs   atomic.Int64 // error frames

	mu     sync.Mutex
	ackLat []time.Duration
	closes map[string]int // why visitor sockets ended early
}

type visitor struct {
	idx  int
	conn *websocket.Conn
	n    int // messages sent; its sender's only
	dead atomic.Bool
}

// runLoad runs every phase and returns what it measured, partly filled
// when a phase fails.
func runLoad(ctx context.Context, o options) (rep *report, err error) {
	rep = &report{opts: o, started: time.Now(), loadStart: loadAvg()}
	defer func() {
		if rep != nil {
			rep.loadEnd = loadAvg()
		}
	}()
	if rep.nofile, err = raiseNoFile(); err != nil {
		return nil, err
	}
	if need := uint64(o.conns) + 512; rep.nofile < need {
		return nil, fmt.Errorf("-conns %d needs about %d file descriptors and the limit is %d (ulimit -Hn)", o.conns, need, rep.nofile)
	}
	r := &run{o: o, t0: time.Now(), closes: map[string]int{}}
	var token string
	pid := 0
	if o.target == "" {
		c, serr := startGateway(ctx, o.gatewayBin, o.site, perVisitorPerMinute(o), o.inboxReps)
		if serr != nil {
			return nil, serr
		}
		defer c.stopAfter(&err, &rep.gatewayLog, &rep.stoppedClean)
		r.base, _ = url.Parse(c.base)
		token, r.origin, pid = c.token, loadOrigin, c.pid()
		rep.gateway = fmt.Sprintf("started by loadgen: pid %d on %s, bolt store in a temporary directory", pid, c.base)
	} else {
		r.base, _ = loopbackURL(o.target)
		token, r.origin, pid = o.repToken, r.base.Scheme+"://"+r.base.Host, o.gatewayPID
		rep.gateway = "running already at " + r.base.String()
		if pid != 0 {
			rep.gateway += fmt.Sprintf(" (pid %d)", pid)
		}
	}
	if o.origin != "" {
		r.origin = o.origin
	}
	base := r.base.String()

	// Idle gateway.
	readRSS := func() int64 {
		if pid == 0 {
			return -1
		}
		v, err := rssKiB(pid)
		if err != nil {
			return -1
		}
		return v
	}
	rep.rssBefore = readRSS()
	rep.goBefore = gatewayMetrics(ctx, base)

	rs, err := dialRep(ctx, r, token)
	if err != nil {
		return rep, err
	}
	defer rs.close()
	var reps *inboxReps
	if o.inboxReps > 0 {
		if reps, err = dialInboxReps(ctx, r, token, o.inboxReps); err != nil {
			return rep, err
		}
		defer reps.close()
	}

	// Connect every visitor.
	fmt.Fprintf(os.Stderr, "loadgen: opening %d visitor sockets to %s\n", o.conns, base)
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	start := time.Now()
	visitors := r.connectAll(cctx)
	cancel()
	r.phase.Store(phaseSettling)
	rep.connectTime = time.Since(start)
	rep.established = len(visitors)
	rep.connectFailures = r.takeCloses()
	defer r.closeAll(visitors)
	if len(visitors) == 0 {
		return rep, errors.New("no visitor socket could be opened")
	}
	if err := sleep(ctx, 2*time.Second); err != nil { // let the sockets settle
		return rep, err
	}
	rep.rssConnected = readRSS()
	rep.goConnected = gatewayMetrics(ctx, base)

	// Send: warm-up, then the measured period.
	fmt.Fprintf(os.Stderr, "loadgen: sending %d msg/s: %v warm-up, %v measured\n", o.rate, o.warmup, o.duration)
	cpu0 := cpuTicks(pid)
	sendStart := time.Since(r.t0)
	r.measureFrom.Store(int64(sendStart + o.warmup))
	r.phase.Store(phaseWarmup)
	r.send(ctx, visitors, sendStart)
	r.phase.Store(phaseDraining)
	rep.cpuTicks = cpuTicks(pid) - cpu0
	rep.sentMeasured = r.sentMeasured.Load()
	rep.sentTotal = r.sentTotal.Load()
	rep.writeErrors = r.writeErrors.Load()
	rep.rssLoaded = readRSS()
	rep.hwm = hwmKiB(pid)
	rep.goLoaded = gatewayMetrics(ctx, base)

	// Drain: wait for what is in flight.
	deadline := time.Now().Add(drainTimeout)
	for (rs.received.Load() < rep.sentMeasured || r.acks.Load() < rep.sentTotal) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if reps != nil {
		reps.quiesce(ctx, time.Second, drainTimeout)
	}
	r.closing.Store(true)
	if reps != nil {
		res := reps.result()
		res.queueDepthMax = gatewayMetrics(ctx, base).inboxDepth
		rep.inbox = &res
	}
	rep.received = rs.received.Load()
	rep.latency, rep.latencySent = rs.latencies()
	rep.measureFrom = time.Duration(r.measureFrom.Load())
	rep.repReconnects, rep.repErr = rs.state()
	r.mu.Lock()
	rep.ackLatency = r.ackLat
	r.mu.Unlock()
	rep.acks = r.acks.Load()
	rep.errorFrames = r.errs.Load()
	rep.dropped = r.takeCloses()
	rep.loadgenCPU = ownCPU()
	return rep, ctx.Err()
}

// perVisitorPerMinute is the message rate each visitor sends, rounded up.
func perVisitorPerMinute(o options) int {
	return (o.rate*60 + o.conns - 1) / o.conns
}

// connectAll opens the visitor sockets, o.dialers at a time, and starts a
// reader for each. Failures are counted in r.closes.
func (r *run) connectAll(ctx context.Context) []*visitor {
	idx := make(chan int)
	out := make(chan *visitor, r.o.conns)
	var wg sync.WaitGroup
	for range r.o.dialers {
		wg.Go(func() {
			for i := range idx {
				v, err := r.dialVisitor(ctx, i)
				if err != nil {
					r.noteClose("connect: " + reason(err))
					continue
				}
				out <- v
				go r.read(v)
			}
		})
	}
feed:
	for i := range r.o.conns {
		select {
		case idx <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	close(out)
	var vs []*visitor
	for v := range out {
		vs = append(vs, v)
	}
	return vs
}

var dialer = &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}

// dialVisitor opens one visitor socket and completes hello → welcome.
func (r *run) dialVisitor(ctx context.Context, i int) (*visitor, error) {
	u := url.URL{Scheme: "ws", Host: r.base.Host, Path: "/channels/webchat/ws",
		RawQuery: url.Values{"site": {r.o.site}, "visitor": {"lg" + randomHex(11)}}.Encode()}
	h := map[string][]string{"Origin": {r.origin}}
	conn, resp, err := dialer.DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","after":0,"lang":"en"}`)); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, b, err := conn.ReadMessage()
	if err != nil {
		conn.Close()
		return nil, err
	}
	var f struct{ Type string }
	if err := jsonUnmarshal(b, &f); err != nil || f.Type != "welcome" {
		conn.Close()
		return nil, fmt.Errorf("first frame %.80s, want welcome", b)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return &visitor{idx: i, conn: conn}, nil
}

// read consumes a visitor's frames: acks (timed), events, errors.
func (r *run) read(v *visitor) {
	for {
		_, b, err := v.conn.ReadMessage()
		if err != nil {
			v.dead.Store(true)
			if !r.closing.Load() {
				r.noteClose(reason(err) + " while " + phases[r.phase.Load()])
			}
			return
		}
		var f struct {
			Type     string `json:"type"`
			ClientID string `json:"client_id"`
		}
		if jsonUnmarshal(b, &f) != nil {
			continue
		}
		switch f.Type {
		case "ack":
			r.acks.Add(1)
			if sent, ok := sentAt(f.ClientID); ok && sent >= r.measureFrom.Load() {
				d := time.Since(r.t0) - time.Duration(sent)
				r.mu.Lock()
				r.ackLat = append(r.ackLat, d)
				r.mu.Unlock()
			}
		case "event":
			r.events.Add(1)
		case "error":
			r.errs.Add(1)
		}
	}
}

// send writes messages at o.rate for warm-up plus duration, round-robin
// over the visitors, from `senders` goroutines that each own a share.
// Pacing is by elapsed time, so a stall is followed by a catch-up burst,
// not a lower rate; the report gives the rate achieved.
func (r *run) send(ctx context.Context, vs []*visitor, sendStart time.Duration) {
	total := r.o.warmup + r.o.duration
	var wg sync.WaitGroup
	for s := range min(senders, len(vs)) {
		var own []*visitor
		for i := s; i < len(vs); i += senders {
			own = append(own, vs[i])
		}
		// This sender's share of the rate.
		rate := float64(r.o.rate) / float64(min(senders, len(vs)))
		wg.Go(func() {
			var buf []byte
			sent, next := 0, 0
			for {
				el := time.Since(r.t0) - sendStart
				if el >= total || ctx.Err() != nil {
					return
				}
				if el >= r.o.warmup && r.phase.Load() == phaseWarmup {
					r.phase.CompareAndSwap(phaseWarmup, phaseMeasured)
				}
				due := int(el.Seconds() * rate)
				for ; sent < due; sent++ {
					v := nextAlive(own, &next)
					if v == nil {
						return
					}
					at := time.Since(r.t0)
					v.n++
					buf = fmt.Appendf(buf[:0], `{"type":"message","client_id":"c%d-%d-%d","text":"lg %d"}`, v.idx, v.n, at, at)
					_ = v.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
					if err := v.conn.WriteMessage(websocket.TextMessage, buf); err != nil {
						v.dead.Store(true)
						r.writeErrors.Add(1)
						continue
					}
					r.sentTotal.Add(1)
					if int64(at) >= r.measureFrom.Load() {
						r.sentMeasured.Add(1)
					}
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
}

// nextAlive returns the next visitor in round-robin order whose socket is
// open, or nil when none is.
func nextAlive(vs []*visitor, next *int) *visitor {
	for range vs {
		v := vs[*next]
		*next = (*next + 1) % len(vs)
		if !v.dead.Load() {
			return v
		}
	}
	return nil
}

// closeAll closes the visitor sockets with a normal close frame.
func (r *run) closeAll(vs []*visitor) {
	r.closing.Store(true)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	for _, v := range vs {
		_ = v.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		v.conn.Close()
	}
}

func (r *run) noteClose(why string) {
	r.mu.Lock()
	r.closes[why]++
	r.mu.Unlock()
}

// takeCloses returns the reasons counted so far and starts counting anew.
func (r *run) takeCloses() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.closes
	r.closes = map[string]int{}
	return m
}

// reason names why a socket ended: its close code, a reset or broken
// pipe (without the addresses, so they add up to one line each), or the
// error.
func reason(err error) string {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("close %d", ce.Code)
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	}
	return err.Error()
}

// sentAt reads the send time from a client id "c<visitor>-<n>-<nanos>".
func sentAt(clientID string) (int64, bool) {
	for i := len(clientID) - 1; i >= 0; i-- {
		if clientID[i] == '-' {
			n, err := strconv.ParseInt(clientID[i+1:], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// raiseNoFile raises the soft limit on open files to the hard limit, which
// the gateway child inherits, and returns it.
func raiseNoFile() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, fmt.Errorf("raising the open files limit: %w", err)
		}
	}
	return l.Cur, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
