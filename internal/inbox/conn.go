package inbox

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"

	"github.com/omnigate/omnigate/channels/webchat"
	"github.com/omnigate/omnigate/channels/wsconn"
	"github.com/omnigate/omnigate/internal/auth"
)

// conn is one rep socket. melody gives it one reader goroutine (started by
// wsdetach.Serve: connected, receive and disconnected run on it, in order)
// and one writer goroutine; the hub's fan-out and the typing pub/sub hand
// it frames through write, which never blocks.
//
// p, author, name and masked are written once, before join, and read by
// the hub under Hub.mu after it; watching is guarded by Hub.mu. Fields
// under "reader only" are touched by the reader goroutine alone.
type conn struct {
	h   *Hub
	s   *melody.Session
	log *slog.Logger // set before the upgrade; read by every goroutine

	// From ServeHTTP: the wallboard's socket, which sets no presence
	// (wallboard.go).
	boardOnly bool

	// From ServeHTTP: a token given in Sec-WebSocket-Protocol, checked.
	header    bool
	headerP   auth.Principal
	headerErr error

	p        auth.Principal
	author   string
	name     string
	masked   bool
	watching string

	queued  atomic.Int64 // frames handed to melody and not yet written
	ready   atomic.Bool  // authenticated and joined
	closing atomic.Bool  // a close is under way: apply and send no more
	forced  atomic.Bool  // closeNow ran

	// reader only
	authTimer *time.Timer
	typingTo  string // customer the rep last said "on" to; "" when not typing
	tokens    float64
	refilled  time.Time
}

func (c *conn) connected(s *melody.Session) {
	c.s = s
	c.tokens, c.refilled = float64(c.burst()), time.Now()
	if c.header {
		c.authenticate(c.headerP, c.headerErr)
		return
	}
	c.authTimer = time.AfterFunc(c.h.cfg.AuthTimeout, func() {
		if !c.ready.Load() {
			c.fail(CloseUnauthorized, ErrCodeUnauthorized, "no auth frame")
		}
	})
}

// authenticate admits a principal (or refuses it) and sends ready.
func (c *conn) authenticate(p auth.Principal, err error) {
	switch {
	case err != nil:
		c.log.Info("inbox: socket refused", "reason", "bad or missing token")
		c.fail(CloseUnauthorized, ErrCodeUnauthorized, "unknown or missing token")
		return
	case !p.IsRep() && p.Role != auth.RoleAdmin:
		c.fail(CloseForbidden, ErrCodeForbidden, "role "+string(p.Role)+" may not use the inbox")
		return
	}
	c.p, c.author, c.masked, c.name = p, p.Author(), p.SeesPhonesMasked(), p.ID
	if r, ok := c.h.auth.Rep(p.ID); ok && p.IsRep() && r.Name != "" {
		c.name = r.Name
	}
	ready := newFrame(readyFrame{Type: frameReady, Rep: RepInfo{ID: p.ID, Name: c.name, Role: string(p.Role)},
		Masked: c.masked, MaxMessageBytes: c.h.cfg.MaxMessageBytes, TypingTTLMS: TypingTTL,
		Views: allowedViews(c.supervises())})
	c.ready.Store(true)
	c.h.join(c, ready)
}

func (c *conn) disconnected() {
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	if c.typingTo != "" {
		c.publishTyping(c.typingTo, false)
		c.typingTo = ""
	}
	if c.ready.Load() {
		c.h.leave(c)
	}
}

// receive applies one frame, in the reader goroutine.
func (c *conn) receive(data []byte) {
	if c.closing.Load() {
		return
	}
	if !c.allow(time.Now()) {
		c.log.Info("inbox: rep over rate limit", "rep", c.p.ID)
		c.fail(CloseTooManyRequests, "", "")
		return
	}
	f, err := parseFrame(data)
	if !c.ready.Load() {
		if err != nil || f.Type != frameAuth {
			c.fail(CloseUnauthorized, ErrCodeUnauthorized, "the first frame must be auth")
			return
		}
		c.authTimer.Stop()
		p, aerr := c.h.auth.Authenticate(f.Token)
		c.authenticate(p, aerr)
		return
	}
	if err != nil {
		c.fail(CloseBadRequest, ErrCodeBadRequest, err.Error())
		return
	}
	switch f.Type {
	case frameAuth:
		c.fail(CloseBadRequest, ErrCodeBadRequest, "already authenticated")
	case frameWatch:
		if c.typingTo != "" && c.typingTo != f.CustomerID {
			c.publishTyping(c.typingTo, false)
			c.typingTo = ""
		}
		c.h.watch(c, f.CustomerID)
	case frameView:
		views := make([]view, 0, len(f.Views))
		for _, name := range f.Views {
			v, _ := parseView(name) // parseFrame checked the names
			if v != viewUnassigned && !c.supervises() {
				c.fail(CloseForbidden, ErrCodeForbidden, "role "+string(c.p.Role)+" may not follow the "+name+" view")
				return
			}
			views = append(views, v)
		}
		c.h.follow(c, views)
	case frameTyping:
		c.typing(f.CustomerID, f.On)
	case framePing:
		c.write(newFrame(pongFrame{Type: framePong}))
	}
}

// typing publishes the rep's typing to the customer's visitor sockets and
// to colleagues watching the customer. Admin keys are not people a
// customer talks to; their typing goes nowhere.
func (c *conn) typing(customerID string, on bool) {
	if c.h.typing == nil || !c.p.IsRep() {
		return
	}
	switch {
	case on && c.typingTo != customerID:
		if c.typingTo != "" {
			c.publishTyping(c.typingTo, false)
		}
		c.typingTo = customerID
	case !on && c.typingTo == customerID:
		c.typingTo = ""
	}
	c.publishTyping(customerID, on)
}

func (c *conn) publishTyping(customerID string, on bool) {
	if c.h.typing == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := c.h.typing.Publish(ctx, webchat.TypingSignal{CustomerID: customerID, From: c.author, RepName: c.name, On: on})
	if err != nil {
		c.log.Debug("inbox: typing", "err", err)
	}
}

// supervises reports whether the socket may see every conversation, as
// the API lets supervisors and admins act on any (api.workable).
func (c *conn) supervises() bool {
	return c.p.Role == auth.RoleSupervisor || c.p.Role == auth.RoleAdmin
}

// burst is how many frames a socket may send at once.
func (c *conn) burst() int { return max(20, c.h.cfg.RatePerMinute/10) }

// allow is a token bucket: RatePerMinute, bursts of burst().
func (c *conn) allow(now time.Time) bool {
	c.tokens += now.Sub(c.refilled).Minutes() * float64(c.h.cfg.RatePerMinute)
	c.tokens = min(c.tokens, float64(c.burst()))
	c.refilled = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// write queues a frame without waiting, masked if the socket sees phone
// numbers masked: every frame but error frames goes out here, so none is
// forgotten. If melody's queue is full, its error handler (failed) closes
// the socket as slow.
func (c *conn) write(f *outFrame) {
	if c.closing.Load() {
		return
	}
	c.queue(f.bytes(c.masked))
}

// queue hands b to melody, counting it until HandleSentMessage sees it
// written.
func (c *conn) queue(b []byte) {
	n, hwm := c.queued.Add(1), &c.h.maxDepth[depthIndex(c.supervises())]
	for m := hwm.Load(); n > m; m = hwm.Load() {
		if hwm.CompareAndSwap(m, n) {
			break
		}
	}
	if c.s.Write(b) != nil {
		c.queued.Add(-1)
	}
}

// fail sends an error frame (when errCode is set) and then closes with
// code, behind the frames already queued. Only the first close counts.
func (c *conn) fail(code int, errCode, msg string) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	c.h.countClose(code)
	if errCode != "" {
		c.queue(newFrame(errorFrame{Type: frameError, Code: errCode, Message: msg}).bytes(c.masked))
	}
	_ = c.s.CloseWithMsg(melody.FormatCloseMessage(code, CloseName(code)))
}

// closeNow closes without waiting for the queue (wsconn.CloseNow, giving
// a stuck writer WriteTimeout).
func (c *conn) closeNow(code int) {
	if !c.closing.Swap(true) {
		c.h.countClose(code)
	}
	if c.forced.CompareAndSwap(false, true) {
		wsconn.CloseNow(c.s, code, CloseName(code), c.h.cfg.WriteTimeout)
	}
}

// failed is melody's error handler: read and write errors, and a full
// queue.
func (c *conn) failed(err error) {
	switch {
	case errors.Is(err, melody.ErrMessageBufferFull):
		c.log.Info("inbox: slow socket closed", "reason", "queue full")
		c.closeNow(CloseSlow)
	case errors.Is(err, websocket.ErrReadLimit):
		c.closing.Store(true)
		c.log.Info("inbox: frame over max_message_bytes refused")
	case isCloseOK(err):
	default:
		c.log.Debug("inbox: socket", "err", err)
	}
}

// isCloseOK reports whether err is the peer closing or going away, not
// worth a log line.
func isCloseOK(err error) bool {
	return websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway,
		websocket.CloseNoStatusReceived) || errors.Is(err, melody.ErrSessionClosed) || errors.Is(err, melody.ErrWriteClosed)
}
