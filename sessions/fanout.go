package sessions

import (
	"context"
	"fmt"
)

// Fanout shares one store subscription among many per-customer watchers.
// A node holds one; every visitor socket watches its own customer through
// it, so an event costs one channel send per interested socket rather than
// one per socket on the node, and each watcher's buffer stays small.
type Fanout struct {
	hub  *hub
	feed *Consumer
	done chan struct{}
}

// NewFanout subscribes to the store and starts dispatching. Close it when
// done; it also ends when the store closes.
func NewFanout(store Store) (*Fanout, error) {
	f := &Fanout{hub: newHub(), done: make(chan struct{})}
	feed, err := NewConsumer(context.Background(), store, ConsumerOptions{
		Handle: func(_ context.Context, ev Event) { f.hub.publish(ev) },
		// Called once the new subscription exists, so every watcher that
		// comes back (and catches up from the timeline) is already
		// covered by it.
		OnGap: func(context.Context, error) { f.hub.dropAll(ErrSlow) },
	})
	if err != nil {
		return nil, err
	}
	f.feed = feed
	go func() {
		<-feed.Done()
		f.hub.close()
		close(f.done)
	}()
	return f, nil
}

// Watch delivers the customer's events appended from now on. See
// Subscription for how it ends.
func (f *Fanout) Watch(ctx context.Context, customerID string) (*Subscription, error) {
	return f.hub.watch(ctx, customerID, WatchBuffer)
}

// WatchFunc calls fn with each event of the customer appended from now on,
// in the order the store published them, on the Fanout's dispatch
// goroutine: fn must not block (hand the event on, don't process it there)
// and must not call cancel. It costs no goroutine and no buffer per
// watcher. fn is called with a zero Event and ErrSlow when the Fanout's
// own subscription fell behind and events may have been missed (the
// watcher stays registered: catch up from the timeline), and once with
// ErrClosed when the Fanout ends. cancel stops the calls: none is made
// after it returns. Like Watch, it only reports what comes next; see
// Follow for reading the timeline first.
func (f *Fanout) WatchFunc(customerID string, fn func(Event, error)) (cancel func(), err error) {
	if customerID == "" {
		return nil, fmt.Errorf("sessions: WatchFunc needs a customer: %w", ErrInvalid)
	}
	return f.hub.watchFunc(customerID, fn)
}

// Close stops dispatching and ends every watcher with ErrClosed.
func (f *Fanout) Close() {
	f.feed.Close()
	<-f.done
}
