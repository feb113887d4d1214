package sessions

import (
	"context"
	"errors"
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

// Close stops dispatching and ends every watcher with ErrClosed.
func (f *Fanout) Close() {
	f.cancel()
	<-f.done
}
