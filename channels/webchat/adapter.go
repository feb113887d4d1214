package webchat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/channels/wsconn"
	"github.com/omnigate/omnigate/sessions"
)

// Options are the adapter's collaborators, wired by cmd/gateway.
type Options struct {
	// Store is required. Sockets follow its change feed, so a visitor on
	// one node sees what a rep on another appended.
	Store sessions.Store
	// Logger receives connection problems; nil discards them.
	Logger *slog.Logger
	// Typing carries typing indicators; nil means a MemoryTyping of this
	// adapter's own (one node only), reachable with (*Adapter).Typing.
	Typing Typing
	// Available reports whether reps can take a chat on the site now; the
	// widget shows its offline form when not. Nil means always available.
	// It is asked once per site every AvailabilityInterval, not per
	// socket, and must return quickly.
	Available func(ctx context.Context, siteID string) bool
	// RepName gives the display name a visitor sees for a rep id; nil or
	// "" means no name (the widget says "Agent"). Rep ids never reach the
	// visitor.
	RepName func(ctx context.Context, repID string) string
	// Now is the clock of rate limits and signature expiry; nil means
	// time.Now. Tests move it.
	Now func() time.Time
}

// Adapter is the web chat channel: the visitors' WebSocket endpoint
// (ServeHTTP) and the outbound side of channels.Adapter (Send).
type Adapter struct {
	cfg    Config
	store  sessions.Store
	log    *slog.Logger
	typing Typing
	avail  func(ctx context.Context, siteID string) bool
	rep    func(ctx context.Context, repID string) string
	now    func() time.Time
	sites  map[string]*site
	// proxies are Config.TrustedProxies, parsed.
	proxies []netip.Prefix

	ctx    context.Context // ends with Close: stops every follower
	cancel context.CancelFunc
	closed atomic.Bool
	wg     sync.WaitGroup
	// fan shares one store subscription among this node's sockets.
	fan *sessions.Fanout
	// recheck asks the loop to ask availability now (RecheckAvailability).
	recheck chan struct{}

	// liveMu guards live: the number of this node's sockets following
	// each customer's timeline (Online).
	liveMu sync.Mutex
	live   map[string]int
}

var _ channels.Adapter = (*Adapter)(nil)

// site is one configured site and its sockets.
type site struct {
	Site
	origins []originPattern
	m       *melody.Melody
	lim     *limiter // frames per visitor
	// newVisitors limits the customers made per client address.
	newVisitors *limiter

	// availMu orders an availability change against a socket's welcome,
	// so no socket is left showing a stale value.
	availMu sync.Mutex
	agents  bool
}

const connKey = "webchat.conn"

// readBufferSize is each visitor socket's read buffer (see newMelody).
const readBufferSize = 1024

// writeBuffers are the visitor sockets' write buffers, held only while a
// frame is written.
var writeBuffers = &sync.Pool{}

// New builds the adapter. It returns the configuration's problems, if any,
// all at once. Close stops it.
func New(cfg Config, o Options) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Store == nil {
		return nil, errors.New("webchat: no store")
	}
	cfg = cfg.withDefaults()
	fan, err := sessions.NewFanout(o.Store)
	if err != nil {
		return nil, fmt.Errorf("webchat: following the store: %w", err)
	}
	proxies, _ := parsePrefixes(cfg.TrustedProxies) // checked by Validate
	a := &Adapter{cfg: cfg, store: o.Store, log: o.Logger, typing: o.Typing, avail: o.Available,
		rep: o.RepName, now: o.Now, sites: map[string]*site{}, proxies: proxies, fan: fan,
		recheck: make(chan struct{}, 1), live: map[string]int{}}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if a.typing == nil {
		a.typing = NewMemoryTyping()
	}
	if a.avail == nil {
		a.avail = func(context.Context, string) bool { return true }
	}
	if a.rep == nil {
		a.rep = func(context.Context, string) string { return "" }
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	for _, s := range cfg.Sites {
		st := &site{Site: s, lim: newLimiter(s.RatePerMinute, s.RateBurst),
			newVisitors: newLimiter(s.NewVisitorsPerMinute, s.NewVisitorsBurst)}
		for _, p := range s.AllowedOrigins {
			op, _ := parseOriginPattern(p) // checked by Validate
			st.origins = append(st.origins, op)
		}
		st.agents = a.available(s.ID)
		st.m = a.newMelody(st)
		a.sites[s.ID] = st
	}
	a.wg.Add(1)
	go a.loop()
	return a, nil
}

// newMelody sets up one site's sockets. melody's defaults (512-byte
// frames, any origin, frames dropped on a full buffer) suit none of this,
// so every limit is set here explicitly.
func (a *Adapter) newMelody(st *site) *melody.Melody {
	m := melody.New()
	m.Config.MaxMessageSize = int64(st.MaxMessageBytes)
	m.Config.MessageBufferSize = a.cfg.MessageBufferSize
	m.Config.WriteWait = a.cfg.WriteTimeout
	m.Config.PingPeriod = a.cfg.PingInterval
	m.Config.PongWait = 2 * a.cfg.PingInterval
	m.Config.ConcurrentMessageHandling = false // one reader, frames applied in order
	m.Upgrader.CheckOrigin = func(r *http.Request) bool {
		return originAllowed(st.origins, r.Header.Get("Origin"), r.Host)
	}
	// An idle socket holds a read buffer and no write buffer: frames from
	// visitors are small (a larger one is read through the buffer in
	// pieces), and a write buffer is only needed while a frame is being
	// written, so writers share a pool. wsconn lets net/http's own
	// buffers go. Measured with cmd/loadgen: about 7 KiB less per socket
	// than reusing net/http's 4 KiB read and write buffers.
	m.Upgrader.ReadBufferSize = readBufferSize
	m.Upgrader.WriteBufferSize = 0 // gorilla's default, 4 KiB, from the pool
	m.Upgrader.WriteBufferPool = writeBuffers
	m.Upgrader.Error = func(w http.ResponseWriter, r *http.Request, status int, reason error) {
		if status == http.StatusForbidden {
			a.log.Info("webchat: socket refused", "site", st.ID, "reason", "origin not allowed")
		}
		http.Error(w, http.StatusText(status), status)
	}
	m.HandleConnect(func(s *melody.Session) { onFreshStack(func() { connOf(s).connected(s) }) })
	m.HandleMessage(func(s *melody.Session, b []byte) { onFreshStack(func() { connOf(s).receive(b) }) })
	m.HandleMessageBinary(func(s *melody.Session, _ []byte) {
		connOf(s).fail(CloseBadRequest, ErrCodeBadRequest, "binary frames are not part of the protocol", "")
	})
	m.HandleSentMessage(func(s *melody.Session, _ []byte) { connOf(s).sentOne() })
	m.HandleError(func(s *melody.Session, err error) { connOf(s).failed(err) })
	m.HandleDisconnect(func(s *melody.Session) { connOf(s).disconnected() })
	return m
}

func connOf(s *melody.Session) *conn { return s.MustGet(connKey).(*conn) }

// ServeHTTP upgrades a visitor's socket. The gateway mounts it at
// /channels/webchat/ws; the query names the site (?site=SITE), and the
// credentials come in the hello frame. The deprecated form, still
// accepted, puts them in the query too:
// &visitor=VID[&user_id=UID&user_hash=HEX]. An unknown site is 404 and a
// disallowed Origin 403, before anything is stored.
func (a *Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	st, ok := a.sites[q.Get("site")]
	if !ok {
		http.Error(w, "webchat: unknown site", http.StatusNotFound)
		return
	}
	if a.closed.Load() {
		http.Error(w, "webchat: shutting down", http.StatusServiceUnavailable)
		return
	}
	c := &conn{a: a, st: st, addr: clientAddr(r, a.proxies), urlVisitor: q.Get("visitor"),
		urlUser: signedUser{id: q.Get("user_id"), hash: q.Get("user_hash")}, userAgent: truncate(r.UserAgent(), 512)}
	wsconn.Serve(w, r, func(w http.ResponseWriter, r *http.Request) {
		err := st.m.HandleRequestWithKeys(w, r, map[string]any{connKey: c})
		if errors.Is(err, melody.ErrClosed) {
			http.Error(w, "webchat: shutting down", http.StatusServiceUnavailable)
		}
		// Other errors are failed upgrades, already answered by the upgrader.
	})
}

// Name is the channel name, "webchat".
func (a *Adapter) Name() string { return sessions.ChannelWebchat }

// Send succeeds when the customer can be reached by web chat (CanSend):
// the caller has already appended the message_out to the timeline, and
// every socket of the customer follows the timeline, so the reply reaches
// an open widget at once and a closed one when it next connects.
func (a *Adapter) Send(ctx context.Context, o channels.Outbound) (channels.Receipt, error) {
	return channels.Receipt{}, a.CanSend(ctx, o.CustomerID, o.Identities)
}

// CanSend returns nil when the customer has a visitor or site-user
// identity of a configured site, else ErrNoAdapter: a customer who never
// used the widget here can't be reached by it.
func (a *Adapter) CanSend(ctx context.Context, customerID string, ids []sessions.Identity) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if id.Kind != sessions.IdentityVisitor && id.Kind != sessions.IdentitySiteUser {
			continue
		}
		if _, ok := a.sites[id.Namespace]; ok {
			return nil
		}
	}
	return fmt.Errorf("webchat: customer %s has no web chat visitor: %w", customerID, channels.ErrNoAdapter)
}

// Online reports whether the customer has an open widget on this node: a
// socket past its hello that follows their timeline, so a message sent
// now is shown at once (channels.Presence, which best-channel contact
// asks). It knows this node's sockets only: in a cluster a widget open on
// another node answers false here.
func (a *Adapter) Online(customerID string) bool {
	a.liveMu.Lock()
	defer a.liveMu.Unlock()
	return a.live[customerID] > 0
}

// following counts a socket that starts (+1) or stops (-1) following the
// customer's timeline.
func (a *Adapter) following(customerID string, n int) {
	a.liveMu.Lock()
	defer a.liveMu.Unlock()
	if a.live[customerID] += n; a.live[customerID] <= 0 {
		delete(a.live, customerID)
	}
}

// Typing is the typing pub/sub in use, for the rep inbox to publish reps'
// typing to visitors and to hear visitors type.
func (a *Adapter) Typing() Typing { return a.typing }

// Connections is the number of open visitor sockets on this node.
func (a *Adapter) Connections() int {
	n := 0
	for _, st := range a.sites {
		n += st.m.Len()
	}
	return n
}

// Close refuses new sockets, closes every open one with CloseShutdown (the
// widgets reconnect, to another node if this one is going away), and stops
// the followers. Call it after the HTTP server stopped accepting.
func (a *Adapter) Close() error {
	if !a.closed.CompareAndSwap(false, true) {
		return nil
	}
	msg := melody.FormatCloseMessage(CloseShutdown, CloseName(CloseShutdown))
	for _, st := range a.sites {
		_ = st.m.CloseWithMsg(msg)
	}
	a.cancel()
	a.wg.Wait()
	a.fan.Close()
	return nil
}

func (a *Adapter) available(siteID string) bool {
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
	defer cancel()
	return a.avail(ctx, siteID)
}

// loop asks each site's availability and pushes changes, and forgets idle
// rate-limit buckets.
func (a *Adapter) loop() {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.AvailabilityInterval)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
			now := a.now()
			for _, st := range a.sites {
				st.lim.sweep(now)
				st.newVisitors.sweep(now)
				a.setAvailability(st, a.available(st.ID))
			}
		case <-a.recheck:
			for _, st := range a.sites {
				a.setAvailability(st, a.available(st.ID))
			}
		}
	}
}

// RecheckAvailability asks every site's availability again now instead of
// at the next AvailabilityInterval, and pushes what changed. The gateway
// calls it when a rep's presence changes, so a visitor is not shown the
// offline form for seconds after the first rep comes back. It never blocks.
func (a *Adapter) RecheckAvailability() {
	select {
	case a.recheck <- struct{}{}:
	default: // a recheck is already pending
	}
}

// setAvailability records the site's availability and, when it changed,
// tells every socket past its welcome.
func (a *Adapter) setAvailability(st *site, agents bool) {
	st.availMu.Lock()
	defer st.availMu.Unlock()
	if st.agents == agents {
		return
	}
	st.agents = agents
	ss, err := st.m.Sessions()
	if err != nil {
		return
	}
	b := marshal(availabilityFrame{Type: frameAvailability, Agents: agents})
	for _, s := range ss {
		if c := connOf(s); c.ready.Load() {
			c.write(b)
		}
	}
}

// isCloseOK reports whether err is the peer closing or going away, not
// worth a log line.
func isCloseOK(err error) bool {
	return websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway,
		websocket.CloseNoStatusReceived) || errors.Is(err, melody.ErrSessionClosed) || errors.Is(err, melody.ErrWriteClosed)
}

// onFreshStack runs f on a short-lived goroutine and waits for it. A
// socket's reader goroutine lives as long as the socket but is idle
// almost all of that time; applying a frame goes deep (store, JSON,
// logging) and would grow the reader's stack to 8 KiB, which the runtime
// does not shrink back while the idle reader still uses over a quarter of
// it. Applied here, the deep part's stack is freed when f returns and the
// reader keeps its idle size. Measured with cmd/loadgen at 10,000
// sockets: stacks 12.0 → 8.0 KiB per socket. Frames are still applied one
// at a time, in order, since the reader waits.
func onFreshStack(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}
