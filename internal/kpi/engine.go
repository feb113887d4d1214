package kpi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/router/routing"
	"github.com/omnigate/omnigate/sessions"
)

// Options are the engine's collaborators.
type Options struct {
	// Store keeps the counts; required.
	Store Store
	// Feed is the sessions store whose change feed is counted; required.
	Feed sessions.Store
	// Router is the routing configuration: which queue a channel's
	// contacts wait in, and each queue's service-level target and goal.
	Router router.Config
	// Now is the clock of rep-state time and of the live view; nil means
	// time.Now. Events are counted at their own time.
	Now func() time.Time
	// Names are reps' display names for the live view, by id; a rep
	// missing here shows by id.
	Names map[string]string
	// Metrics, when set, gets the live omnigate_kpi_* gauges.
	Metrics prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
}

// flushInterval is how often counts go to the store.
const flushInterval = time.Second

// Engine counts the feed into KPIs. See the package doc.
//
// mu guards everything below it; it is never held across a call out of
// the package except the store's Add and Load (which do not call back).
type Engine struct {
	cfg    Config
	store  Store
	feed   sessions.Store
	rcfg   router.Config
	names  map[string]string
	now    func() time.Time
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	cons   *sessions.Consumer

	mu      sync.Mutex
	pending map[int64]Counts // counted, not yet in the store
	today   map[int64]Counts // today's slots: stored at start, plus counted since
	day     int64            // the slot today starts at
	convs   map[string]*conv
	reps    map[string]*repLive
	seen    map[string]time.Time // customer to their last contact, for repeats
	version uint64               // bumped by every change the live view shows
}

// conv is a conversation as the engine follows it.
type conv struct {
	channel  string    // the channel the contact started on; "" until its first message
	queue    string    // where it waits (or waited)
	opened   time.Time // the contact's start: its first customer message
	waiting  time.Time // since when it waits for a rep; zero when it does not
	rep      string    // assignee; "" none
	assigned time.Time // the first time a rep took it
	answered bool      // a rep replied
	channels []string  // inbound channels seen, for merged contacts
}

// New builds the engine; Start runs it.
func New(cfg Config, o Options) (*Engine, error) {
	if o.Store == nil || o.Feed == nil {
		return nil, errors.New("kpi: Store and Feed are required")
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg.WithDefaults(), store: o.Store, feed: o.Feed, rcfg: o.Router, names: o.Names, now: o.Now,
		log: o.Logger.With("part", "kpi"), pending: map[int64]Counts{}, today: map[int64]Counts{},
		convs: map[string]*conv{}, reps: map[string]*repLive{}, seen: map[string]time.Time{}}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if o.Metrics != nil {
		if err := o.Metrics.Register(liveCollector{e}); err != nil {
			return nil, fmt.Errorf("kpi: %w", err)
		}
	}
	return e, nil
}

// Start loads today's counts from the store (a restart keeps the day),
// subscribes to the feed and starts adding counts to the store every
// second.
func (e *Engine) Start() error {
	now := e.now()
	e.day = slotOf(now.UTC().Truncate(24 * time.Hour))
	stored, err := e.store.Load(e.ctx, e.day, e.day+86400)
	if err != nil {
		return fmt.Errorf("kpi: loading today: %w", err)
	}
	for _, c := range stored {
		for k := range c {
			if dim, _, _, _ := splitKey(k); dim != dimAll && dim != dimQueue {
				delete(c, k)
			}
		}
	}
	e.mu.Lock()
	e.today = stored
	e.mu.Unlock()
	cons, err := sessions.NewConsumer(e.ctx, e.feed, sessions.ConsumerOptions{HandleBatch: e.handleBatch, Logger: e.log})
	if err != nil {
		return fmt.Errorf("kpi: %w", err)
	}
	e.cons = cons
	e.wg.Go(func() {
		t := time.NewTicker(flushInterval)
		defer t.Stop()
		for {
			select {
			case <-e.ctx.Done():
				return
			case <-t.C:
				if err := e.Flush(e.ctx); err != nil && e.ctx.Err() == nil {
					e.log.Warn("kpi: flushing counts", slog.Any("error", err))
				}
			}
		}
	})
	return nil
}

// Close stops following the feed and adds what was counted to the store
// (the store is the caller's to close).
func (e *Engine) Close() {
	e.cancel()
	if e.cons != nil {
		e.cons.Close()
	}
	e.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		e.log.Warn("kpi: last flush", slog.Any("error", err))
	}
}

// WaitHandled waits until the engine has counted the customer's events up
// to seq, so a test can read a report that includes them.
func (e *Engine) WaitHandled(ctx context.Context, customerID string, seq uint64) error {
	if e.cons == nil {
		return errors.New("kpi: not started")
	}
	return e.cons.WaitHandled(ctx, customerID, seq)
}

// Flush accrues the reps' time in their states up to now and adds what
// was counted to the store, if this node leads; otherwise it drops it
// (the leader counts the same events).
func (e *Engine) Flush(ctx context.Context) error {
	now := e.now()
	e.mu.Lock()
	for id, r := range e.reps {
		e.accrue(id, r, now)
	}
	deltas := e.pending
	e.pending = map[int64]Counts{}
	e.pruneLocked(now)
	e.mu.Unlock()
	if len(deltas) == 0 {
		return nil
	}
	lead, err := e.store.Lead(ctx)
	if err != nil || !lead {
		return err
	}
	if err := e.store.Add(ctx, deltas); err != nil {
		// Keep them for the next flush rather than lose them.
		e.mu.Lock()
		for slot, d := range deltas {
			e.countsLocked(slot, e.pending).merge(d)
		}
		e.mu.Unlock()
		return err
	}
	return nil
}

// pruneLocked forgets customers whose last contact is more than a day
// old and, at midnight UTC, yesterday's slots of the live view.
func (e *Engine) pruneLocked(now time.Time) {
	if day := slotOf(now.UTC().Truncate(24 * time.Hour)); day != e.day {
		e.day = day
		for slot := range e.today {
			if slot < day {
				delete(e.today, slot)
			}
		}
		for cust, at := range e.seen {
			if now.Sub(at) > repeatWindow {
				delete(e.seen, cust)
			}
		}
	}
}

func (e *Engine) countsLocked(slot int64, in map[int64]Counts) Counts {
	c := in[slot]
	if c == nil {
		c = Counts{}
		in[slot] = c
	}
	return c
}

// count adds n to counter at time at, under dims, in both the pending
// counts and the live view.
func (e *Engine) count(at time.Time, counter string, n int64, dims ...string) {
	slot := slotOf(at)
	e.countsLocked(slot, e.pending).add(counter, n, dims...)
	if slot >= e.day {
		// The live view needs the team's and the queues' counts only.
		var q []string
		for i := 0; i+1 < len(dims); i += 2 {
			if dims[i] == dimQueue {
				q = dims[i : i+2]
			}
		}
		e.countsLocked(slot, e.today).add(counter, n, q...)
	}
	e.version++
}

// queue is the configuration of the queue named name, else of the
// channel's queue.
func (e *Engine) queue(name, channel string) router.QueueConfig {
	for _, q := range e.rcfg.Queues {
		if q.Name == name {
			return q
		}
	}
	return e.rcfg.QueueOf(channel)
}

// RepState is told each change of a rep's state (routing.OnRepState).
func (e *Engine) RepState(st routing.RepState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.reps[st.Rep]
	if r == nil {
		r = &repLive{}
		e.reps[st.Rep] = r
	}
	r.presence, r.reason, r.since = st.Presence, st.Reason, st.Since
	e.transition(st.Rep, r, st.Since)
	e.version++
}
