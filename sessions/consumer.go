package sessions

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"
)

// ConsumerOptions configures NewConsumer.
type ConsumerOptions struct {
	// Handle is called with each event of the feed. Events of one customer
	// are handled one at a time, in feed order; with Workers > 1 events of
	// different customers are handled concurrently (sharded by customer
	// id). Exactly one of Handle and HandleBatch is required.
	Handle func(ctx context.Context, ev Event)
	// HandleBatch, instead of Handle, is called with the events that are
	// waiting, up to MaxBatch at once, in feed order, on one worker: for a
	// reader whose every step costs a write (the webhook outbox), so a
	// burst becomes a few writes. Workers must be 0 or 1 with it.
	HandleBatch func(ctx context.Context, evs []Event)
	// MaxBatch bounds HandleBatch's batches; zero means 256.
	MaxBatch int
	// Workers is how many events are handled at once; zero means 1.
	Workers int
	// OnGap is called when the subscription was lost (ErrSlow, a broken
	// Valkey connection: anything but the context ending or the store
	// closing) and has been renewed: events in between may be missed, so
	// the consumer catches up from the store. It is called after the new
	// subscription exists, after every handler of the old one returned,
	// and before any event of the new one is handled. Nil means nothing to
	// do.
	OnGap func(ctx context.Context, cause error)
	// Logger gets a warning for each lost subscription; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Consumer follows the store's change feed for as long as its context
// lives: the one subscribe, resubscribe-with-backoff and catch-up loop
// that every reader of the whole feed (routing, the inbox hub, the
// webhook dispatcher, Fanout) goes through.
//
// It also keeps a watermark per customer, the highest sequence handled,
// so a test (or a caller that must know an event took effect) can wait
// for it instead of sleeping. Watermarks are kept for customers with an
// event handled in the last WatermarkTTL; a customer quiet for longer is
// forgotten, so memory follows the active customers, not every customer
// ever seen.
type Consumer struct {
	store Store
	o     ConsumerOptions
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	work   []chan []Event // one event each, or a HandleBatch batch
	busy   sync.WaitGroup // batches dispatched and not yet handled

	mu     sync.Mutex
	marks  map[string]*watermark
	pruned time.Time // last prune
}

// WatermarkTTL is how long a customer's watermark is kept after the last
// event of theirs was handled.
const WatermarkTTL = 5 * time.Minute

type watermark struct {
	seq     uint64
	at      time.Time
	waiters []waiter
}

type waiter struct {
	seq uint64
	ch  chan struct{}
}

// Resubscribe backoff: the first retry after 50 ms, doubling to 5 s.
const (
	resubscribeFirst = 50 * time.Millisecond
	resubscribeMax   = 5 * time.Second
)

// NewConsumer subscribes (before it returns, so nothing appended after it
// returns is missed; the first Subscribe error is returned) and consumes
// until ctx ends, Close is called or the store closes.
func NewConsumer(ctx context.Context, store Store, o ConsumerOptions) (*Consumer, error) {
	if (o.Handle == nil) == (o.HandleBatch == nil) {
		return nil, errors.New("sessions: a consumer needs one of Handle and HandleBatch")
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.HandleBatch != nil && o.Workers > 1 {
		return nil, errors.New("sessions: HandleBatch runs on one worker")
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	sub, err := store.Subscribe(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	c := &Consumer{store: store, o: o, log: log, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		work: make([]chan []Event, o.Workers), marks: map[string]*watermark{}, pruned: time.Now()}
	for i := range c.work {
		c.work[i] = make(chan []Event, 256)
	}
	go c.run(sub)
	return c, nil
}

func (c *Consumer) run(sub *Subscription) {
	defer close(c.done)
	var workers sync.WaitGroup
	for _, ch := range c.work {
		workers.Go(func() {
			for evs := range ch {
				if c.o.HandleBatch != nil {
					c.o.HandleBatch(c.ctx, evs)
				} else {
					c.o.Handle(c.ctx, evs[0])
				}
				c.handled(evs)
				c.busy.Done()
			}
		})
	}
	defer func() {
		for _, ch := range c.work {
			close(ch)
		}
		workers.Wait()
		sub.Close()
	}()
	for {
		if !c.dispatch(sub) {
			return
		}
		cause := sub.Err()
		if c.ctx.Err() != nil || errors.Is(cause, ErrClosed) {
			return
		}
		c.log.Warn("sessions: change feed lost; subscribing again", slog.Any("error", cause))
		next, ok := c.resubscribe()
		if !ok {
			return
		}
		sub = next
		c.busy.Wait() // every handler of the old subscription returned
		if c.o.OnGap != nil {
			c.o.OnGap(c.ctx, cause)
		}
	}
}

// dispatch hands sub's events to the workers until sub ends; false when
// the context ended first.
func (c *Consumer) dispatch(sub *Subscription) bool {
	for ev := range sub.Events() {
		evs := []Event{ev}
		if c.o.HandleBatch != nil {
			evs = c.drain(sub, evs)
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(ev.CustomerID))
		c.busy.Add(1)
		select {
		case c.work[h.Sum32()%uint32(len(c.work))] <- evs:
		case <-c.ctx.Done():
			c.busy.Done()
			return false
		}
	}
	return true
}

// drain adds the events already waiting on sub to evs, up to MaxBatch.
func (c *Consumer) drain(sub *Subscription, evs []Event) []Event {
	for len(evs) < c.o.MaxBatch {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		default:
			return evs
		}
	}
	return evs
}

// resubscribe subscribes again, backing off while the store refuses, for
// as long as the context lives and the store is open.
func (c *Consumer) resubscribe() (*Subscription, bool) {
	delay := resubscribeFirst
	for {
		sub, err := c.store.Subscribe(c.ctx)
		if err == nil {
			return sub, true
		}
		if c.ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return nil, false
		}
		select {
		case <-c.ctx.Done():
			return nil, false
		case <-time.After(delay):
		}
		delay = min(2*delay, resubscribeMax)
	}
}

// handled moves the customers' watermarks past evs and wakes the waiters
// they pass; now and then it forgets customers quiet for WatermarkTTL.
func (c *Consumer) handled(evs []Event) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range evs {
		c.mark(ev, now)
	}
	if now.Sub(c.pruned) >= WatermarkTTL {
		c.pruned = now
		for id, m := range c.marks {
			if len(m.waiters) == 0 && now.Sub(m.at) >= WatermarkTTL {
				delete(c.marks, id)
			}
		}
	}
}

// mark moves ev's customer's watermark; the caller holds mu.
func (c *Consumer) mark(ev Event, now time.Time) {
	m := c.marks[ev.CustomerID]
	if m == nil {
		m = &watermark{}
		c.marks[ev.CustomerID] = m
	}
	m.at = now
	if ev.Seq > m.seq {
		m.seq = ev.Seq
	}
	kept := m.waiters[:0]
	for _, w := range m.waiters {
		if w.seq <= m.seq {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	m.waiters = kept
}

// Handled is the customer's watermark: every event of the customer with
// Seq up to it that the feed delivered has been handled. Zero for a
// customer with no event handled in the last WatermarkTTL.
func (c *Consumer) Handled(customerID string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.marks[customerID]; m != nil {
		return m.seq
	}
	return 0
}

// WaitHandled blocks until Handled(customerID) >= seq, or returns ctx's
// error. It is meant for events appended recently (see WatermarkTTL), and
// an event the feed lost is never handled here (OnGap catches up by other
// means), so give it a deadline.
func (c *Consumer) WaitHandled(ctx context.Context, customerID string, seq uint64) error {
	c.mu.Lock()
	m := c.marks[customerID]
	if m == nil {
		m = &watermark{at: time.Now()}
		c.marks[customerID] = m
	}
	if m.seq >= seq {
		c.mu.Unlock()
		return nil
	}
	w := waiter{seq: seq, ch: make(chan struct{})}
	m.waiters = append(m.waiters, w)
	c.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		for i, x := range m.waiters {
			if x.ch == w.ch {
				m.waiters = append(m.waiters[:i], m.waiters[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
}

// Close stops consuming and waits for the handlers in flight.
func (c *Consumer) Close() {
	c.cancel()
	<-c.done
}

// Done is closed when the consumer has stopped: its context ended, Close
// was called or the store closed.
func (c *Consumer) Done() <-chan struct{} { return c.done }
