package routing

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// Cluster is what nodes sharing a router.State coordinate through besides
// the State itself: leases, the conversations of dead nodes, and which
// reps have an inbox socket on some node. router.ValkeyState made with
// NewValkeyNodeState is one; a State that is not a Cluster is one node's.
type Cluster interface {
	router.State
	// Node is this node's name, unique per process.
	Node() string
	// Heartbeat renews this node's lease for lease.
	Heartbeat(ctx context.Context, lease time.Duration) error
	// Leave gives the lease up, so other nodes take over at once.
	Leave(ctx context.Context) error
	// Orphans lists conversations held by nodes whose lease lapsed.
	Orphans(ctx context.Context) ([]string, error)
	// Unheld filters ids down to those no live node holds.
	Unheld(ctx context.Context, ids []string) ([]string, error)
	// SetConnected records whether rep has an inbox socket on this node;
	// Connected whether they have one on any live node.
	SetConnected(ctx context.Context, rep string, on bool) error
	Connected(ctx context.Context, rep string) (bool, error)
}

var _ Cluster = (*router.ValkeyState)(nil)

// Options are the service's collaborators.
type Options struct {
	// Store is the sessions store whose feed drives routing and where
	// decisions are written. Required.
	Store sessions.Store
	// State is where the router claims; a Cluster makes this service a
	// cluster node. Nil means a router.MemoryState (one node).
	State router.State
	// Metrics, when set, gets omnigate_routing_* metrics.
	Metrics prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Clock is the router's and the reconcile scan's time; nil means the
	// system clock.
	Clock router.Clock
}

// Service runs a router for the gateway. See the package doc.
//
// Locks: convMu stripes serialize the work on one conversation (settle,
// record); they are never held while another stripe is taken, and
// decisions produced under one are applied after it is released. mu
// guards the presence maps and the presence listeners. Neither is held
// across a call out of the package.
type Service struct {
	cfg     Config
	store   sessions.Store
	r       *router.Router
	state   router.State
	cluster Cluster // nil on a single node
	log     *slog.Logger
	clock   router.Clock
	langs   map[string]bool
	metrics *metrics

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	feed   *sessions.Consumer

	convMu [64]sync.Mutex
	dirty  atomic.Bool // a step failed since the last full reconcile

	presenceCh chan presenceChange
	mu         sync.Mutex
	sockets    map[string]bool        // reps with an inbox socket on this node
	grace      map[string]*time.Timer // reps whose last socket here closed
	awaySince  map[string]time.Time   // reps seen away or offline, since when
	listeners  []func()               // told after a presence changed

	observeMu      sync.Mutex          // one observe at a time (states.go)
	reasons        map[string]string   // break reason each rep last set
	states         map[string]RepState // each rep's state as last observed
	stateListeners []func(RepState)
}

type metrics struct {
	decisions *prometheus.CounterVec
	failures  *prometheus.CounterVec
}

// New builds the router from rcfg (its reps complete: ids, names, roles
// and routing attributes) on o.State, and the service around it; Start
// runs it.
func New(cfg Config, rcfg router.Config, o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("routing: a store is required")
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.State == nil {
		o.State = router.NewMemoryState()
	}
	if o.Clock == nil {
		o.Clock = router.SystemClock{}
	}
	r, err := router.New(rcfg, router.Options{State: o.State, Clock: o.Clock})
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	s := &Service{cfg: cfg.WithDefaults(), store: o.Store, r: r, state: o.State, log: o.Logger, clock: o.Clock,
		langs: map[string]bool{}, presenceCh: make(chan presenceChange, 1024),
		sockets: map[string]bool{}, grace: map[string]*time.Timer{}, awaySince: map[string]time.Time{},
		reasons: map[string]string{}, states: map[string]RepState{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("part", "routing")
	if c, ok := o.State.(Cluster); ok {
		s.cluster = c
		s.log = s.log.With("node", c.Node())
	}
	for _, rep := range rcfg.Reps {
		for _, l := range rep.Languages {
			s.langs[strings.ToLower(l)] = true
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if o.Metrics != nil {
		m := &metrics{
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
			if err := o.Metrics.Register(c); err != nil {
				return nil, err
			}
		}
		s.metrics = m
	}
	return s, nil
}

// Start joins the cluster (renewing the lease and syncing once),
// subscribes to the change feed (nothing appended from now on is missed),
// reconciles everything once and starts the loops.
func (s *Service) Start() error {
	if s.cluster != nil {
		if err := s.cluster.Heartbeat(s.ctx, s.cfg.NodeLease); err != nil {
			return fmt.Errorf("routing: %w", err)
		}
		s.apply(s.r.Sync(s.ctx))
	}
	feed, err := sessions.NewConsumer(s.ctx, s.store, sessions.ConsumerOptions{
		Handle: s.handle, Workers: feedWorkers, Logger: s.log,
		OnGap: func(context.Context, error) { s.reconcile(true) },
	})
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	s.feed = feed
	s.reconcile(true)
	s.every(timerInterval, s.tick)
	if s.cluster != nil {
		s.every(s.cfg.SyncInterval, s.sync)
	}
	s.every(s.cfg.ReconcileInterval, func() { s.reconcile(false) })
	s.every(reassignInterval, s.reassignAway)
	s.every(stateInterval, s.observe)
	s.wg.Go(s.presenceLoop)
	return nil
}

// every runs fn every d, on a goroutine of its own, until Close.
func (s *Service) every(d time.Duration, fn func()) {
	s.wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
				fn()
			}
		}
	})
}

// feedWorkers is how many events are handled at once. Handling one is a
// few store round trips, so one at a time would make the feed's latency
// the sum of everyone's; the consumer shards by customer, so each
// customer's events are still handled in order.
const feedWorkers = 8

// WaitHandled waits until the service has handled the customer's events
// up to seq (the feed's watermark), so a test can check what routing did,
// or did not do, with an event.
func (s *Service) WaitHandled(ctx context.Context, customerID string, seq uint64) error {
	if s.feed == nil {
		return errors.New("routing: not started")
	}
	return s.feed.WaitHandled(ctx, customerID, seq)
}

// Close stops the loops and, in a cluster, gives up the lease at once so
// the other nodes take over what this one held.
func (s *Service) Close() {
	s.cancel()
	if s.feed != nil {
		s.feed.Close()
	}
	s.mu.Lock()
	for _, t := range s.grace {
		t.Stop()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if s.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := s.cluster.Leave(ctx); err != nil {
			s.log.Warn("routing: leaving the cluster", slog.Any("error", err))
		}
		cancel()
	}
}

func (s *Service) lock(conv string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(conv))
	m := &s.convMu[h.Sum32()%uint32(len(s.convMu))]
	m.Lock()
	return m.Unlock
}

func (s *Service) fail(step string, err error, attrs ...any) {
	if errors.Is(err, context.Canceled) && s.ctx.Err() != nil {
		return // shutting down
	}
	s.dirty.Store(true)
	if s.metrics != nil {
		s.metrics.failures.WithLabelValues(step).Inc()
	}
	s.log.Warn("routing: "+step, append(attrs, slog.Any("error", err))...)
}

// apply acts on decisions, in order, and on what acting on them decided.
func (s *Service) apply(ds []router.Decision, errs ...error) {
	for _, err := range errs {
		if err != nil {
			s.fail("router", err)
		}
	}
	for len(ds) > 0 {
		d := ds[0]
		ds = ds[1:]
		if s.metrics != nil {
			s.metrics.decisions.WithLabelValues(string(d.Kind)).Inc()
		}
		switch {
		case d.Assigns():
			ds = append(ds, s.record(d)...)
		case d.Kind == router.KindOverflow:
			s.recordOverflow(d)
		case d.Kind == router.KindOffer, d.Kind == router.KindOfferExpired,
			d.Kind == router.KindOfferDeclined, d.Kind == router.KindOfferWithdrawn:
			s.recordOffer(d)
		}
	}
}

// timerInterval is how often the router's timers are checked.
const timerInterval = 250 * time.Millisecond

// tick runs the router's timers that are due: owner waits ending, rings
// widening, overflow, wrap-up ending, offers expiring.
func (s *Service) tick() {
	now := s.clock.Now()
	if at, ok := s.r.NextDeadline(); ok && !at.After(now) {
		s.apply(s.r.Tick(s.ctx, now))
	}
}
