package inbox

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/channels/webchat"
	"github.com/omnigate/omnigate/channels/wsconn"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

// Options are the hub's collaborators, wired by the gateway.
type Options struct {
	// Store is required; the hub follows its change feed, so a rep on one
	// node sees what happened on every node.
	Store sessions.Store
	// Auth is required: the same authenticator the API uses, so one token
	// signs a rep into both.
	Auth *auth.Authenticator
	// Typing carries typing indicators between reps and visitors; pass the
	// webchat adapter's (Adapter.Typing), so both sides share one. Nil
	// means no typing indicators either way.
	Typing webchat.Typing
	// Logger receives connection problems; nil discards them.
	Logger *slog.Logger
	// OnPresence is told when a rep (or supervisor) comes online, with the
	// first inbox socket of theirs on this node, and goes offline, when
	// the last one closes. Calls for one hub are made one at a time, in
	// order. It must return quickly and must not call back into the hub.
	// Nil means nobody is told. Admin keys have no presence.
	OnPresence func(repID string, online bool)
	// Metrics receives the hub's collectors (namespace omnigate, subsystem
	// inbox); nil means no metrics.
	Metrics prometheus.Registerer
	// Wallboard is pushed to supervisor and admin sockets (wallboard.go);
	// nil means no wallboard frames.
	Wallboard WallboardSource
}

// Hub serves reps' inbox sockets (ServeHTTP) and fans the store's change
// feed out to them. Build it with New; Close it after the HTTP server
// stopped accepting.
type Hub struct {
	cfg        Config
	store      sessions.Store
	auth       *auth.Authenticator
	typing     webchat.Typing
	log        *slog.Logger
	onPresence func(repID string, online bool)
	origins    []string
	m          *melody.Melody
	metrics    *metrics // nil without Options.Metrics
	feed       *sessions.Consumer

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	closed atomic.Bool
	wg     sync.WaitGroup
	untype func()

	// presenceMu orders presence changes with their OnPresence calls;
	// taken before mu.
	presenceMu sync.Mutex
	mu         sync.Mutex
	conns      map[*conn]struct{}            // authenticated sockets
	watchers   map[string]map[*conn]struct{} // by the customer id they watch
	byRep      map[string]map[*conn]struct{} // reps' and supervisors' sockets by rep id
	subs       [numViews]map[*conn]struct{}  // sockets by the views they follow
	dirty      [numViews]map[string]sessions.Conversation
	online     map[string]int // sockets per rep id

	// convs is the feed worker's own (dispatch): the state of each active
	// conversation it has seen, so an event knows whose it was before.
	convs map[string]sessions.Conversation
	// maxDepth is the most frames ever queued for one socket, for reps'
	// sockets [0] and supervisors' and admins' [1].
	maxDepth [2]atomic.Int64
}

const connKey = "inbox.conn"

// New builds the hub and starts following the store's change feed. It
// returns the configuration's problems, if any, all at once.
func New(cfg Config, o Options) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Store == nil || o.Auth == nil {
		return nil, errors.New("inbox: Store and Auth are required")
	}
	cfg = cfg.withDefaults()
	h := &Hub{cfg: cfg, store: o.Store, auth: o.Auth, typing: o.Typing, log: o.Logger,
		onPresence: o.OnPresence, origins: cfg.AllowedOrigins,
		conns: map[*conn]struct{}{}, watchers: map[string]map[*conn]struct{}{}, online: map[string]int{},
		byRep: map[string]map[*conn]struct{}{}, convs: map[string]sessions.Conversation{}}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Metrics != nil {
		if err := h.registerMetrics(o.Metrics); err != nil {
			return nil, err
		}
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.m = h.newMelody()
	h.startWallboard(o.Wallboard)
	if h.typing != nil {
		h.untype = h.typing.Subscribe("", h.typed)
	}
	// Subscribe before returning, so an event appended once New has
	// returned reaches every socket authenticated after it.
	var err error
	h.feed, err = sessions.NewConsumer(h.ctx, h.store, sessions.ConsumerOptions{
		Handle: func(_ context.Context, ev sessions.Event) { h.dispatch(ev) },
		OnGap:  h.gap,
		Logger: h.log,
	})
	if err != nil {
		h.cancel()
		if h.untype != nil {
			h.untype()
		}
		return nil, err
	}
	h.wg.Go(h.flushLoop)
	h.wg.Go(func() {
		<-h.feed.Done()
		if h.ctx.Err() == nil { // the store closed under the hub
			h.closeAll(CloseShutdown)
		}
	})
	return h, nil
}

// newMelody sets every limit explicitly: melody's defaults (512-byte
// frames, any origin, frames silently dropped on a full buffer) suit
// none of this.
func (h *Hub) newMelody() *melody.Melody {
	m := melody.New()
	m.Config.MaxMessageSize = int64(h.cfg.MaxMessageBytes)
	m.Config.MessageBufferSize = h.cfg.MessageBufferSize
	m.Config.WriteWait = h.cfg.WriteTimeout
	m.Config.PingPeriod = h.cfg.PingInterval
	m.Config.PongWait = 2 * h.cfg.PingInterval
	m.Config.ConcurrentMessageHandling = false // one reader, frames applied in order
	m.Upgrader.CheckOrigin = h.checkOrigin
	m.Upgrader.Subprotocols = []string{Subprotocol}
	m.Upgrader.Error = func(w http.ResponseWriter, r *http.Request, status int, reason error) {
		if status == http.StatusForbidden {
			h.log.Info("inbox: socket refused", "reason", "origin not allowed")
		}
		http.Error(w, http.StatusText(status), status)
	}
	m.HandleConnect(func(s *melody.Session) { connOf(s).connected(s) })
	m.HandleMessage(func(s *melody.Session, b []byte) { connOf(s).receive(b) })
	m.HandleSentMessage(func(s *melody.Session, _ []byte) { connOf(s).queued.Add(-1) })
	m.HandleMessageBinary(func(s *melody.Session, _ []byte) {
		connOf(s).fail(CloseBadRequest, ErrCodeBadRequest, "binary frames are not part of the protocol")
	})
	m.HandleError(func(s *melody.Session, err error) { connOf(s).failed(err) })
	m.HandleDisconnect(func(s *melody.Session) { connOf(s).disconnected() })
	return m
}

func connOf(s *melody.Session) *conn { return s.MustGet(connKey).(*conn) }

// checkOrigin allows the gateway's own pages (Origin host equal to Host),
// the configured origins, and clients that send no Origin (not browsers:
// they hold no ambient credentials a hostile page could borrow).
func (h *Hub) checkOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || slices.Contains(h.origins, o) {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// ServeHTTP upgrades a rep's socket. The gateway mounts it at /inbox/ws.
// A token in Sec-WebSocket-Protocol is checked here; without one, the
// first frame must be auth. Either way a bad token is answered after the
// upgrade, with CloseUnauthorized, which a browser can see (a refused
// handshake shows only as 1006).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.closed.Load() {
		http.Error(w, "inbox: shutting down", http.StatusServiceUnavailable)
		return
	}
	c := &conn{h: h, log: h.log, boardOnly: boardOnly(r)}
	if token, ok := headerToken(r); ok {
		c.header = true
		c.headerP, c.headerErr = h.auth.Authenticate(token)
	}
	wsconn.Serve(w, r, func(w http.ResponseWriter, r *http.Request) {
		err := h.m.HandleRequestWithKeys(w, r, map[string]any{connKey: c})
		if errors.Is(err, melody.ErrClosed) {
			http.Error(w, "inbox: shutting down", http.StatusServiceUnavailable)
		}
		// Other errors are failed upgrades, already answered by the upgrader.
	})
}

// headerToken finds the token offered as BearerPrefix+base64url(token)
// among the requested subprotocols. A malformed one counts as present and
// empty, so it is refused rather than ignored.
func headerToken(r *http.Request) (string, bool) {
	for _, p := range websocket.Subprotocols(r) {
		enc, ok := strings.CutPrefix(p, BearerPrefix)
		if !ok {
			continue
		}
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			return "", true
		}
		return string(b), true
	}
	return "", false
}

// Connections is the number of authenticated inbox sockets on this node.
func (h *Hub) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// MaxQueueDepth is the most frames ever waiting at once for one socket
// of a rep (or, with supervisors true, of a supervisor or admin) on this
// node: a high-water mark, for the load program and the queue_depth_max
// metric.
func (h *Hub) MaxQueueDepth(supervisors bool) int64 {
	return h.maxDepth[depthIndex(supervisors)].Load()
}

func depthIndex(supervisors bool) int {
	if supervisors {
		return 1
	}
	return 0
}

// Online lists the reps with an inbox socket open on this node, sorted.
func (h *Hub) Online() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.online))
	for id := range h.online {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Close refuses new sockets, closes every open one with CloseShutdown
// (the inbox reconnects, to another node if this one is going away) and
// stops following the store. Call it after the HTTP server stopped
// accepting and before the store is closed.
func (h *Hub) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	_ = h.m.CloseWithMsg(melody.FormatCloseMessage(CloseShutdown, CloseName(CloseShutdown)))
	h.cancel()
	if h.untype != nil {
		h.untype()
	}
	h.wg.Wait()
	return nil
}

// gap is the feed consumer's OnGap: the hub's subscription was cut off
// (it fell behind, or the store's feed broke) and events were missed. The
// consumer has subscribed again; every socket open across the gap is
// closed, so each client reloads from the timeline. Sockets authenticated
// after the new subscription miss nothing and stay.
func (h *Hub) gap(_ context.Context, cause error) {
	code := CloseSlow
	if errors.Is(cause, sessions.ErrSlow) {
		h.log.Warn("inbox: fell behind the change feed; reconnecting every socket")
	} else {
		h.log.Error("inbox: change feed failed; reconnecting every socket", "err", cause)
		code = CloseServerError
	}
	// What the feed worker knew of conversations may have changed in the
	// gap; it reads them again. No handler runs during OnGap.
	clear(h.convs)
	h.closeAll(code)
}

// WaitHandled blocks until the hub has dispatched the customer's events up
// to seq (queued them, or closed the sockets too slow for them), ctx ends,
// or the hub stopped following the store. Tests wait on it before
// asserting what a socket did not get; see sessions.Consumer.WaitHandled.
func (h *Hub) WaitHandled(ctx context.Context, customerID string, seq uint64) error {
	return h.feed.WaitHandled(ctx, customerID, seq)
}

// changesConversation lists the kinds after which the conversation itself
// (status, assignee) is pushed, not just the event.
func changesConversation(k sessions.EventKind) bool {
	return k == sessions.KindAssignment || k == sessions.KindTransfer || k == sessions.KindStatusChange
}

// typed is the typing subscriber: it forwards a signal to the sockets
// watching its customer, except the sender's own. It runs under the
// typing pub/sub's lock and must not block: writes only queue.
func (h *Hub) typed(s webchat.TypingSignal) {
	var f *outFrame
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.watchers[s.CustomerID] {
		if c.author == s.From {
			continue
		}
		if f == nil {
			f = newFrame(typingFrame{Type: frameTyping, CustomerID: s.CustomerID, From: s.From, RepName: s.RepName, On: s.On})
		}
		c.write(f)
	}
}

// join registers an authenticated socket and queues its ready frame under
// mu, so no event is dispatched to it before ready and none appended after
// ready is missed.
func (h *Hub) join(c *conn, ready *outFrame) {
	h.presenceMu.Lock()
	defer h.presenceMu.Unlock()
	h.mu.Lock()
	h.conns[c] = struct{}{}
	c.write(ready)
	first := false
	if c.countsPresence() {
		h.online[c.p.ID]++
		first = h.online[c.p.ID] == 1
		if h.byRep[c.p.ID] == nil {
			h.byRep[c.p.ID] = map[*conn]struct{}{}
		}
		h.byRep[c.p.ID][c] = struct{}{}
	}
	h.mu.Unlock()
	if first && h.onPresence != nil {
		h.onPresence(c.p.ID, true)
	}
}

// leave forgets a socket that was joined.
func (h *Hub) leave(c *conn) {
	h.presenceMu.Lock()
	defer h.presenceMu.Unlock()
	h.mu.Lock()
	delete(h.conns, c)
	h.unwatchLocked(c)
	for v := range numViews {
		delete(h.subs[v], c)
	}
	last := false
	if c.countsPresence() {
		delete(h.byRep[c.p.ID], c)
		if len(h.byRep[c.p.ID]) == 0 {
			delete(h.byRep, c.p.ID)
		}
		h.online[c.p.ID]--
		if h.online[c.p.ID] <= 0 {
			delete(h.online, c.p.ID)
			last = true
		}
	}
	h.mu.Unlock()
	if last && h.onPresence != nil {
		h.onPresence(c.p.ID, false)
	}
}

// watch makes c receive typing signals about customerID ("" for none).
func (h *Hub) watch(c *conn, customerID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unwatchLocked(c)
	c.watching = customerID
	if customerID == "" {
		return
	}
	if h.watchers[customerID] == nil {
		h.watchers[customerID] = map[*conn]struct{}{}
	}
	h.watchers[customerID][c] = struct{}{}
}

func (h *Hub) unwatchLocked(c *conn) {
	if c.watching == "" {
		return
	}
	delete(h.watchers[c.watching], c)
	if len(h.watchers[c.watching]) == 0 {
		delete(h.watchers, c.watching)
	}
	c.watching = ""
}

// closeAll closes every authenticated socket with code, behind the frames
// already queued.
func (h *Hub) closeAll(code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		c.fail(code, "", "")
	}
}
