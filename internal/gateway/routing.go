package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// routing runs the router inside the gateway: it turns conversations that
// need a human into router tasks, records the router's decisions on the
// timeline, feeds it presence, and keeps it in step with the store and,
// in a cluster, with the other nodes. See doc.go ("Routing") for the
// design; in short:
//
//   - The store's change feed drives it. A customer message (or an
//     integrator or call event) on an open, unassigned conversation is
//     enqueued; an assignment, transfer or status change makes the router
//     hold what the conversation says (settle): released when resolved,
//     adopted for the rep a person assigned, enqueued again when
//     unassigned.
//   - A decision to assign is written with UpdateConversation, its payload
//     the Decision (the "why"), only after re-reading the conversation:
//     one that was resolved or assigned meanwhile gets its claim back.
//   - Every reconcile_interval it compares what the router holds with the
//     store, routes open conversations left unassigned for
//     reconcile_after, and (cluster) takes over the conversations of nodes
//     whose lease lapsed. After the feed fell behind (ErrSlow) it does so
//     at once, for every conversation.
//   - With the valkey store the router's State is router.ValkeyState on
//     the same server: claims, rep load and presence are shared, so no
//     two nodes assign one conversation or overfill a rep, and each node
//     renews its lease and syncs every sync_interval.
//
// Locks: convMu stripes serialize the work on one conversation (settle,
// record); they are never held while another stripe is taken, and
// decisions produced under one are applied after it is released. mu
// guards the presence maps. Neither is held across a call into the inbox
// hub or the webchat adapter.
type routing struct {
	cfg     config.Routing
	store   sessions.Store
	r       *router.Router
	state   router.State
	cluster *router.ValkeyState // nil on a single node
	client  valkey.Client       // the cluster state's; nil on a single node
	log     *slog.Logger
	langs   map[string]bool // languages some rep speaks
	metrics *routingMetrics

	ctx    context.Context // ends with close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	convMu [64]sync.Mutex
	dirty  atomic.Bool // a step failed since the last full reconcile

	presenceCh chan presenceChange
	// onPresenceChange, when set, is told after a rep's presence is set
	// (the web chat adapter's RecheckAvailability). It must not block.
	onPresenceChange func()
	mu               sync.Mutex
	sockets          map[string]bool        // reps with an inbox socket on this node
	grace            map[string]*time.Timer // reps whose last socket here closed
}

type routingMetrics struct {
	decisions *prometheus.CounterVec
	failures  *prometheus.CounterVec
}

// newRouting builds the router from the configuration: every rep in
// auth.reps, with the routing attributes routing.reps gives them. With
// the valkey store it opens its own client to the store's server.
func newRouting(cfg config.Config, store sessions.Store, reps []auth.Rep, reg prometheus.Registerer, log *slog.Logger) (*routing, error) {
	rc := cfg.Routing
	attrs := map[string]router.Rep{}
	for _, r := range rc.Reps {
		attrs[r.ID] = r
	}
	rcfg := rc.Config
	rcfg.Reps = nil
	langs := map[string]bool{}
	for _, a := range reps {
		r := attrs[a.ID]
		r.ID, r.Name, r.Role = a.ID, a.Name, string(a.Role)
		for _, l := range r.Languages {
			langs[strings.ToLower(l)] = true
		}
		rcfg.Reps = append(rcfg.Reps, r)
	}
	rt := &routing{cfg: rc, store: store, log: log.With("part", "routing"), langs: langs,
		presenceCh: make(chan presenceChange, 1024), sockets: map[string]bool{}, grace: map[string]*time.Timer{}}
	rt.ctx, rt.cancel = context.WithCancel(context.Background())
	var state router.State = router.NewMemoryState()
	if cfg.Store.Kind == config.StoreValkey {
		client, err := dialValkey(cfg.Store)
		if err != nil {
			return nil, fmt.Errorf("gateway: routing: %w", err)
		}
		cs, err := router.NewValkeyNodeState(client, cfg.Store.Valkey.KeyPrefix, nodeName())
		if err != nil {
			client.Close()
			return nil, fmt.Errorf("gateway: routing: %w", err)
		}
		rt.client, rt.cluster, state = client, cs, cs
		rt.log = rt.log.With("node", cs.Node())
	}
	r, err := router.New(rcfg, router.Options{State: state})
	if err != nil {
		rt.closeClient()
		return nil, fmt.Errorf("gateway: routing: %w", err)
	}
	rt.r, rt.state = r, state
	if reg != nil {
		m := &routingMetrics{
			decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "omnigate", Subsystem: "routing",
				Name: "decisions_total", Help: "Router decisions acted on by this node, by kind (assign, queued, overflow, taken, ...)."},
				[]string{"kind"}),
			failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "omnigate", Subsystem: "routing",
				Name: "failures_total", Help: "Routing steps that failed and were left to the reconcile scan, by step."},
				[]string{"step"}),
		}
		waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "omnigate", Subsystem: "routing",
			Name: "waiting", Help: "Conversations waiting for a rep in this node's router."},
			func() float64 { return float64(r.Waiting()) })
		for _, c := range []prometheus.Collector{m.decisions, m.failures, waiting} {
			if err := reg.Register(c); err != nil {
				rt.closeClient()
				return nil, err
			}
		}
		rt.metrics = m
	}
	return rt, nil
}

// nodeName is unique per process: host, pid and a random part, so a
// restarted process never inherits a dead one's lease.
func nodeName() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r == '|' || r <= ' ' {
			return '-'
		}
		return r
	}, host)
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

func (rt *routing) closeClient() {
	if rt.client != nil {
		rt.client.Close()
	}
}

// start subscribes to the change feed (so nothing appended from now on is
// missed) and starts the loops; the first reconcile runs at once.
func (rt *routing) start() error {
	if rt.cluster != nil {
		if err := rt.cluster.Heartbeat(rt.ctx, rt.cfg.NodeLease); err != nil {
			return fmt.Errorf("gateway: routing: %w", err)
		}
		rt.apply(rt.r.Sync(rt.ctx))
	}
	sub, err := rt.store.Subscribe(rt.ctx)
	if err != nil {
		return fmt.Errorf("gateway: routing: %w", err)
	}
	rt.wg.Add(5)
	go rt.feedLoop(sub)
	go rt.timerLoop()
	go rt.syncLoop()
	go rt.reconcileLoop()
	go rt.presenceLoop()
	return nil
}

// close stops the loops and, in a cluster, gives up the lease at once so
// the other nodes take over what this one held.
func (rt *routing) close() {
	rt.cancel()
	rt.mu.Lock()
	for _, t := range rt.grace {
		t.Stop()
	}
	rt.mu.Unlock()
	rt.wg.Wait()
	if rt.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := rt.cluster.Leave(ctx); err != nil {
			rt.log.Warn("routing: leaving the cluster", slog.Any("error", err))
		}
		cancel()
	}
	rt.closeClient()
}

func (rt *routing) lock(conv string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(conv))
	m := &rt.convMu[h.Sum32()%uint32(len(rt.convMu))]
	m.Lock()
	return m.Unlock
}

func (rt *routing) fail(step string, err error, attrs ...any) {
	if errors.Is(err, context.Canceled) && rt.ctx.Err() != nil {
		return // shutting down
	}
	rt.dirty.Store(true)
	if rt.metrics != nil {
		rt.metrics.failures.WithLabelValues(step).Inc()
	}
	rt.log.Warn("routing: "+step, append(attrs, slog.Any("error", err))...)
}

// feedWorkers is how many events are handled at once. Handling one is a
// few store round trips, so one at a time would make the feed's latency
// the sum of everyone's; events are sharded by conversation, so each
// conversation's are still handled in order.
const feedWorkers = 8

// feedLoop follows the change feed. When it falls behind (ErrSlow) it
// subscribes again and reconciles everything, so nothing is missed.
func (rt *routing) feedLoop(sub *sessions.Subscription) {
	defer rt.wg.Done()
	var work [feedWorkers]chan sessions.Event
	var workers sync.WaitGroup
	for i := range work {
		work[i] = make(chan sessions.Event, 256)
		workers.Go(func() {
			for ev := range work[i] {
				rt.handle(ev)
			}
		})
	}
	defer func() {
		for _, c := range work {
			close(c)
		}
		workers.Wait()
	}()
	rt.reconcile(true)
	for {
		for ev := range sub.Events() {
			if ev.ConversationID == "" {
				continue
			}
			h := fnv.New32a()
			_, _ = h.Write([]byte(ev.ConversationID))
			select {
			case work[h.Sum32()%feedWorkers] <- ev:
			case <-rt.ctx.Done():
				return
			}
		}
		if rt.ctx.Err() != nil || errors.Is(sub.Err(), sessions.ErrClosed) {
			return
		}
		rt.log.Warn("routing: change feed lost; catching up", slog.Any("error", sub.Err()))
		delay := 50 * time.Millisecond
		for {
			var err error
			if sub, err = rt.store.Subscribe(rt.ctx); err == nil {
				break
			}
			if rt.ctx.Err() != nil || errors.Is(err, sessions.ErrClosed) {
				return
			}
			select {
			case <-rt.ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, 5*time.Second)
		}
		rt.reconcile(true)
	}
}

// handle is one event from the feed.
func (rt *routing) handle(ev sessions.Event) {
	if ev.ConversationID == "" {
		return
	}
	switch ev.Kind {
	case sessions.KindMessageIn, sessions.KindIntegrator, sessions.KindCall:
		// The customer (or an integrator) wants a human. Sticky: a
		// conversation this router holds, or one with an assignee, needs
		// nothing. Calls the customer did not make (the dialer's) are
		// bridged by the dialer, not routed here.
		if ev.Kind == sessions.KindCall && ev.Author != "customer" {
			return
		}
		if _, err := rt.r.Task(ev.ConversationID); err == nil {
			return
		}
		if ev.Kind == sessions.KindMessageIn && ev.Origin == "" && rt.reopenIfResolvedUnder(ev) {
			// Reopened with its assignee, if it had one: the router takes
			// up the rep's load again, or routes it.
			rt.apply(rt.settle(ev.ConversationID))
			return
		}
		rt.apply(rt.route(ev.ConversationID, ev.Channel, ev.Time))
	case sessions.KindAssignment, sessions.KindTransfer:
		if isDecision(ev.Payload) {
			// A router's own: the node that made it holds the task; the
			// others learn the rep's load on the next sync.
			return
		}
		rt.apply(rt.settle(ev.ConversationID))
	case sessions.KindOffer:
		rt.answer(ev)
	case sessions.KindStatusChange:
		if ev.Author == sessions.ChannelSystem && changeTo(ev.Payload) == sessions.StatusOpen {
			// A channel opened the conversation for the customer's
			// message, which follows and routes it.
			return
		}
		_, err := rt.r.Task(ev.ConversationID)
		held := err == nil
		rt.apply(rt.settle(ev.ConversationID))
		if held && rt.cfg.OwnerOnResolve {
			rt.ownerOnResolve(ev)
		}
	}
}

// reopenIfResolvedUnder reopens the conversation of a customer's message
// that was resolved after the channel found it open and before the message
// was appended (a channel's intake gets the open conversation, then
// appends: two store calls). Left resolved, nothing would route the
// message. A message older than the resolution is not reopened for: the
// rep saw it. If another conversation on the topic is active by now, the
// store refuses the reopen and the message stays where it is, on the
// customer's timeline for whoever serves the active one. It reports
// whether it reopened.
func (rt *routing) reopenIfResolvedUnder(ev sessions.Event) bool {
	defer rt.lock(ev.ConversationID)()
	cv, err := rt.store.Conversation(rt.ctx, ev.ConversationID)
	if err != nil || cv.Status != sessions.StatusResolved || ev.Time.Before(cv.ResolvedAt) {
		return false
	}
	open := sessions.StatusOpen
	_, _, err = rt.store.UpdateConversation(rt.ctx, cv.ID, sessions.ConversationUpdate{Status: &open,
		Event: sessions.Event{Kind: sessions.KindStatusChange, Author: sessions.ChannelSystem}})
	if err != nil && !errors.Is(err, sessions.ErrConflict) {
		rt.fail("reopen conversation", err, slog.String("conversation", cv.ID))
	}
	return err == nil
}

func changeTo(payload json.RawMessage) sessions.ConversationStatus {
	var p sessions.ConversationChange
	_ = json.Unmarshal(payload, &p)
	return p.Status
}

// isDecision tells the router's assignment events (a Decision payload)
// from a person's (the API's assignee/from payload).
func isDecision(payload json.RawMessage) bool {
	var p struct {
		Kind router.Kind `json:"kind"`
	}
	return json.Unmarshal(payload, &p) == nil && p.Kind != ""
}

// route enqueues the conversation if it is open and unassigned.
func (rt *routing) route(conv, channel string, since time.Time) []router.Decision {
	defer rt.lock(conv)()
	cv, err := rt.store.Conversation(rt.ctx, conv)
	if err != nil {
		if !errors.Is(err, sessions.ErrNotFound) {
			rt.fail("read conversation", err, slog.String("conversation", conv))
		}
		return nil
	}
	if cv.Status != sessions.StatusOpen || cv.Assignee != "" {
		return nil
	}
	return rt.enqueueLocked(cv, channel, since)
}

// enqueueLocked makes cv a router task. The caller holds cv's lock and
// has checked it is open and unassigned.
func (rt *routing) enqueueLocked(cv sessions.Conversation, channel string, since time.Time) []router.Decision {
	if _, err := rt.r.Task(cv.ID); err == nil {
		return nil
	}
	cust, err := rt.store.Customer(rt.ctx, cv.CustomerID)
	if err != nil {
		rt.fail("read customer", err, slog.String("conversation", cv.ID))
		return nil
	}
	switch channel {
	case "", sessions.ChannelSystem, sessions.ChannelAPI:
		channel = cv.Channel
	}
	t := router.TaskFor(cust, cv, channel)
	t.Language = rt.language(cust.Locale)
	t.EnqueuedAt = since
	d, err := rt.r.Enqueue(rt.ctx, t)
	if errors.Is(err, router.ErrDuplicate) {
		return nil // another node routes it
	}
	if err != nil {
		rt.fail("enqueue", err, slog.String("conversation", cv.ID))
		return nil
	}
	return []router.Decision{d}
}

// language is the language a customer needs: their locale's primary tag,
// when some rep speaks it; else none, so no task waits for a language
// nobody has.
func (rt *routing) language(locale string) string {
	tag, _, _ := strings.Cut(strings.ToLower(locale), "-")
	tag, _, _ = strings.Cut(tag, "_")
	if rt.langs[tag] {
		return tag
	}
	return ""
}

// settle reads the conversation and makes what the router holds for it
// match: a task for an open, unassigned conversation; the assignee's
// active task for an open or pending assigned one; nothing otherwise.
func (rt *routing) settle(conv string) []router.Decision {
	defer rt.lock(conv)()
	cv, err := rt.store.Conversation(rt.ctx, conv)
	if errors.Is(err, sessions.ErrNotFound) {
		return rt.releaseLocked(conv)
	}
	if err != nil {
		rt.fail("read conversation", err, slog.String("conversation", conv))
		return nil
	}
	return rt.settleLocked(cv)
}

func (rt *routing) settleLocked(cv sessions.Conversation) []router.Decision {
	var out []router.Decision
	if ts, err := rt.r.Task(cv.ID); err == nil {
		switch {
		case cv.Status.Active() && cv.Assignee != "" && ts.Status == "active" && ts.RepID == cv.Assignee:
			return nil
		case cv.Status == sessions.StatusOpen && cv.Assignee == "" && (ts.Status == "waiting" || ts.Status == "offered"):
			return nil
		}
		out = rt.releaseLocked(cv.ID)
	}
	switch {
	case !cv.Status.Active():
	case cv.Assignee == "":
		if cv.Status == sessions.StatusOpen {
			out = append(out, rt.enqueueLocked(cv, cv.Channel, cv.UpdatedAt)...)
		}
	default:
		rt.adoptLocked(cv)
	}
	return out
}

func (rt *routing) releaseLocked(conv string) []router.Decision {
	ds, err := rt.r.Release(rt.ctx, conv)
	if err != nil && !errors.Is(err, router.ErrUnknownTask) {
		rt.fail("release", err, slog.String("conversation", conv))
	}
	return ds
}

// adoptLocked makes the router hold cv as its assignee's: an assignment a
// person made, or one a dead node made. Another live node holding it
// keeps it.
func (rt *routing) adoptLocked(cv sessions.Conversation) {
	cust, err := rt.store.Customer(rt.ctx, cv.CustomerID)
	if err != nil {
		rt.fail("read customer", err, slog.String("conversation", cv.ID))
		return
	}
	err = rt.r.Adopt(rt.ctx, router.TaskFor(cust, cv, cv.Channel), cv.Assignee)
	switch {
	case err == nil, errors.Is(err, router.ErrTaken):
	case errors.Is(err, router.ErrUnknownRep):
		rt.log.Debug("routing: assignee is not a routed rep", slog.String("conversation", cv.ID))
	default:
		rt.fail("adopt", err, slog.String("conversation", cv.ID))
	}
}

// apply acts on decisions, in order, and on what acting on them decided.
func (rt *routing) apply(ds []router.Decision, errs ...error) {
	for _, err := range errs {
		if err != nil {
			rt.fail("router", err)
		}
	}
	for len(ds) > 0 {
		d := ds[0]
		ds = ds[1:]
		if rt.metrics != nil {
			rt.metrics.decisions.WithLabelValues(string(d.Kind)).Inc()
		}
		switch {
		case d.Assigns():
			ds = append(ds, rt.record(d)...)
		case d.Kind == router.KindOverflow:
			rt.recordOverflow(d)
		case d.Kind == router.KindOffer, d.Kind == router.KindOfferExpired,
			d.Kind == router.KindOfferDeclined, d.Kind == router.KindOfferWithdrawn:
			rt.recordOffer(d)
		}
	}
}

// record writes an assignment on the timeline: the conversation's new
// assignee and an assignment event whose payload is the decision. The
// conversation is read again first: if it was resolved or assigned in the
// meantime (by a person, or by another node after this one lost its
// lease), the router's hold is settled instead and nothing is written.
func (rt *routing) record(d router.Decision) []router.Decision {
	defer rt.lock(d.ConversationID)()
	cv, err := rt.store.Conversation(rt.ctx, d.ConversationID)
	if err != nil {
		if errors.Is(err, sessions.ErrNotFound) {
			return rt.releaseLocked(d.ConversationID)
		}
		rt.fail("read conversation", err, slog.String("conversation", d.ConversationID))
		return rt.releaseLocked(d.ConversationID) // the reconcile scan routes it again
	}
	if ts, err := rt.r.Task(cv.ID); err != nil || ts.Status != "active" || ts.RepID != d.RepID {
		return nil // settled already (released or reassigned meanwhile)
	}
	if cv.Status != sessions.StatusOpen || cv.Assignee != "" {
		return rt.settleLocked(cv)
	}
	// Fencing: a node whose lease lapsed (a long stall) may have lost the
	// conversation to another node, which then routes it itself.
	if ok, err := rt.state.Holds(rt.ctx, cv.ID, d.RepID); err != nil || !ok {
		if err != nil {
			rt.fail("check claim", err, slog.String("conversation", cv.ID))
		}
		return rt.releaseLocked(cv.ID)
	}
	to := d.RepID
	if _, _, err := rt.store.UpdateConversation(rt.ctx, cv.ID, sessions.ConversationUpdate{Assignee: &to, Event: d.Event()}); err != nil {
		rt.fail("record assignment", err, slog.String("conversation", cv.ID))
		return rt.releaseLocked(cv.ID)
	}
	return nil
}

// recordOverflow puts an overflow decision on the timeline, so the inbox
// shows that nobody took the conversation in time and what was done.
// Acting on it (booking the callback, inviting a message) is the
// channel's, not yet built.
func (rt *routing) recordOverflow(d router.Decision) {
	if _, _, err := rt.store.Append(rt.ctx, d.Event()); err != nil {
		rt.fail("record overflow", err, slog.String("conversation", d.ConversationID))
	}
}

// offerPayload is an offer event's payload from the router: the decision,
// and (sessions.Offer) the rep and, while the offer stands, its deadline.
type offerPayload struct {
	router.Decision
	Rep       string     `json:"rep"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// recordOffer puts an offer, or its end, on the timeline: the inbox shows
// the rep Accept and Decline while the latest offer event is theirs, and
// the API checks it before taking an answer.
func (rt *routing) recordOffer(d router.Decision) {
	p := offerPayload{Decision: d, Rep: d.RepID}
	if d.Kind == router.KindOffer {
		at := d.At.Add(rt.acceptTimeout(d.Queue)).UTC()
		p.ExpiresAt = &at
	}
	payload, err := json.Marshal(p)
	if err != nil {
		rt.fail("record offer", err, slog.String("conversation", d.ConversationID))
		return
	}
	ev := d.Event()
	ev.Kind, ev.Payload = sessions.KindOffer, payload
	if _, _, err := rt.store.Append(rt.ctx, ev); err != nil {
		rt.fail("record offer", err, slog.String("conversation", d.ConversationID))
	}
}

func (rt *routing) acceptTimeout(queue string) time.Duration {
	for _, q := range rt.r.Config().Queues {
		if q.Name == queue {
			return q.Offer.AcceptTimeout
		}
	}
	return 0
}

// answer acts on a rep's answer to an offer, appended by the API. Every
// node sees it; only the one whose router holds the offer acts (the
// others do not know the task), and an answer to an offer that ended
// meanwhile (expired, withdrawn) changes nothing.
func (rt *routing) answer(ev sessions.Event) {
	var o sessions.Offer
	if json.Unmarshal(ev.Payload, &o) != nil || o.Response == "" || ev.Author != "rep:"+o.Rep {
		return // the router's own offer events, or not a rep's answer
	}
	var ds []router.Decision
	var err error
	switch o.Response {
	case sessions.OfferAccepted:
		var d router.Decision
		if d, err = rt.r.Accept(rt.ctx, ev.ConversationID, o.Rep); err == nil {
			ds = []router.Decision{d}
		}
	case sessions.OfferDeclined:
		ds, err = rt.r.Decline(rt.ctx, ev.ConversationID, o.Rep)
	default:
		return
	}
	if errors.Is(err, router.ErrUnknownTask) || errors.Is(err, router.ErrNotOffered) {
		return
	}
	rt.apply(ds, err)
}

// ownerOnResolve makes the rep who resolved a conversation the owner of a
// customer who has none. Only the node whose router held the conversation
// calls it (it released it), so one event gives one update.
func (rt *routing) ownerOnResolve(ev sessions.Event) {
	rep, ok := strings.CutPrefix(ev.Author, "rep:")
	if !ok {
		return
	}
	if changeTo(ev.Payload) != sessions.StatusResolved {
		return
	}
	if _, err := rt.r.Rep(rep); err != nil {
		return
	}
	cust, err := rt.store.Customer(rt.ctx, ev.CustomerID)
	if err != nil || cust.Owner != "" {
		return
	}
	if _, err := rt.store.UpdateCustomer(rt.ctx, cust.ID, sessions.CustomerUpdate{Owner: &rep, Author: sessions.ChannelSystem}); err != nil {
		rt.fail("set owner", err, slog.String("customer", cust.ID))
	}
}

// timerLoop runs the router's timers: owner waits ending, rings widening,
// overflow, wrap-up ending.
func (rt *routing) timerLoop() {
	defer rt.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-rt.ctx.Done():
			return
		case now := <-t.C:
			if at, ok := rt.r.NextDeadline(); ok && !at.After(now) {
				rt.apply(rt.r.Tick(rt.ctx, now))
			}
		}
	}
}

// syncLoop renews the lease and syncs with the other nodes (cluster). It
// is a loop of its own so that nothing slow (a long reconcile) delays the
// heartbeat: a lapsed lease hands this node's conversations to others.
func (rt *routing) syncLoop() {
	defer rt.wg.Done()
	if rt.cluster == nil {
		return
	}
	t := time.NewTicker(rt.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-rt.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(rt.ctx, max(rt.cfg.SyncInterval, rt.cfg.NodeLease/3))
			if err := rt.cluster.Heartbeat(ctx, rt.cfg.NodeLease); err != nil {
				rt.fail("heartbeat", err)
			}
			cancel()
			rt.apply(rt.r.Sync(rt.ctx))
		}
	}
}

// reconcileLoop reconciles every reconcile_interval.
func (rt *routing) reconcileLoop() {
	defer rt.wg.Done()
	t := time.NewTicker(rt.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-rt.ctx.Done():
			return
		case <-t.C:
			rt.reconcile(false)
		}
	}
}

// reconcile compares the router with the store and fixes what differs:
// tasks whose conversation moved on without this node seeing the event;
// (cluster) conversations held by nodes whose lease lapsed; open
// conversations that no router holds, which are routed (unassigned) or
// adopted (assigned). With all set (start, or after the feed fell behind)
// every open or pending conversation is looked at. Else, in a cluster,
// open conversations that no live node holds and that are unchanged for
// reconcile_after; on one node, unassigned ones, and only after a step
// failed (nothing else can leave one behind).
func (rt *routing) reconcile(all bool) {
	for _, ts := range rt.r.Tasks() {
		if rt.ctx.Err() != nil {
			return
		}
		rt.apply(rt.settle(ts.ConversationID))
	}
	if rt.cluster != nil {
		orphans, err := rt.cluster.Orphans(rt.ctx)
		if err != nil {
			rt.fail("list orphans", err)
		}
		for _, conv := range orphans {
			rt.apply(rt.takeOver(conv))
		}
	}
	if rt.cluster == nil && !all && !rt.dirty.Swap(false) {
		// One node sees every event it did not fail on: the listing (a
		// scan of every conversation in the bolt store) is needed only
		// after a failure. In a cluster it is, since any node may fail.
		return
	}
	statuses := []sessions.ConversationStatus{sessions.StatusOpen}
	if all {
		statuses = append(statuses, sessions.StatusPending)
	}
	for _, st := range statuses {
		q := sessions.ConversationQuery{Status: st, Limit: 500}
		for {
			page, next, err := rt.store.Conversations(rt.ctx, q)
			if err != nil {
				rt.fail("list conversations", err)
				return
			}
			var ids []string
			for _, cv := range page {
				if _, err := rt.r.Task(cv.ID); err == nil {
					continue
				}
				if !all && time.Since(cv.UpdatedAt) < rt.cfg.ReconcileAfter {
					continue // the feed is probably on it
				}
				if !all && rt.cluster == nil && cv.Assignee != "" {
					continue // not a task here, and nobody else's
				}
				ids = append(ids, cv.ID)
			}
			if rt.cluster != nil {
				// What a live node holds is that node's business.
				if ids, err = rt.cluster.Unheld(rt.ctx, ids); err != nil {
					rt.fail("list unheld", err)
					return
				}
			}
			for _, id := range ids {
				rt.apply(rt.settle(id))
			}
			if next == "" || rt.ctx.Err() != nil {
				break
			}
			q.Cursor = next
		}
	}
}

// takeOver handles a conversation held by a dead node: settled like any
// other, and if the conversation is over, its claim is freed.
func (rt *routing) takeOver(conv string) []router.Decision {
	defer rt.lock(conv)()
	if _, err := rt.r.Task(conv); err == nil {
		return nil
	}
	cv, err := rt.store.Conversation(rt.ctx, conv)
	if err != nil && !errors.Is(err, sessions.ErrNotFound) {
		rt.fail("read conversation", err, slog.String("conversation", conv))
		return nil
	}
	if err != nil || !cv.Status.Active() || (cv.Assignee == "" && cv.Status != sessions.StatusOpen) {
		// Unclaim does nothing if a live node took it over meanwhile.
		if err := rt.cluster.Unclaim(rt.ctx, conv, ""); err != nil {
			rt.fail("free orphan", err, slog.String("conversation", conv))
		}
		return nil
	}
	return rt.settleLocked(cv)
}

// RepStatus and SetPresence make routing the API's api.Routing.
var _ api.Routing = (*routing)(nil)

func (rt *routing) RepStatus(id string) (api.RepRouting, bool) {
	st, err := rt.r.Rep(id)
	if err != nil {
		return api.RepRouting{}, false
	}
	capacity := st.Capacity
	if capacity == 0 {
		capacity = rt.r.Config().Capacity
	}
	if capacity == 0 {
		capacity = 100
	}
	tier := st.Tier
	if tier == 0 {
		tier = 1
	}
	return api.RepRouting{Presence: string(st.Presence), Used: st.Used, Capacity: capacity, Active: st.Active,
		Skills: st.Skills, Languages: st.Languages, Tier: tier}, true
}

func (rt *routing) notifyPresence() {
	if rt.onPresenceChange != nil {
		rt.onPresenceChange()
	}
}

func (rt *routing) SetPresence(_ context.Context, rep, presence string) error {
	// The routing context, not the request's: the assignments this makes
	// are written even if the client hangs up.
	ds, err := rt.r.SetPresence(rt.ctx, rep, router.Presence(presence))
	rt.apply(ds)
	rt.notifyPresence()
	if errors.Is(err, router.ErrUnknownRep) {
		return fmt.Errorf("%w: rep %s is not routed", sessions.ErrNotFound, rep)
	}
	return err
}
