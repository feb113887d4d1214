package webchat

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"

	"github.com/omnigate/omnigate/channels/wsconn"
	"github.com/omnigate/omnigate/sessions"
	"github.com/omnigate/omnigate/sessions/redact"
)

// conn is one visitor socket. melody gives it one reader goroutine
// (started by wsdetach.Serve; it calls connected, receive and disconnected
// in that order) and one writer goroutine; everything else (timeline events,
// typing and availability pushes) hands frames to the writer through
// write.
//
// Timeline events come two ways (see follow): live ones straight from the
// node's Fanout dispatch goroutine (onEvent), and, only while the socket
// is behind (after hello, a gap, a feed cut off as slow, a full buffer or
// a rep name to look up), from a short-lived catch-up goroutine
// (catchUp). The fields under fmu say which of the two may write events.
//
// Fields under "reader only" are touched by the reader goroutine alone.
// customerID is written once, before ready is set, and read by goroutines
// started after that.
type conn struct {
	a  *Adapter
	st *site
	s  *melody.Session
	// addr is the client's address as the new-visitor limit counts it.
	addr string
	// urlVisitor and urlUser are credentials from the socket URL, the
	// deprecated form; hello's take their place.
	urlVisitor string
	urlUser    signedUser
	userAgent  string // the upgrade request's, for visitorHints
	log        *slog.Logger

	ctx    context.Context // ends when the socket does
	cancel context.CancelFunc

	// reader only
	visitor    string
	limited    bool // holds a rate-limit bucket reference
	helloTimer *time.Timer
	typingOn   bool
	untype     func()
	seed       sessions.Customer // for the customer made by the first message

	// customerID is written by the reader, in hello or (for a new visitor)
	// by the first message, before the goroutines that read it start;
	// "" until the visitor has a customer.
	customerID string
	verified   bool
	ready      atomic.Bool // welcome sent
	closing    atomic.Bool // a close is under way: apply no more frames
	forced     atomic.Bool // the hard close (closeNow) ran

	// Flow control: frames handed to melody and not yet written. The
	// follower waits below high so replays never overflow melody's buffer;
	// the reserve above it is for acks, typing and availability.
	inflight atomic.Int64
	high     int64
	sent     chan struct{}

	unwatch func() // ends the Fanout callback; set by hello

	fmu sync.Mutex
	// last is the sequence of the last event handed to the writer (or
	// skipped as not visible).
	last uint64
	// catching: a catchUp goroutine runs and alone writes events; onEvent
	// only queues them (pending) and notes how far the feed got (seen).
	catching bool
	// gap: the catchUp must read the timeline to its end (hello, events
	// missed).
	gap     bool
	seen    uint64
	pending []sessions.Event
}

// maxPending bounds the live events queued for a running catch-up; past
// it, the catch-up reads them from the timeline instead.
const maxPending = 8

var visitorRe = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

var errSlowClient = errors.New("webchat: client too slow")

// opTimeout bounds the store calls of one frame.
const opTimeout = 10 * time.Second

func (c *conn) connected(s *melody.Session) {
	c.s = s
	// Everything needed from the upgrade request was read in ServeHTTP;
	// melody would keep it (URL, headers: about 1 KiB) for the socket's
	// life.
	s.Request = nil
	c.ctx, c.cancel = context.WithCancel(c.a.ctx)
	size := int64(c.a.cfg.MessageBufferSize)
	c.high = size - max(1, size/4)
	c.sent = make(chan struct{}, 1)
	c.log = c.a.log.With("site", c.st.ID)
	c.helloTimer = time.AfterFunc(c.a.cfg.HelloTimeout, func() {
		if !c.ready.Load() {
			c.fail(CloseBadRequest, ErrCodeBadRequest, "no hello", "")
		}
	})
}

// credentials takes the visitor id and signed user from hello or, in the
// deprecated form, the socket URL; not from both.
func (c *conn) credentials(f clientFrame) (string, signedUser, error) {
	inHello := f.Visitor != "" || f.UserID != "" || f.UserHash != "" || f.UserExpires != 0
	inURL := c.urlVisitor != "" || c.urlUser != (signedUser{})
	if inHello && inURL {
		return "", signedUser{}, errors.New("credentials both in the URL and in hello")
	}
	if inURL {
		return c.urlVisitor, c.urlUser, nil
	}
	return f.Visitor, signedUser{id: f.UserID, hash: f.UserHash, expires: f.UserExpires}, nil
}

func (c *conn) disconnected() {
	c.cancel()
	if c.unwatch != nil {
		c.unwatch()
		c.a.following(c.customerID, -1)
	}
	if c.helloTimer != nil {
		c.helloTimer.Stop()
	}
	if c.untype != nil {
		c.untype()
	}
	if c.typingOn {
		c.publishTyping(false)
	}
	if c.limited {
		c.st.lim.release(c.visitor, c.a.now())
	}
}

// receive applies one frame, in the reader goroutine.
func (c *conn) receive(data []byte) {
	if c.closing.Load() {
		return
	}
	// Before hello there is no visitor to charge; hello charges itself,
	// and nothing else is applied before it.
	if c.ready.Load() && !c.st.lim.allow(c.visitor, c.a.now()) {
		c.log.Info("webchat: visitor over rate limit")
		c.fail(CloseTooManyRequests, ErrCodeTooManyRequests, "too many frames", "")
		return
	}
	f, err := parseFrame(data)
	var fe *fieldError
	switch {
	case errors.As(err, &fe) && f.Type != frameHello:
		c.write(marshal(errorFrame{Type: frameError, Code: ErrCodeInvalid, Message: fe.msg, ClientID: f.ClientID}))
		return
	case err != nil:
		c.fail(CloseBadRequest, ErrCodeBadRequest, err.Error(), "")
		return
	case f.Type == frameHello && c.ready.Load():
		c.fail(CloseBadRequest, ErrCodeBadRequest, "hello sent twice", "")
		return
	case f.Type != frameHello && !c.ready.Load():
		c.fail(CloseBadRequest, ErrCodeBadRequest, "the first frame must be hello", "")
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, opTimeout)
	defer cancel()
	switch f.Type {
	case frameHello:
		c.hello(ctx, f)
	case frameMessage:
		c.message(ctx, f)
	case frameTyping:
		c.typingOn = f.On
		c.publishTyping(f.On)
	case frameOffline:
		c.offline(ctx, f)
	}
}

// hello checks the credentials, finds the customer (if the visitor has
// one yet), sends welcome and starts following the timeline from where
// the client left off.
func (c *conn) hello(ctx context.Context, f clientFrame) {
	c.helloTimer.Stop()
	visitor, user, err := c.credentials(f)
	if err != nil {
		c.fail(CloseBadRequest, ErrCodeBadRequest, err.Error(), "")
		return
	}
	if !visitorRe.MatchString(visitor) {
		c.fail(CloseBadRequest, ErrCodeBadRequest, "visitor must be 16 to 64 letters, digits, '-' or '_'", "")
		return
	}
	c.visitor = visitor
	c.log = c.log.With("visitor", redact.OpenID(visitor))
	now := c.a.now()
	c.st.lim.acquire(visitor, now)
	c.limited = true
	if !c.st.lim.allow(visitor, now) {
		c.log.Info("webchat: visitor over rate limit")
		c.fail(CloseTooManyRequests, ErrCodeTooManyRequests, "too many frames", "")
		return
	}
	if user != (signedUser{}) {
		if why := verifyUser(c.st.Site, user, now); why != "" {
			// The user id may be an email: log that it failed, not what.
			c.log.Warn("webchat: identity refused", "reason", why)
			c.fail(CloseIdentityRefused, ErrCodeIdentityRefused, "user_hash does not verify user_id", "")
			return
		}
		c.verified = true
	}
	hints := visitorHints{timeZone: f.TimeZone, page: f.Page, userAgent: c.userAgent}
	c.seed = hints.seed(f.Lang)
	var customerID string
	if c.verified {
		var r resolution
		r, err = resolveSigned(ctx, c.a.store, c.st.ID, visitor, user.id, c.seed)
		if r.merged != "" {
			c.log.Info("webchat: visitor merged into verified site user's customer", "from", r.merged, "into", r.customerID)
		}
		customerID = r.customerID
	} else {
		customerID, err = resolveUnsigned(ctx, c.a.store, c.st.ID, visitor, nil)
	}
	if !c.resolved(err, "") {
		return
	}
	var head uint64
	if customerID != "" {
		if head, err = c.a.store.LastSeq(ctx, customerID); err != nil {
			c.storeFailed(err, "")
			return
		}
	}
	after, reset := f.After, false
	if (f.CustomerID != "" && f.CustomerID != customerID) || after > head {
		after, reset = 0, true
	}
	if after == 0 && head > uint64(c.a.cfg.HistoryEvents) {
		after = head - uint64(c.a.cfg.HistoryEvents)
	}
	c.customerID = customerID
	if customerID != "" && hints.page != "" {
		c.notePage(ctx, hints.page)
	}
	c.st.availMu.Lock()
	c.ready.Store(true)
	c.write(marshal(welcomeFrame{Type: frameWelcome, CustomerID: customerID, LastSeq: head, After: after,
		Reset: reset, Verified: c.verified, MaxMessageBytes: c.st.MaxMessageBytes}))
	c.write(marshal(availabilityFrame{Type: frameAvailability, Agents: c.st.agents}))
	c.st.availMu.Unlock()
	if customerID != "" {
		c.start(after)
	}
}

// resolved answers a failed resolution and reports whether err was nil.
func (c *conn) resolved(err error, clientID string) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, errSignedOnly):
		c.log.Warn("webchat: identity refused", "reason", "unsigned socket for a visitor id bound to signed-in users")
		c.fail(CloseIdentityRefused, ErrCodeIdentityRefused, "this visitor id belongs to signed-in users: sign in, or use a new visitor id", "")
	case errors.Is(err, sessions.ErrInvalid):
		// A signed user id the store can't keep (too long, a control
		// character): the site's bug, and retrying won't fix it.
		c.fail(CloseBadRequest, ErrCodeBadRequest, "identity is malformed", "")
	default:
		c.storeFailed(err, clientID)
	}
	return false
}

// start follows the customer's timeline after the given sequence and
// relays reps' typing to it.
func (c *conn) start(after uint64) {
	c.untype = c.a.typing.Subscribe(c.customerID, c.repTyping)
	c.follow(after)
}

// ensureCustomer makes the customer of a visitor who has none yet, on its
// first message or form, and reports whether there is one now. Hellos
// alone store nothing; a new customer costs a token of the client
// address's new-visitor limit.
func (c *conn) ensureCustomer(ctx context.Context, clientID string) bool {
	if c.customerID != "" {
		return true
	}
	// Another tab of the visitor may have made it since hello.
	customerID, err := resolveUnsigned(ctx, c.a.store, c.st.ID, c.visitor, nil)
	if err == nil && customerID == "" {
		if !c.st.newVisitors.take(c.addr, c.a.now()) {
			c.log.Info("webchat: new visitors over the client address's rate limit")
			c.fail(CloseTooManyRequests, ErrCodeTooManyRequests, "too many new visitors from this address", "")
			return false
		}
		customerID, err = resolveUnsigned(ctx, c.a.store, c.st.ID, c.visitor, &c.seed)
	}
	if !c.resolved(err, clientID) {
		return false
	}
	c.customerID = customerID
	c.start(0)
	return true
}

// follow sends the timeline after the given sequence, then every new
// event, as the visitor may see them, exactly once and in order, until the
// socket ends. It watches before reading the timeline, so nothing appended
// in between is missed; the timeline, not the feed, is the source of
// truth.
func (c *conn) follow(after uint64) {
	c.fmu.Lock()
	c.last, c.gap, c.catching = after, true, true
	c.fmu.Unlock()
	unwatch, err := c.a.fan.WatchFunc(c.customerID, c.onEvent)
	if err != nil {
		c.followFailed(err)
		return
	}
	c.unwatch = unwatch
	c.a.following(c.customerID, 1)
	go c.catchUp()
}

// onEvent is the Fanout's callback, on its dispatch goroutine: it must not
// block. The next event in order goes straight to the writer; anything
// else (a gap, a full buffer, a rep name to look up, a catch-up already
// running) is left to catchUp.
func (c *conn) onEvent(ev sessions.Event, err error) {
	if err != nil {
		if errors.Is(err, sessions.ErrSlow) {
			c.fmu.Lock()
			c.gap = true
			c.pending = nil
			c.startCatchUpLocked()
			c.fmu.Unlock()
			return
		}
		go c.followFailed(err)
		return
	}
	c.fmu.Lock()
	defer c.fmu.Unlock()
	switch {
	case c.closing.Load() || ev.Seq <= c.last:
		return
	case c.catching:
		c.seen = max(c.seen, ev.Seq)
		if len(c.pending) < maxPending && !c.gap {
			c.pending = append(c.pending, ev)
		}
		return
	case ev.Seq > c.last+1 || c.inflight.Load() >= c.high:
		c.seen = ev.Seq
		c.startCatchUpLocked()
		if ev.Seq == c.last+1 {
			c.pending = append(c.pending, ev)
		}
		return
	}
	needsLookup := false
	f, ok := visibleEvent(ev, func(string) string { needsLookup = true; return "" })
	if needsLookup {
		c.seen = ev.Seq
		c.pending = append(c.pending, ev)
		c.startCatchUpLocked()
		return
	}
	if ok {
		c.write(marshal(f))
	}
	c.last = ev.Seq
}

// startCatchUpLocked starts catchUp unless it runs. Caller holds fmu.
func (c *conn) startCatchUpLocked() {
	if !c.catching && c.ctx.Err() == nil {
		c.catching = true
		go c.catchUp()
	}
}

// catchUp writes, waiting for room (writeFlow), the queued live events
// that come next and, when events were missed, the timeline after the
// last one sent; then it hands the live events back to onEvent.
func (c *conn) catchUp() {
	repName := func(id string) string { return c.a.rep(c.ctx, id) }
	send := func(ev sessions.Event) error {
		if f, ok := visibleEvent(ev, repName); ok {
			if err := c.writeFlow(marshal(f)); err != nil {
				return err
			}
		}
		c.fmu.Lock()
		c.last = ev.Seq
		c.fmu.Unlock()
		return nil
	}
	for {
		c.fmu.Lock()
		for len(c.pending) > 0 && c.pending[0].Seq <= c.last {
			c.pending = c.pending[1:]
		}
		if len(c.pending) == 0 {
			c.pending = nil // let go of the backing array
		}
		switch {
		case !c.gap && len(c.pending) > 0 && c.pending[0].Seq == c.last+1:
			ev := c.pending[0]
			c.pending = c.pending[1:]
			c.fmu.Unlock()
			if err := send(ev); err != nil {
				c.followFailed(err)
				return
			}
		case c.gap || c.seen > c.last || len(c.pending) > 0:
			c.gap, c.pending = false, nil
			from := c.last
			c.fmu.Unlock()
			if err := c.readTimeline(from, send); err != nil {
				c.followFailed(err)
				return
			}
			c.fmu.Lock()
			if c.seen > c.last && c.last == from {
				// Announced but not in the timeline, and the read found
				// nothing new: nothing to wait for. (An event announced
				// while the read ran, after its last page, is read on the
				// next turn: forgetting it would leave the socket behind
				// until the customer's next event.)
				c.seen = c.last
			}
			c.fmu.Unlock()
		default:
			c.catching = false
			c.fmu.Unlock()
			return
		}
	}
}

// readTimeline sends the timeline after the given sequence, to its end.
func (c *conn) readTimeline(after uint64, send func(sessions.Event) error) error {
	const page = 1000
	for {
		evs, err := c.a.store.Timeline(c.ctx, c.customerID, after, page)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := send(ev); err != nil {
				return err
			}
			after = ev.Seq
		}
		if len(evs) < page {
			return nil
		}
	}
}

// followFailed ends the socket when following the timeline failed.
func (c *conn) followFailed(err error) {
	switch {
	case c.ctx.Err() != nil, c.closing.Load() && !errors.Is(err, errSlowClient):
		// The socket ended or is closing for another reason.
	case errors.Is(err, errSlowClient):
		c.log.Info("webchat: slow client disconnected")
		c.closeNow(CloseSlow)
	default:
		c.log.Error("webchat: following timeline", "customer", c.customerID, "err", err)
		c.fail(CloseServerError, ErrCodeServer, "timeline unavailable", "")
	}
}

// message appends a visitor's message once, however often it is sent.
func (c *conn) message(ctx context.Context, f clientFrame) {
	if !c.ensureCustomer(ctx, f.ClientID) {
		return
	}
	c.appendIn(ctx, f.ClientID, sessions.Message{Text: f.Text, ClientID: f.ClientID})
}

// offlinePayload is the message_in payload of the offline form: a
// sessions.Message plus what the visitor typed into the form.
type offlinePayload struct {
	sessions.Message
	Offline offlineForm `json:"offline_form"`
}

type offlineForm struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
	// Taken lists the contact kinds ("email", "phone") that belong to
	// another customer. Typed into a form, they prove nothing, so they are
	// recorded here for a rep to look at and never merged on.
	Taken []string `json:"taken,omitempty"`
}

// offline records the offline form: the contacts as unverified identities
// and the text as a message_in.
func (c *conn) offline(ctx context.Context, f clientFrame) {
	if !c.ensureCustomer(ctx, f.ClientID) {
		return
	}
	form := offlineForm{Name: f.Name, Email: f.Email, Phone: f.Phone}
	link := func(kind sessions.IdentityKind, value string) bool {
		_, _, err := c.a.store.LinkIdentity(ctx, c.customerID,
			sessions.Identity{Kind: kind, Value: value, Verified: false}, "customer")
		switch {
		case errors.Is(err, sessions.ErrIdentityTaken):
			form.Taken = append(form.Taken, string(kind))
		case err != nil:
			c.storeFailed(err, f.ClientID)
			return false
		}
		return true
	}
	if f.Email != "" && !link(sessions.IdentityEmail, f.Email) {
		return
	}
	if f.Phone != "" && !link(sessions.IdentityPhone, f.Phone) {
		return
	}
	if f.Name != "" {
		cu, err := c.a.store.Customer(ctx, c.customerID)
		if err == nil && cu.Name == "" {
			_, err = c.a.store.UpdateCustomer(ctx, c.customerID, sessions.CustomerUpdate{Name: &f.Name, Author: "customer"})
		}
		if err != nil {
			c.storeFailed(err, f.ClientID)
			return
		}
	}
	c.appendIn(ctx, f.ClientID, offlinePayload{Message: sessions.Message{Text: f.Message, ClientID: f.ClientID}, Offline: form})
}

// appendIn appends a message_in with the client id as its external id and
// acknowledges it; a resend gets the first event's sequence back.
func (c *conn) appendIn(ctx context.Context, clientID string, payload any) {
	_, ev, appended, err := c.a.store.Intake(ctx, "", sessions.Event{CustomerID: c.customerID,
		Kind: sessions.KindMessageIn, Channel: sessions.ChannelWebchat, ExternalID: clientID,
		Author: "customer", Payload: marshal(payload)})
	if err != nil {
		c.storeFailed(err, clientID)
		return
	}
	c.write(marshal(ackFrame{Type: frameAck, ClientID: clientID, Seq: ev.Seq, CustomerID: c.customerID, Duplicate: !appended}))
}

// storeFailed answers a frame the store would not apply.
func (c *conn) storeFailed(err error, clientID string) {
	switch {
	case c.ctx.Err() != nil:
	case errors.Is(err, sessions.ErrMerged):
		c.fail(CloseCustomerMerged, "", "", "")
	case errors.Is(err, sessions.ErrInvalid):
		c.write(marshal(errorFrame{Type: frameError, Code: ErrCodeInvalid, Message: "refused by the store", ClientID: clientID}))
	default:
		c.log.Error("webchat: store", "customer", c.customerID, "err", err)
		c.fail(CloseServerError, ErrCodeServer, "try again", clientID)
	}
}

func (c *conn) publishTyping(on bool) {
	if c.customerID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.a.typing.Publish(ctx, TypingSignal{CustomerID: c.customerID, From: "customer", On: on}); err != nil {
		c.log.Debug("webchat: typing", "err", err)
	}
}

// repTyping forwards a rep's typing to the visitor; the visitor's own
// signals (from other tabs) are not echoed.
func (c *conn) repTyping(s TypingSignal) {
	if strings.HasPrefix(s.From, "rep:") {
		c.write(marshal(typingFrame{Type: frameTyping, On: s.On, RepName: s.RepName}))
	}
}

// write hands a frame to the writer without waiting. If melody's buffer is
// full, its error handler (failed) cuts the client off as slow.
func (c *conn) write(b []byte) {
	if c.closing.Load() {
		return
	}
	c.inflight.Add(1)
	if c.s.Write(b) != nil {
		c.inflight.Add(-1)
	}
}

// writeFlow is write for the follower: it waits, up to SlowTimeout for
// each frame, until the socket has room, so a long replay never
// overflows the buffer and a client that stops reading is found out.
func (c *conn) writeFlow(b []byte) error {
	if c.inflight.Load() >= c.high {
		t := time.NewTimer(c.a.cfg.SlowTimeout)
		defer t.Stop()
		for c.inflight.Load() >= c.high {
			select {
			case <-c.sent:
			case <-t.C:
				return errSlowClient
			case <-c.ctx.Done():
				return c.ctx.Err()
			}
		}
	}
	if c.closing.Load() {
		return errors.New("webchat: closing")
	}
	c.write(b)
	return nil
}

// sentOne is melody's report that the writer wrote a text frame.
func (c *conn) sentOne() {
	c.inflight.Add(-1)
	select {
	case c.sent <- struct{}{}:
	default:
	}
}

// fail sends an error frame (when errCode is set) and then closes with
// code, behind the frames already queued. Only the first close counts.
func (c *conn) fail(code int, errCode, msg, clientID string) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	if errCode != "" {
		c.inflight.Add(1)
		_ = c.s.Write(marshal(errorFrame{Type: frameError, Code: errCode, Message: msg, ClientID: clientID}))
	}
	_ = c.s.CloseWithMsg(melody.FormatCloseMessage(code, CloseName(code)))
}

// closeNow closes without waiting for the queue (wsconn.CloseNow, giving
// a stuck writer a second).
func (c *conn) closeNow(code int) {
	c.closing.Store(true)
	if c.forced.CompareAndSwap(false, true) {
		wsconn.CloseNow(c.s, code, CloseName(code), time.Second)
	}
}

// failed is melody's error handler: read and write errors, and a full
// buffer.
func (c *conn) failed(err error) {
	switch {
	case errors.Is(err, melody.ErrMessageBufferFull):
		c.log.Info("webchat: slow client disconnected", "reason", "buffer full")
		c.closeNow(CloseSlow)
	case errors.Is(err, websocket.ErrReadLimit):
		c.closing.Store(true)
		c.log.Info("webchat: frame over max_message_bytes refused")
	case isCloseOK(err):
	default:
		c.log.Debug("webchat: socket", "err", err)
	}
}
