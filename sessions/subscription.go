package sessions

import (
	"context"
	"sync"
)

// SubscriptionBuffer is how many events a subscriber may lag before it is
// cut off with ErrSlow. Cutting off beats skipping: the subscriber knows it
// must catch up from the timeline, and nothing is silently lost.
const SubscriptionBuffer = 4096

// Subscription is a live stream of appended events. Read Events until it is
// closed, then Err says why: ErrSlow (fell behind: catch up from the
// timeline and subscribe again), ErrClosed (store closed), or the context's
// error.
type Subscription struct {
	c    chan Event
	stop chan struct{} // closed with c, for the context watcher
	hub  *hub
	mu   sync.Mutex
	err  error
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
// what arrives over pub/sub, so events from every node reach every node.
//
// publish never blocks: a subscriber with a full buffer is dropped.
type hub struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

func newHub() *hub { return &hub{subs: map[*Subscription]struct{}{}} }

func (h *hub) subscribe(ctx context.Context) (*Subscription, error) {
	s := &Subscription{c: make(chan Event, SubscriptionBuffer), stop: make(chan struct{}), hub: h}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				h.drop(s, ctx.Err())
			case <-s.stop:
			}
		}()
	}
	return s, nil
}

func (h *hub) publish(evs ...Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		for _, ev := range evs {
			select {
			case s.c <- ev:
				continue
			default:
				h.dropLocked(s, ErrSlow)
			}
			break
		}
	}
}

func (h *hub) drop(s *Subscription, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(s, err)
}

func (h *hub) dropLocked(s *Subscription, err error) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.stop)
	close(s.c)
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.dropLocked(s, ErrClosed)
	}
}
