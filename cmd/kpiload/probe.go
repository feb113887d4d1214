package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wallboard follows the wallboard frames of a supervisor's socket: the
// chat queue's offered count, with a signal whenever it moves.
type wallboard struct {
	conn  *websocket.Conn
	mu    sync.Mutex
	n     int64
	moved chan struct{} // closed and replaced when n moves
}

func watchWallboard(ctx context.Context, base string) (*wallboard, error) {
	u := "ws" + strings.TrimPrefix(base, "http") + "/inbox/ws?view=wallboard"
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"auth","token":"`+token+`"}`)); err != nil {
		conn.Close()
		return nil, err
	}
	w := &wallboard{conn: conn, moved: make(chan struct{})}
	go w.read()
	return w, nil
}

func (w *wallboard) read() {
	for {
		_, b, err := w.conn.ReadMessage()
		if err != nil {
			return
		}
		var f struct {
			Type      string `json:"type"`
			Wallboard struct {
				Queues []struct{ Offered int64 } `json:"queues"`
			} `json:"wallboard"`
		}
		if json.Unmarshal(b, &f) != nil || f.Type != "wallboard" {
			continue
		}
		var n int64
		for _, q := range f.Wallboard.Queues {
			n += q.Offered
		}
		w.mu.Lock()
		if n != w.n {
			w.n = n
			close(w.moved)
			w.moved = make(chan struct{})
		}
		w.mu.Unlock()
	}
}

func (w *wallboard) state() (int64, chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, w.moved
}

func (w *wallboard) close() { _ = w.conn.Close() }

// probe waits until loadgen's warm-up is over (every visitor's
// conversation open, so the offered count holds still), then once a
// second opens a new visitor and times its first message from send to
// the wallboard frame counting it.
// steady, when set, is called once the probing starts.
func probe(ctx context.Context, base string, w *wallboard, o options, exited <-chan struct{}, steady func()) (lat, fromAck []time.Duration) {
	start := time.Now()
	// loadgen opens its sockets (about 1,000/s here), then warms up.
	settle := o.warmup + time.Duration(o.conns/1000+3)*time.Second
	for {
		select {
		case <-ctx.Done():
			return lat, fromAck
		case <-exited:
			return lat, fromAck
		case <-time.After(time.Second):
		}
		if time.Since(start) < settle || time.Since(start) > settle+o.duration-2*time.Second {
			continue
		}
		if steady != nil {
			steady()
			steady = nil
		}
		if d, a, err := probeOnce(ctx, base, w); err == nil {
			lat, fromAck = append(lat, d), append(fromAck, a)
		} else {
			fmt.Println("  probe:", err)
		}
	}
}

// probeOnce opens a visitor and sends its first message. It returns the
// time from the send to the wallboard frame counting it, and from the
// visitor's ack (the message is in the store) to that frame: the first
// includes the gateway's own lag under load, the second is the
// wallboard's (zero when the frame came first).
func probeOnce(ctx context.Context, base string, w *wallboard) (sendToFrame, ackToFrame time.Duration, err error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	u := "ws" + strings.TrimPrefix(base, "http") + "/channels/webchat/ws?" +
		url.Values{"site": {site}, "visitor": {"probe" + hex.EncodeToString(b[:])}}.Encode()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, u, map[string][]string{"Origin": {origin}})
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","after":0,"lang":"en"}`)); err != nil {
		return 0, 0, err
	}
	if _, _, err := conn.ReadMessage(); err != nil { // welcome
		return 0, 0, err
	}
	n, moved := w.state()
	sent := time.Now()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"message","client_id":"p1","text":"probe"}`)); err != nil {
		return 0, 0, err
	}
	acked := make(chan time.Time, 1)
	go func() {
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var f struct{ Type string }
			if json.Unmarshal(b, &f) == nil && f.Type == "ack" {
				acked <- time.Now()
				return
			}
		}
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case <-moved:
		case <-deadline:
			return 0, 0, fmt.Errorf("the wallboard did not count the probe within 30s")
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
		var now int64
		now, moved = w.state()
		if now <= n {
			continue
		}
		framed := time.Now()
		select {
		case at := <-acked:
			return framed.Sub(sent), max(framed.Sub(at), 0), nil
		case <-time.After(5 * time.Second):
			return framed.Sub(sent), 0, nil // the ack was lost; the frame came
		}
	}
}
