package sessions

import (
	"context"
	"errors"
	"fmt"
)

// Fanout shares one store subscription among many per-customer watchers.
// A node holds one; every visitor socket watches its own customer through
// it, so an event costs one channel send per interested socket rather than
// one per socket on the node, and each watcher's buffer stays small.
type Fanout struct {
	store  Store
	hub    *hub
	cancel context.CancelFunc
	done   chan struct{}
}

// NewFanout subscribes to the store and starts dispatching. Close it when
// done; it also ends when the store closes.
func NewFanout(store Store) (*Fanout, error) {
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := store.Subscribe(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	f := &Fanout{store: store, hub: newHub(), cancel: cancel, done: make(chan struct{})}
	go f.run(ctx, sub)
	return f, nil
}

func (f *Fanout) run(ctx context.Context, sub *Subscription) {
	defer close(f.done)
	defer f.hub.close()
	for {
		for ev := range sub.Events() {
			f.hub.publish(ev)
		}
		if !errors.Is(sub.Err(), ErrSlow) {
			return
		}
		// Resubscribe before cutting the watchers off, so every watcher
		// that comes back (and catches up from the timeline) is already
		// covered by the new subscription.
		next, err := f.store.Subscribe(ctx)
		if err != nil {
			return
		}
		f.hub.dropAll(ErrSlow)
		sub = next
	}
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
	f.cancel()
	<-f.done
}
