package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The inbox feed run (-inbox-reps N): N rep sockets, role rep, each
// following the unassigned view as the bundled inbox does, while the
// visitors open conversations. It counts the rep sockets the gateway cut
// off (any close while the run is on), and times each conversation's
// first appearance on each socket (in a conversations frame or an event
// frame) from its creation or event time on the gateway's clock (the same
// machine), so the figure includes the list views' coalescing interval.
type inboxReps struct {
	socks  []*inboxRep
	frames atomic.Int64
	bytes  atomic.Int64

	mu      sync.Mutex
	cutoffs map[string]int
	lat     []time.Duration
}

type inboxRep struct {
	conn *websocket.Conn
	seen map[string]bool // conversation ids; its reader's only
	done chan struct{}
}

// repToken is the token of the i-th generated rep in the started gateway.
func repToken(base string, i int) string { return fmt.Sprintf("%s-r%03d", base, i) }

// repsYAML lists the n generated reps for the gateway's configuration.
func repsYAML(base string, n int) string {
	s := ""
	for i := range n {
		s += fmt.Sprintf("    - {id: r%03d, name: Rep %d, role: rep, token: %s}\n", i, i, repToken(base, i))
	}
	return s
}

// dialInboxReps opens the n rep sockets and has each follow the
// unassigned view.
func dialInboxReps(ctx context.Context, r *run, token string, n int) (*inboxReps, error) {
	ir := &inboxReps{cutoffs: map[string]int{}}
	u := (&url.URL{Scheme: "ws", Host: r.base.Host, Path: "/inbox/ws"}).String()
	for i := range n {
		conn, _, err := (&websocket.Dialer{HandshakeTimeout: 10 * time.Second}).DialContext(ctx, u, nil)
		if err != nil {
			ir.close()
			return nil, fmt.Errorf("inbox rep %d: %w", i, err)
		}
		rep := &inboxRep{conn: conn, seen: map[string]bool{}, done: make(chan struct{})}
		ir.socks = append(ir.socks, rep)
		for _, f := range []string{
			fmt.Sprintf(`{"type":"auth","token":%q}`, repToken(token, i)),
			`{"type":"view","views":["unassigned"]}`,
		} {
			if err := conn.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
				close(rep.done)
				ir.close()
				return nil, fmt.Errorf("inbox rep %d: %w", i, err)
			}
		}
		go ir.read(r, rep)
	}
	return ir, nil
}

// listFrame is the part of a server frame the run reads.
type listFrame struct {
	Type          string `json:"type"`
	Conversations []struct {
		ID        string    `json:"id"`
		CreatedAt time.Time `json:"created_at"`
	} `json:"conversations"`
	Event struct {
		ConversationID string    `json:"conversation_id"`
		Time           time.Time `json:"time"`
	} `json:"event"`
}

func (ir *inboxReps) read(r *run, rep *inboxRep) {
	defer close(rep.done)
	for {
		_, rd, err := rep.conn.NextReader()
		if err == nil {
			var b []byte
			b, err = io.ReadAll(rd)
			if err == nil {
				ir.frame(rep, b)
				continue
			}
		}
		if !r.closing.Load() {
			ir.mu.Lock()
			ir.cutoffs[reason(err)+" while "+phases[r.phase.Load()]]++
			ir.mu.Unlock()
		}
		return
	}
}

func (ir *inboxReps) frame(rep *inboxRep, b []byte) {
	now := time.Now()
	ir.frames.Add(1)
	ir.bytes.Add(int64(len(b)))
	var f listFrame
	if json.Unmarshal(b, &f) != nil {
		return
	}
	var lat []time.Duration
	first := func(id string, at time.Time) {
		if id != "" && !rep.seen[id] {
			rep.seen[id] = true
			lat = append(lat, now.Sub(at))
		}
	}
	switch f.Type {
	case "conversations":
		for _, c := range f.Conversations {
			first(c.ID, c.CreatedAt)
		}
	case "event":
		first(f.Event.ConversationID, f.Event.Time)
	}
	if len(lat) > 0 {
		ir.mu.Lock()
		ir.lat = append(ir.lat, lat...)
		ir.mu.Unlock()
	}
}

// quiesce waits until no frame has reached the rep sockets for quiet (the
// list views flush every 250ms), or for at most limit.
func (ir *inboxReps) quiesce(ctx context.Context, quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for last := int64(-1); ctx.Err() == nil && time.Now().Before(deadline); {
		n := ir.frames.Load()
		if n == last {
			return
		}
		last = n
		_ = sleep(ctx, quiet)
	}
}

// close ends every rep socket with a normal close and waits for its
// reader.
func (ir *inboxReps) close() {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	for _, rep := range ir.socks {
		_ = rep.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		rep.conn.Close()
		<-rep.done
	}
}

// result is what the run measured, for the report.
func (ir *inboxReps) result() inboxResult {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	seen := 0
	for _, rep := range ir.socks {
		seen += len(rep.seen)
	}
	return inboxResult{reps: len(ir.socks), frames: ir.frames.Load(), bytes: ir.bytes.Load(),
		cutoffs: ir.cutoffs, latency: ir.lat, seen: seen}
}

type inboxResult struct {
	reps          int
	frames, bytes int64
	seen          int // conversations seen, summed over sockets
	cutoffs       map[string]int
	latency       []time.Duration
	queueDepthMax float64 // the gateway's omnigate_inbox_queue_depth_max{role="rep"}; -1 unknown
}

func (ir inboxResult) print(p func(string, ...any)) {
	p("")
	p("Inbox feed (%d rep sockets, role rep, following the unassigned view)", ir.reps)
	p("  cut off:          %s", map[bool]string{true: "none", false: counts(ir.cutoffs)}[len(ir.cutoffs) == 0])
	p("  frames received:  %d (%.1f MiB), conversations seen %d in all (%.0f per socket)", ir.frames,
		float64(ir.bytes)/(1<<20), ir.seen, float64(ir.seen)/float64(max(ir.reps, 1)))
	p("  queue depth max:  %.0f frames on one rep socket (the gateway's high-water mark; closed as slow at inbox.message_buffer_size, 1024)", ir.queueDepthMax)
	p("  open → socket:    p50 %s, p99 %s, max %s (first sight of a conversation on a socket; includes list_flush_interval)",
		pct(ir.latency, 50), pct(ir.latency, 99), pct(ir.latency, 100))
}
