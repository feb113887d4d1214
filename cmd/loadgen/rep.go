package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// repSocket is one supervisor's inbox socket following the events view,
// so the gateway pushes every appended event to it; it times each visitor message from the send time the
// message carries ("lg <nanoseconds since t0>"). Like the inbox page, it
// reconnects when the gateway closes it with a reconnect code (4002 slow,
// for one); messages appended while it was away are counted as missing,
// not read back, since their latency to a socket is what is measured.
type repSocket struct {
	r     *run
	url   string
	token string
	done  chan struct{}

	received atomic.Int64 // measured messages seen

	mu         sync.Mutex
	conn       *websocket.Conn
	lat        []time.Duration
	sentAt     []time.Duration // offset from t0 of each lat's send
	reconnects map[string]int  // close reasons the socket came back from
	err        error           // why it ended for good
}

// dialRep opens /inbox/ws, signs in and starts reading.
func dialRep(ctx context.Context, r *run, token string) (*repSocket, error) {
	rs := &repSocket{r: r, token: token, done: make(chan struct{}), reconnects: map[string]int{},
		url: (&url.URL{Scheme: "ws", Host: r.base.Host, Path: "/inbox/ws"}).String()}
	conn, err := rs.dial(ctx)
	if err != nil {
		return nil, err
	}
	rs.conn = conn
	go rs.run(ctx, conn)
	return rs, nil
}

// dial opens the socket, sends the auth frame and waits for ready. It
// sends no Origin header: not a browser (docs/inbox-protocol.md).
func (rs *repSocket) dial(ctx context.Context) (*websocket.Conn, error) {
	d := &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 64 << 10}
	conn, _, err := d.DialContext(ctx, rs.url, nil)
	if err != nil {
		return nil, fmt.Errorf("rep socket: %w", err)
	}
	auth, _ := json.Marshal(map[string]string{"type": "auth", "token": rs.token})
	for _, f := range [][]byte{auth, []byte(`{"type":"view","views":["events"]}`)} {
		if err := conn.WriteMessage(websocket.TextMessage, f); err != nil {
			conn.Close()
			return nil, fmt.Errorf("rep socket: %w", err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := conn.ReadMessage()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("rep socket: %w", err)
	}
	var f struct{ Type string }
	if jsonUnmarshal(b, &f) != nil || f.Type != "ready" {
		conn.Close()
		return nil, fmt.Errorf("rep socket: first frame %.120s, want ready", b)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, nil
}

// run reads until the socket ends, then reconnects if the close code says
// so (docs/inbox-protocol.md: 4000-4499 and anything outside 4500-4999).
func (rs *repSocket) run(ctx context.Context, conn *websocket.Conn) {
	defer close(rs.done)
	for {
		err := rs.read(conn)
		if rs.r.closing.Load() || ctx.Err() != nil {
			return
		}
		why := reason(err) + " while " + phases[rs.r.phase.Load()]
		var ce *websocket.CloseError
		if errors.As(err, &ce) && (ce.Code >= 4500 && ce.Code <= 4999 || ce.Code == websocket.CloseMessageTooBig) {
			rs.fail(fmt.Errorf("rep socket ended: %s", why))
			return
		}
		rs.mu.Lock()
		rs.reconnects[why]++
		rs.mu.Unlock()
		for {
			if conn, err = rs.dial(ctx); err == nil {
				break
			}
			if sleep(ctx, 200*time.Millisecond) != nil || rs.r.closing.Load() {
				return
			}
		}
		rs.mu.Lock()
		rs.conn = conn
		rs.mu.Unlock()
		if rs.r.closing.Load() { // close ran while we dialled
			conn.Close()
			return
		}
	}
}

// read consumes frames until the socket fails.
func (rs *repSocket) read(conn *websocket.Conn) error {
	for {
		_, b, err := conn.ReadMessage()
		now := time.Since(rs.r.t0)
		if err != nil {
			return err
		}
		var f struct {
			Type  string `json:"type"`
			Event struct {
				Kind    string `json:"kind"`
				Payload struct {
					Text string `json:"text"`
				} `json:"payload"`
			} `json:"event"`
		}
		if jsonUnmarshal(b, &f) != nil || f.Type != "event" || f.Event.Kind != "message_in" {
			continue
		}
		v, ok := strings.CutPrefix(f.Event.Payload.Text, "lg ")
		if !ok {
			continue
		}
		sent, err := strconv.ParseInt(v, 10, 64)
		if err != nil || sent < rs.r.measureFrom.Load() {
			continue
		}
		rs.mu.Lock()
		rs.lat = append(rs.lat, now-time.Duration(sent))
		rs.sentAt = append(rs.sentAt, time.Duration(sent))
		rs.mu.Unlock()
		rs.received.Add(1)
	}
}

func (rs *repSocket) fail(err error) {
	rs.mu.Lock()
	rs.err = err
	rs.mu.Unlock()
}

func (rs *repSocket) latencies() (lat, sentAt []time.Duration) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.lat, rs.sentAt
}

// state is why the socket ended for good, if it did, and what it came
// back from.
func (rs *repSocket) state() (map[string]int, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.reconnects, rs.err
}

func (rs *repSocket) close() {
	rs.r.closing.Store(true)
	rs.mu.Lock()
	conn := rs.conn
	rs.mu.Unlock()
	_ = conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	conn.Close()
	<-rs.done
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
