package sessions

import (
	"context"
	"errors"
	"sync"
)

// SubscriptionBuffer is how many events a whole-store subscriber (a node's
// fan-out, the inbox hub) may lag before it is cut off with ErrSlow. Cutting
// off beats skipping: the subscriber knows it must catch up from the
// timeline, and nothing is silently lost.
const SubscriptionBuffer = 4096

// WatchBuffer is the lag allowed to one customer's watcher (a visitor's
// socket). It is small because there is one per connection and a channel's
// buffer is allocated up front; a watcher that overflows it is cut off and
// Follow catches up from the timeline.
const WatchBuffer = 16

// Subscription is a live stream of appended events. Read Events until it is
// closed, then Err says why: ErrSlow (fell behind: catch up from the
// timeline and subscribe again), ErrClosed (store closed), or the context's
// error.
type Subscription struct {
	c        chan Event         // nil for a callback watcher
	fn       func(Event, error) // set for a callback watcher (Fanout.WatchFunc)
	customer string             // "" for every customer
	stop     func() bool
	hub      *hub
	mu       sync.Mutex
	err      error
}

// Events is closed when the subscription ends.
func (s *Subscription) Events() <-chan Event { return s.c }

// Err is why Events was closed; nil while it is open.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Subscription) Close() { s.hub.drop(s, context.Canceled) }

// hub fans events out to local subscribers. Every store owns one: the
// in-process stores publish to it after commit; the Valkey store publishes
// what arrives over pub/sub, so events from every node reach every node. A
// Fanout owns one too, keyed by customer.
//
// publish never blocks: a subscriber with a full buffer is dropped. A
// callback watcher (watchFunc) is called under mu instead, so it must not
// block nor call back into the hub.
type hub struct {
	mu         sync.Mutex
	all        map[*Subscription]struct{}
	byCustomer map[string]map[*Subscription]struct{}
	closed     bool
}

func newHub() *hub {
	return &hub{all: map[*Subscription]struct{}{}, byCustomer: map[string]map[*Subscription]struct{}{}}
}

// subscribe registers a subscriber to every event.
func (h *hub) subscribe(ctx context.Context) (*Subscription, error) {
	return h.watch(ctx, "", SubscriptionBuffer)
}

// watch registers a subscriber to every event (customer "") or to one
// customer's.
func (h *hub) watch(ctx context.Context, customer string, buffer int) (*Subscription, error) {
	s := &Subscription{c: make(chan Event, buffer), customer: customer, hub: h}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if customer == "" {
		h.all[s] = struct{}{}
	} else {
		set := h.byCustomer[customer]
		if set == nil {
			set = map[*Subscription]struct{}{}
			h.byCustomer[customer] = set
		}
		set[s] = struct{}{}
	}
	h.mu.Unlock()
	// AfterFunc rather than a goroutine per subscriber: a node holds one
	// watcher per visitor socket, tens of thousands of them.
	s.mu.Lock()
	s.stop = context.AfterFunc(ctx, func() { h.drop(s, ctx.Err()) })
	s.mu.Unlock()
	return s, nil
}

// watchFunc registers fn for one customer's events. fn is called under
// h.mu with each event (err nil), with ErrSlow when events may have been
// missed (the watcher stays registered), and once with the reason when the
// hub ends it (ErrClosed); never after cancel returns.
func (h *hub) watchFunc(customer string, fn func(Event, error)) (cancel func(), err error) {
	s := &Subscription{fn: fn, customer: customer, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	set := h.byCustomer[customer]
	if set == nil {
		set = map[*Subscription]struct{}{}
		h.byCustomer[customer] = set
	}
	set[s] = struct{}{}
	return s.Close, nil
}

// idle reports whether no one is subscribed, so a publisher can skip
// decoding what no one would read.
func (h *hub) idle() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.all) == 0 && len(h.byCustomer) == 0
}

func (h *hub) publish(evs ...Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.all {
		h.send(s, evs)
	}
	for _, ev := range evs {
		for s := range h.byCustomer[ev.CustomerID] {
			h.send(s, []Event{ev})
		}
	}
}

// send delivers evs to s or drops s when its buffer is full. Caller holds mu.
func (h *hub) send(s *Subscription, evs []Event) {
	if s.fn != nil {
		for _, ev := range evs {
			s.fn(ev, nil)
		}
		return
	}
	for _, ev := range evs {
		select {
		case s.c <- ev:
		default:
			h.dropLocked(s, ErrSlow)
			return
		}
	}
}

func (h *hub) drop(s *Subscription, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(s, err)
}

func (h *hub) dropLocked(s *Subscription, err error) {
	if s.customer == "" {
		if _, ok := h.all[s]; !ok {
			return
		}
		delete(h.all, s)
	} else {
		set := h.byCustomer[s.customer]
		if _, ok := set[s]; !ok {
			return
		}
		delete(set, s)
		if len(set) == 0 {
			delete(h.byCustomer, s.customer)
		}
	}
	s.mu.Lock()
	s.err = err
	if s.stop != nil {
		s.stop()
	}
	s.mu.Unlock()
	if s.fn != nil {
		if !errors.Is(err, context.Canceled) { // not the watcher's own cancel
			s.fn(Event{}, err)
		}
		return
	}
	close(s.c)
}

// dropAll ends every subscription with err; the hub stays open. Callback
// watchers are told ErrSlow and stay registered: they catch up from the
// timeline while the new events keep coming.
func (h *hub) dropAll(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropAllLocked(err)
}

func (h *hub) dropAllLocked(err error) {
	for s := range h.all {
		h.dropLocked(s, err)
	}
	for _, set := range h.byCustomer {
		for s := range set {
			if s.fn != nil && errors.Is(err, ErrSlow) {
				s.fn(Event{}, err)
				continue
			}
			h.dropLocked(s, err)
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.dropAllLocked(ErrClosed)
}
