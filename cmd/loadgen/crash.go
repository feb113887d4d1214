package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The crash run (-crash N): the SIGKILL durability check. Visitors send
// messages with client ids as the widget does; the gateway is killed with
// SIGKILL N times while they send and started again on the same data
// directory; each visitor reconnects and resends, with the same client
// id, every message it has no ack for (docs/webchat-protocol.md,
// Resuming). At the end every visitor's timeline is read through the REST
// API: every acknowledged message must be on it exactly once.
//
// Before the first kill a second gateway is started on the same data
// directory while the first serves: it must be refused ("data_dir is in
// use by process <pid>") and the first must go on acknowledging.

// crashVisitor is one visitor's widget: its own goroutine writes, a
// reader goroutine per socket takes acks.
type crashVisitor struct {
	id  string // the visitor id, kept across reconnects
	idx int

	mu         sync.Mutex
	n          int             // messages made so far
	pending    []string        // client ids without an ack, in send order
	acked      map[string]bool // client ids acknowledged
	refused    map[string]string
	customers  []string // every customer id a welcome or an ack named, in order
	after      uint64   // largest seq seen, for hello
	sent       int      // message frames written, resends included
	resent     int
	dupAcks    int // acks saying "duplicate": stored before, answered after a resend
	reconnects int
}

type crashRun struct {
	o      options
	c      *child
	wsURL  string
	done   atomic.Bool // sending has ended: visitors only resend
	mu     sync.Mutex
	closes map[string]int // why sockets ended, while sending
}

// crashReport is what a crash run found.
type crashReport struct {
	opts      options
	started   time.Time
	visitors  int
	connected int // visitors that were welcomed with a customer id
	kills     []crashKill
	second    string // how the second gateway on the same data_dir ended
	secondErr error
	holder    int // the pid of the gateway that served meanwhile
	closes    map[string]int

	made, sent, resent, dupAcks, reconnects int
	acked, refused, unacked                 int
	found, lost, duplicated, unackedStored  int
	multiCustomer                           int // visitors whose welcome named more than one customer
	lostSample, dupSample                   []string
	stoppedClean                            bool
	gatewayLog                              string
}

// crashKill is one SIGKILL: acks received before it, and how long the
// gateway took to be ready again.
type crashKill struct {
	at       time.Duration // since sending began
	ackedBy  int
	pid      int
	downtime time.Duration
}

// runCrash runs the crash check and returns what it found, partly filled
// when a step fails.
func runCrash(ctx context.Context, o options) (rep *crashReport, err error) {
	rep = &crashReport{opts: o, started: time.Now(), visitors: o.conns}
	if _, err := raiseNoFile(); err != nil {
		return nil, err
	}
	c, err := startGateway(ctx, o.gatewayBin, o.site, perVisitorPerMinute(o), 0)
	if err != nil {
		return nil, err
	}
	defer c.stopAfter(&err, &rep.gatewayLog, &rep.stoppedClean)
	base, _ := url.Parse(c.base)
	r := &crashRun{o: o, c: c, closes: map[string]int{},
		wsURL: (&url.URL{Scheme: "ws", Host: base.Host, Path: "/channels/webchat/ws"}).String()}

	vs := make([]*crashVisitor, o.conns)
	for i := range vs {
		vs[i] = &crashVisitor{id: "lgc" + randomHex(10), idx: i, acked: map[string]bool{}, refused: map[string]string{}}
	}
	fmt.Fprintf(os.Stderr, "loadgen: %d visitors sending %d msg/s for %v; %d SIGKILLs of the gateway\n", o.conns, o.rate, o.duration, o.crash)
	sendStart := time.Now()
	vctx, stopVisitors := context.WithCancel(ctx)
	defer stopVisitors()
	var wg sync.WaitGroup
	for _, v := range vs {
		wg.Go(func() { r.visit(vctx, v) })
	}

	// The kills, evenly spread over the sending period; the second gateway
	// half way to the first.
	step := o.duration / time.Duration(o.crash+1)
	killErr := func() error {
		if err := sleepUntil(ctx, sendStart.Add(step/2)); err != nil {
			return err
		}
		rep.holder = c.pid()
		exitErr, out, err := c.second(ctx)
		if rep.secondErr = err; err == nil {
			rep.second = describeSecond(exitErr, out)
		}
		for k := 1; k <= o.crash; k++ {
			if err := sleepUntil(ctx, sendStart.Add(time.Duration(k)*step)); err != nil {
				return err
			}
			kl := crashKill{at: time.Since(sendStart), ackedBy: ackedSoFar(vs), pid: c.pid()}
			t := time.Now()
			if err := c.kill(); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "loadgen: SIGKILL %d of %d (pid %d) after %d acks; restarting\n", k, o.crash, kl.pid, kl.ackedBy)
			if err := c.start(ctx); err != nil {
				return fmt.Errorf("restart after SIGKILL %d: %w", k, err)
			}
			kl.downtime = time.Since(t)
			rep.kills = append(rep.kills, kl)
		}
		return sleepUntil(ctx, sendStart.Add(o.duration))
	}()
	r.done.Store(true)
	if killErr != nil {
		stopVisitors()
		wg.Wait()
		return rep, killErr
	}
	// Drain: each visitor ends once everything it sent is acknowledged.
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		stopVisitors()
		<-drained
	case <-ctx.Done():
		stopVisitors()
		<-drained
		return rep, ctx.Err()
	}
	rep.closes = r.closes

	fmt.Fprintln(os.Stderr, "loadgen: reading every visitor's timeline")
	stored, err := r.readTimelines(ctx, vs)
	if err != nil {
		return rep, err
	}
	rep.tally(vs, stored)
	return rep, nil
}

// visit is one visitor: connect, resend what has no ack, send a message
// every conns/rate seconds until sending ends, reconnect whenever the
// socket drops, and return once sending has ended and nothing is pending.
func (r *crashRun) visit(ctx context.Context, v *crashVisitor) {
	every := time.Duration(float64(time.Second) * float64(r.o.conns) / float64(r.o.rate))
	next := time.Now().Add(rand.N(every)) // spread the visitors' sends
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if r.done.Load() && v.settled() {
			return
		}
		conn, err := r.connect(ctx, v)
		if err != nil {
			_ = sleep(ctx, backoff+rand.N(backoff))
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		closed := make(chan error, 1)
		go func() { closed <- r.read(conn, v) }()
		why := r.talk(ctx, conn, v, closed, every, &next)
		conn.Close()
		if why == "" {
			return
		}
		if !r.done.Load() {
			r.noteClose(why)
		}
		v.mu.Lock()
		v.reconnects++
		v.mu.Unlock()
	}
}

// talk resends what is pending and sends on schedule until the socket
// ends (the reason) or the visitor is done ("").
func (r *crashRun) talk(ctx context.Context, conn *websocket.Conn, v *crashVisitor, closed <-chan error, every time.Duration, next *time.Time) string {
	v.mu.Lock()
	resend := slices.Clone(v.pending)
	v.mu.Unlock()
	for _, id := range resend {
		if err := r.write(conn, v, id, true); err != nil {
			return reason(err)
		}
	}
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case err := <-closed:
			return reason(err)
		case <-ctx.Done():
			return ""
		case <-poll.C:
		}
		if r.done.Load() {
			if v.settled() {
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				return ""
			}
			continue
		}
		for !time.Now().Before(*next) {
			*next = next.Add(every)
			v.mu.Lock()
			v.n++
			id := fmt.Sprintf("c%d-%d", v.idx, v.n)
			v.pending = append(v.pending, id)
			v.mu.Unlock()
			if err := r.write(conn, v, id, false); err != nil {
				return reason(err)
			}
		}
	}
}

// connect opens the visitor's socket and completes hello → welcome,
// resuming from the last seq it saw.
func (r *crashRun) connect(ctx context.Context, v *crashVisitor) (*websocket.Conn, error) {
	u := r.wsURL + "?" + url.Values{"site": {r.o.site}, "visitor": {v.id}}.Encode()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, _, err := dialer.DialContext(dctx, u, map[string][]string{"Origin": {loadOrigin}})
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	hello := map[string]any{"type": "hello", "after": v.after, "lang": "en"}
	if len(v.customers) > 0 {
		hello["customer_id"] = v.customers[len(v.customers)-1]
	}
	v.mu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := conn.WriteJSON(hello); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var w struct {
		Type       string `json:"type"`
		CustomerID string `json:"customer_id"`
		Reset      bool   `json:"reset"`
	}
	if err := conn.ReadJSON(&w); err != nil || w.Type != "welcome" {
		conn.Close()
		return nil, fmt.Errorf("no welcome (%q): %v", w.Type, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	v.mu.Lock()
	if w.CustomerID != "" && !slices.Contains(v.customers, w.CustomerID) {
		v.customers = append(v.customers, w.CustomerID)
	}
	if w.Reset {
		v.after = 0
	}
	v.mu.Unlock()
	return conn, nil
}

// write sends one message frame; its text names the visitor and client id.
func (r *crashRun) write(conn *websocket.Conn, v *crashVisitor, id string, resend bool) error {
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err := conn.WriteJSON(map[string]string{"type": "message", "client_id": id, "text": "crash " + id})
	if err == nil {
		v.mu.Lock()
		v.sent++
		if resend {
			v.resent++
		}
		v.mu.Unlock()
	}
	return err
}

// read takes the socket's frames until it fails: acks settle pending
// messages; events move the resume point.
func (r *crashRun) read(conn *websocket.Conn, v *crashVisitor) error {
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		var f struct {
			Type      string `json:"type"`
			ClientID  string `json:"client_id"`
			Seq       uint64 `json:"seq"`
			Duplicate bool   `json:"duplicate"`
			Code      string `json:"code"`
			Message   string `json:"message"`
			// CustomerID on an ack names the customer a new visitor's
			// first message created (its welcome named none).
			CustomerID string `json:"customer_id"`
		}
		if jsonUnmarshal(b, &f) != nil {
			continue
		}
		v.mu.Lock()
		switch f.Type {
		case "ack":
			if i := slices.Index(v.pending, f.ClientID); i >= 0 {
				v.pending = slices.Delete(v.pending, i, i+1)
			}
			v.acked[f.ClientID] = true
			if f.CustomerID != "" && !slices.Contains(v.customers, f.CustomerID) {
				v.customers = append(v.customers, f.CustomerID)
			}
			if f.Duplicate {
				v.dupAcks++
			}
		case "event":
			v.after = max(v.after, f.Seq)
		case "error":
			// invalid: never applied, and a resend would fail again.
			if f.Code == "invalid" && f.ClientID != "" {
				if i := slices.Index(v.pending, f.ClientID); i >= 0 {
					v.pending = slices.Delete(v.pending, i, i+1)
				}
				v.refused[f.ClientID] = f.Message
			}
		}
		v.mu.Unlock()
	}
}

func (v *crashVisitor) settled() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.pending) == 0
}

func (r *crashRun) noteClose(why string) {
	r.mu.Lock()
	r.closes[why]++
	r.mu.Unlock()
}

func ackedSoFar(vs []*crashVisitor) int {
	n := 0
	for _, v := range vs {
		v.mu.Lock()
		n += len(v.acked)
		v.mu.Unlock()
	}
	return n
}

// readTimelines reads, through GET /v1/customers/{id}/timeline, the
// client ids of every webchat message on each visitor's customers'
// timelines, one entry per stored event, by visitor.
func (r *crashRun) readTimelines(ctx context.Context, vs []*crashVisitor) ([][]string, error) {
	out := make([][]string, len(vs))
	idx := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range idx {
				v := vs[i]
				v.mu.Lock()
				customers := slices.Clone(v.customers)
				v.mu.Unlock()
				for _, c := range customers {
					ids, err := r.timeline(ctx, c)
					if err != nil {
						errs <- err
						return
					}
					out[i] = append(out[i], ids...)
				}
			}
		})
	}
	var err error
feed:
	for i := range vs {
		select {
		case idx <- i:
		case err = <-errs:
			break feed
		}
	}
	close(idx)
	wg.Wait()
	close(errs)
	return out, errors.Join(err, <-errs)
}

// timeline is the client ids of the webchat messages on one customer's
// timeline, page by page.
func (r *crashRun) timeline(ctx context.Context, customer string) ([]string, error) {
	var ids []string
	after := ""
	for {
		u := r.c.base + "/v1/customers/" + url.PathEscape(customer) + "/timeline?limit=1000"
		if after != "" {
			u += "&after=" + after
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+r.c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		var page struct {
			Data []struct {
				Kind       string `json:"kind"`
				Channel    string `json:"channel"`
				ExternalID string `json:"external_id"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET timeline of %s: HTTP %d", customer, resp.StatusCode)
		}
		if err != nil {
			return nil, fmt.Errorf("GET timeline of %s: %w", customer, err)
		}
		for _, e := range page.Data {
			if e.Kind == "message_in" && e.Channel == "webchat" {
				ids = append(ids, e.ExternalID)
			}
		}
		if page.NextCursor == "" {
			return ids, nil
		}
		after = page.NextCursor
	}
}

// tally counts, per visitor, what was acknowledged against what is stored.
func (rep *crashReport) tally(vs []*crashVisitor, stored [][]string) {
	for i, v := range vs {
		v.mu.Lock()
		if len(v.customers) > 0 {
			rep.connected++
		}
		if len(v.customers) > 1 {
			rep.multiCustomer++
		}
		rep.made += v.n
		rep.sent += v.sent
		rep.resent += v.resent
		rep.dupAcks += v.dupAcks
		rep.reconnects += v.reconnects
		rep.acked += len(v.acked)
		rep.refused += len(v.refused)
		rep.unacked += len(v.pending)
		times := map[string]int{}
		for _, id := range stored[i] {
			times[id]++
		}
		for id, n := range times {
			if n > 1 {
				rep.duplicated++
				rep.dupSample = appendSample(rep.dupSample, fmt.Sprintf("%s ×%d", id, n))
			}
			if !v.acked[id] {
				rep.unackedStored++
			}
		}
		for id := range v.acked {
			if times[id] > 0 {
				rep.found++
			} else {
				rep.lost++
				rep.lostSample = appendSample(rep.lostSample, id)
			}
		}
		v.mu.Unlock()
	}
}

func appendSample(s []string, x string) []string {
	if len(s) < 5 {
		s = append(s, x)
	}
	return s
}

// describeSecond says how the second gateway on the same data_dir ended:
// its exit and the line of its log that says why.
func describeSecond(exitErr error, out string) string {
	if exitErr == nil {
		return "exited with status 0 (it should have been refused)"
	}
	why := strings.TrimSpace(out)
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "error=") {
			why = strings.TrimSpace(l)
		}
	}
	return fmt.Sprintf("%v: %s", exitErr, why)
}

func sleepUntil(ctx context.Context, t time.Time) error { return sleep(ctx, time.Until(t)) }

// ok reports whether the run found what it must: every message
// acknowledged and stored once, the second gateway refused.
func (rep *crashReport) ok() error {
	var errs []error
	if rep.connected != rep.visitors {
		errs = append(errs, fmt.Errorf("%d of %d visitors connected", rep.connected, rep.visitors))
	}
	if len(rep.kills) != rep.opts.crash {
		errs = append(errs, fmt.Errorf("%d of %d kills", len(rep.kills), rep.opts.crash))
	}
	if rep.lost > 0 || rep.duplicated > 0 {
		errs = append(errs, fmt.Errorf("%d acknowledged messages lost %v, %d duplicated %v", rep.lost, rep.lostSample, rep.duplicated, rep.dupSample))
	}
	if rep.unacked > 0 || rep.refused > 0 || rep.acked != rep.made {
		errs = append(errs, fmt.Errorf("%d of %d messages acknowledged; %d never, %d refused", rep.acked, rep.made, rep.unacked, rep.refused))
	}
	if rep.multiCustomer > 0 {
		errs = append(errs, fmt.Errorf("%d visitors were given another customer after a restart", rep.multiCustomer))
	}
	if want := fmt.Sprintf("data_dir is in use by process %d", rep.holder); rep.secondErr != nil || !strings.Contains(rep.second, want) {
		errs = append(errs, fmt.Errorf("second gateway on the same data_dir: %s %v; want refused with %q", rep.second, rep.secondErr, want))
	}
	return errors.Join(errs...)
}

func (rep *crashReport) print(w io.Writer) {
	o := rep.opts
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("Omnigate SIGKILL durability run, %s", rep.started.UTC().Format(time.RFC3339))
	p("  command:          loadgen -crash %d -conns %d -rate %d -duration %v", o.crash, o.conns, o.rate, o.duration)
	p("  visitors:         %d connected of %d; %d reconnects", rep.connected, rep.visitors, rep.reconnects)
	if rep.second != "" || rep.secondErr != nil {
		p("  second gateway on the same data_dir: %s", cmp.Or(rep.second, fmt.Sprint(rep.secondErr)))
	}
	for i, k := range rep.kills {
		p("  SIGKILL %d:        pid %d at %.1fs, after %d acks; ready again in %d ms", i+1, k.pid, k.at.Seconds(), k.ackedBy, k.downtime.Milliseconds())
	}
	if len(rep.closes) > 0 {
		p("  sockets ended:    %s", counts(rep.closes))
	}
	p("")
	p("Messages")
	p("  made:             %d (one client id each)", rep.made)
	p("  frames sent:      %d, of which %d resends after a reconnect", rep.sent, rep.resent)
	p("  acknowledged:     %d  (%d of them as duplicates: stored before a kill, acked after)", rep.acked, rep.dupAcks)
	p("  never acked:      %d; refused %d", rep.unacked, rep.refused)
	p("  found:            %d of the acknowledged on the timelines", rep.found)
	p("  lost:             %d  %s", rep.lost, strings.Join(rep.lostSample, " "))
	p("  duplicated:       %d  %s", rep.duplicated, strings.Join(rep.dupSample, " "))
	p("  stored, no ack:   %d", rep.unackedStored)
	p("  gateway stopped:  %v", map[bool]string{true: "cleanly on SIGTERM", false: "not cleanly (see the error)"}[rep.stoppedClean])
	if rep.gatewayLog != "" {
		p("")
		p("Gateway warnings and errors (its log at level warn, last lines):")
		p("%s", rep.gatewayLog)
	}
}
