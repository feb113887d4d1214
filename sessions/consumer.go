package sessions

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"
)

// ErrStopped is WaitHandled's answer once the consumer has stopped and the
// watermark can no longer move.
var ErrStopped = errors.New("sessions: feed consumer stopped")

// ConsumerOptions configures NewConsumer.
type ConsumerOptions struct {
	// Handle is called with each event of the feed. Events of one customer
	// are handled one at a time, in feed order; with Workers > 1 events of
	// different customers are handled concurrently (sharded by customer
	// id). ctx ends with NewConsumer's or when Close is called; events
	// still queued then are dropped, not handled (when the store closes,
	// they are handled). Set Handle or HandleBatch, not both.
	Handle func(ctx context.Context, ev Event)
	// HandleBatch, instead of Handle, takes the events a worker found
	// queued at once (at most 256, in feed order, several customers
	// mixed), for a handler that writes once per batch rather than once
	// per event (the webhook dispatcher's outbox fsync). evs is reused
	// after the call returns. The watermarks of its events move when it
	// returns.
	HandleBatch func(ctx context.Context, evs []Event)
	// Workers is how many events (or batches) are handled at once; zero
	// means 1.
	Workers int
	// OnGap is called when the subscription was lost (ErrSlow, a broken
	// Valkey connection, anything but the context ending or the store
	// closing) and has been renewed: events in between may be missed, so
	// the consumer catches up from the store. It is called after the new
	// subscription exists and before any of its events is handled, after
	// every handler of the old one returned; events arriving meanwhile wait
	// in the new subscription's buffer (SubscriptionBuffer), so a long
	// catch-up belongs in a goroutine of its own. Nil means nothing to do.
	OnGap func(ctx context.Context, cause error)
	// Forget is how long a customer's watermark is kept after the last of
	// its events was handled, so a long-running node holds watermarks only
	// for the customers active lately. Zero means 10 minutes.
	Forget time.Duration
	// Logger is told when the feed is lost and when subscribing again
	// fails; nil discards (the caller's OnGap says what it does about it).
	Logger *slog.Logger
}

const (
	// consumerQueue is each worker's queue. When the workers fall this
	// far behind the reader stops taking events, the subscription's
	// buffer fills, and the store cuts it off with ErrSlow: a gap, caught
	// up by OnGap, rather than unbounded memory.
	consumerQueue = 256
	// consumerBatch is the most events one HandleBatch call gets.
	consumerBatch = 256
	// Subscribing again after a failure waits resubscribeFirst, doubling
	// up to resubscribeMax.
	resubscribeFirst = 50 * time.Millisecond
	resubscribeMax   = 5 * time.Second
	defaultForget    = 10 * time.Minute
)

// Consumer follows the store's change feed for as long as its context
// lives: it subscribes, hands every event to Handle, and when the
// subscription is lost it subscribes again and calls OnGap so the caller
// catches up from the store. Every part of the gateway that follows the
// feed (routing, the inbox hub, the webhook dispatcher, Fanout) is one.
//
// Its watermarks say how far each customer's events were handled, so a
// test can wait for an input to be handled before asserting what it did
// (or did not) cause.
type Consumer struct {
	store  Store
	o      ConsumerOptions
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	seed   maphash.Seed
	queues []chan Event
	// inflight counts the events given to the workers and not yet handled
	// (or dropped); only the reader goroutine adds and waits.
	inflight sync.WaitGroup
	workers  sync.WaitGroup
	done     chan struct{}

	mu      sync.Mutex
	marks   map[string]mark
	changed chan struct{} // closed when a mark moves; nil while nobody waits
	swept   time.Time     // the last sweep of marks
}

// mark is a customer's watermark: seq handled, at that time.
type mark struct {
	seq uint64
	at  time.Time
}

// NewConsumer subscribes (before it returns, so nothing appended after it
// returns is missed; the first Subscribe error is returned) and starts
// consuming until ctx ends, Close is called or the store closes.
// Resubscribes with backoff (50 ms doubling to 5 s) for as long as ctx
// lives.
func NewConsumer(ctx context.Context, store Store, o ConsumerOptions) (*Consumer, error) {
	switch {
	case store == nil:
		return nil, fmt.Errorf("sessions: consumer without a store: %w", ErrInvalid)
	case (o.Handle == nil) == (o.HandleBatch == nil):
		return nil, fmt.Errorf("sessions: consumer needs one of Handle and HandleBatch: %w", ErrInvalid)
	case o.Workers < 0:
		return nil, fmt.Errorf("sessions: consumer with %d workers: %w", o.Workers, ErrInvalid)
	case o.Forget < 0:
		return nil, fmt.Errorf("sessions: consumer forgetting after %v: %w", o.Forget, ErrInvalid)
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	if o.Forget == 0 {
		o.Forget = defaultForget
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Consumer{store: store, o: o, log: log, seed: maphash.MakeSeed(), done: make(chan struct{}),
		marks: map[string]mark{}, swept: time.Now()}
	c.ctx, c.cancel = context.WithCancel(ctx)
	sub, err := store.Subscribe(c.ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.queues = make([]chan Event, o.Workers)
	for i := range c.queues {
		c.queues[i] = make(chan Event, consumerQueue)
		c.workers.Add(1)
		go c.work(c.queues[i])
	}
	go c.run(sub)
	return c, nil
}

// Handled is the customer's watermark: every event of the customer with
// Seq <= the returned value that the feed delivered has been handled.
// It is 0 for a customer with no event handled within Forget.
func (c *Consumer) Handled(customerID string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.marks[customerID].seq
}

// WaitHandled blocks until Handled(customerID) >= seq or ctx ends
// (ctx.Err()), or the consumer stopped short of it (ErrStopped). A
// customer's watermark is forgotten Forget after its last event was
// handled; waiting for an event older than that blocks until a later
// event of the customer is handled, so wait right after the append whose
// handling you need.
func (c *Consumer) WaitHandled(ctx context.Context, customerID string, seq uint64) error {
	for {
		c.mu.Lock()
		if c.marks[customerID].seq >= seq {
			c.mu.Unlock()
			return nil
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			if c.Handled(customerID) >= seq {
				return nil
			}
			return ErrStopped
		}
	}
}

// Close stops consuming and waits for handlers in flight. It must not be
// called from Handle or OnGap.
func (c *Consumer) Close() {
	c.cancel()
	<-c.done
}

// Done is closed when the consumer has stopped (ctx ended, Close, store
// closed) and every handler has returned.
func (c *Consumer) Done() <-chan struct{} { return c.done }

// run is the reader: it shards the feed among the workers and renews the
// subscription when it is lost.
func (c *Consumer) run(sub *Subscription) {
	defer func() {
		// After the store closed, what was queued is still handled;
		// after ctx ended or Close, the workers drop it.
		for _, q := range c.queues {
			close(q)
		}
		c.workers.Wait()
		c.cancel()
		close(c.done)
	}()
	for {
		cause := c.consume(sub)
		if c.ctx.Err() != nil || errors.Is(cause, ErrClosed) {
			return
		}
		c.log.Warn("sessions: change feed lost; subscribing again", slog.Any("err", cause))
		if sub = c.resubscribe(); sub == nil {
			return
		}
		// Whatever the old subscription brought is handled before the
		// caller catches up, and nothing of the new one before it has.
		c.inflight.Wait()
		if c.ctx.Err() != nil {
			sub.Close()
			return
		}
		if c.o.OnGap != nil {
			c.o.OnGap(c.ctx, cause)
		}
	}
}

// consume hands sub's events to the workers until it ends, and says why.
func (c *Consumer) consume(sub *Subscription) error {
	for ev := range sub.Events() {
		q := c.queues[c.shard(ev.CustomerID)]
		c.inflight.Add(1)
		select {
		case q <- ev:
		case <-c.ctx.Done():
			c.inflight.Done()
			sub.Close()
			return c.ctx.Err()
		}
	}
	return sub.Err()
}

// shard is the worker of a customer's events.
func (c *Consumer) shard(customerID string) int {
	return int(maphash.String(c.seed, customerID) % uint64(len(c.queues)))
}

// resubscribe subscribes again, with backoff; nil when the consumer
// stops first.
func (c *Consumer) resubscribe() *Subscription {
	delay := resubscribeFirst
	for {
		sub, err := c.store.Subscribe(c.ctx)
		if err == nil {
			return sub
		}
		if c.ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return nil
		}
		c.log.Error("sessions: subscribing to the change feed", slog.Any("err", err), slog.Duration("retry_in", delay))
		t := time.NewTimer(delay)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, resubscribeMax)
	}
}

// work handles one shard's events, a batch of what is queued at a time.
func (c *Consumer) work(q <-chan Event) {
	defer c.workers.Done()
	batch := make([]Event, 0, consumerBatch)
	for ev := range q {
		batch = append(batch[:0], ev)
	fill:
		for len(batch) < cap(batch) {
			select {
			case ev, ok := <-q:
				if !ok {
					break fill
				}
				batch = append(batch, ev)
			default:
				break fill
			}
		}
		c.handle(batch)
		c.inflight.Add(-len(batch))
	}
}

// handle handles a batch and moves its watermarks; once the consumer is
// stopping, what is left is dropped.
func (c *Consumer) handle(batch []Event) {
	if c.o.HandleBatch != nil {
		if c.ctx.Err() == nil {
			c.o.HandleBatch(c.ctx, batch)
			c.advance(batch)
		}
		return
	}
	for i, ev := range batch {
		if c.ctx.Err() != nil {
			return
		}
		c.o.Handle(c.ctx, ev)
		c.advance(batch[i : i+1])
	}
}

// advance moves the watermarks of handled events, wakes the waiters, and
// now and then forgets the customers idle for Forget, so the map holds
// only those active lately.
func (c *Consumer) advance(evs []Event) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range evs {
		c.marks[ev.CustomerID] = mark{seq: max(c.marks[ev.CustomerID].seq, ev.Seq), at: now}
	}
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
	if now.Sub(c.swept) < c.o.Forget {
		return
	}
	c.swept = now
	// A new map rather than deletes: a Go map keeps the space of its
	// largest size, and a burst of customers must not pin it.
	kept := make(map[string]mark, len(c.marks)/2)
	for id, m := range c.marks {
		if now.Sub(m.at) < c.o.Forget {
			kept[id] = m
		}
	}
	c.marks = kept
}
