package snooze

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// Options are the Waker's collaborators.
type Options struct {
	// Store is required.
	Store sessions.Store
	// Logger gets failed wakes; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests pass one they move, and
	// call WakeDue.
	Now func() time.Time
}

// Waker keeps the schedule of snoozed conversations and opens each when
// its time comes. Build it with Start; Close it before the store.
type Waker struct {
	store sessions.Store
	log   *slog.Logger
	now   func() time.Time
	feed  *sessions.Consumer
	kick  chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex
	due map[string]time.Time // conversation id → snooze end
}

// Reasons recorded on the status_change that ends a snooze.
const (
	ReasonSnoozeEnded     = "snooze_ended"
	ReasonCustomerReplied = "customer_replied"
)

// Start follows the store's feed, reads the snoozes already set and
// starts the timer.
func Start(o Options) (*Waker, error) {
	if o.Store == nil {
		return nil, errors.New("snooze: Store is required")
	}
	w := &Waker{store: o.Store, log: o.Logger, now: o.Now, kick: make(chan struct{}, 1), due: map[string]time.Time{}}
	if w.log == nil {
		w.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if w.now == nil {
		w.now = time.Now
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	var err error
	// Subscribe before reading what is pending, so a snooze set in
	// between is seen at least once.
	if w.feed, err = sessions.NewConsumer(w.ctx, w.store, sessions.ConsumerOptions{Handle: w.observe, Logger: w.log}); err != nil {
		w.cancel()
		return nil, err
	}
	if err := w.rebuild(w.ctx); err != nil {
		w.Close()
		return nil, err
	}
	w.wg.Go(w.loop)
	return w, nil
}

// Close stops the timer and the feed.
func (w *Waker) Close() {
	w.cancel()
	w.feed.Close()
	w.wg.Wait()
}

// WaitHandled blocks until the Waker has seen the customer's events up to
// seq (tests, before WakeDue); see sessions.Consumer.WaitHandled.
func (w *Waker) WaitHandled(ctx context.Context, customerID string, seq uint64) error {
	return w.feed.WaitHandled(ctx, customerID, seq)
}

// Scheduled is how many snoozes are waiting.
func (w *Waker) Scheduled() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.due)
}

// rebuild schedules the snoozes of conversations pending now, from each
// one's latest status change.
func (w *Waker) rebuild(ctx context.Context) error {
	q := sessions.ConversationQuery{Status: sessions.StatusPending, Limit: 500}
	for {
		cs, next, err := w.store.Conversations(ctx, q)
		if err != nil {
			return err
		}
		for _, c := range cs {
			ch, ok, err := lastChange(ctx, w.store, c)
			if err != nil {
				return err
			}
			if ok {
				w.schedule(c.ID, ch)
			}
		}
		if next == "" {
			return nil
		}
		q.Cursor = next
	}
}

// lookback is how many events back a conversation's latest status change
// is looked for at start.
const lookback = 500

func lastChange(ctx context.Context, s sessions.Store, c sessions.Conversation) (sessions.ConversationChange, bool, error) {
	after := c.LastSeq - min(c.LastSeq, lookback)
	evs, err := s.Timeline(ctx, c.CustomerID, after, lookback)
	if err != nil {
		return sessions.ConversationChange{}, false, err
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].ConversationID == c.ID && evs[i].Kind == sessions.KindStatusChange {
			ch, ok := change(evs[i])
			return ch, ok, nil
		}
	}
	return sessions.ConversationChange{}, false, nil
}

func change(ev sessions.Event) (sessions.ConversationChange, bool) {
	var ch sessions.ConversationChange
	err := json.Unmarshal(ev.Payload, &ch)
	return ch, err == nil
}

// schedule records (or, for any change but a snooze, forgets) the
// conversation's snooze.
func (w *Waker) schedule(id string, ch sessions.ConversationChange) {
	w.mu.Lock()
	if ch.Status == sessions.StatusPending && !ch.SnoozeUntil.IsZero() {
		w.due[id] = ch.SnoozeUntil
	} else {
		delete(w.due, id)
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// observe is the feed's handler.
func (w *Waker) observe(ctx context.Context, ev sessions.Event) {
	if ev.ConversationID == "" {
		return
	}
	switch ev.Kind {
	case sessions.KindStatusChange:
		if ch, ok := change(ev); ok {
			w.schedule(ev.ConversationID, ch)
		}
	case sessions.KindMessageIn:
		w.mu.Lock()
		_, snoozed := w.due[ev.ConversationID]
		w.mu.Unlock()
		if snoozed {
			w.open(ctx, ev.ConversationID, ReasonCustomerReplied)
		}
	}
}

// WakeDue opens every snoozed conversation whose time is at or before
// now, and returns how many it opened.
func (w *Waker) WakeDue(ctx context.Context, now time.Time) int {
	var ids []string
	w.mu.Lock()
	for id, until := range w.due {
		if !until.After(now) {
			ids = append(ids, id)
		}
	}
	w.mu.Unlock()
	n := 0
	for _, id := range ids {
		if w.open(ctx, id, ReasonSnoozeEnded) {
			n++
		}
	}
	return n
}

// open sets the conversation open if it is still pending, and forgets its
// snooze either way.
func (w *Waker) open(ctx context.Context, id, reason string) bool {
	w.mu.Lock()
	delete(w.due, id)
	w.mu.Unlock()
	c, err := w.store.Conversation(ctx, id)
	if err != nil || c.Status != sessions.StatusPending {
		if err != nil && ctx.Err() == nil {
			w.log.Warn("snooze: reading a snoozed conversation", "conversation", id, "err", err)
		}
		return false
	}
	to := sessions.StatusOpen
	payload, _ := json.Marshal(sessions.ConversationChange{Status: to, Assignee: c.Assignee, Reason: reason})
	if _, _, err := w.store.UpdateConversation(ctx, id, sessions.ConversationUpdate{Status: &to,
		Event: sessions.Event{Kind: sessions.KindStatusChange, Author: sessions.ChannelSystem, Payload: payload}}); err != nil {
		if ctx.Err() == nil {
			w.log.Warn("snooze: opening a snoozed conversation", "conversation", id, "err", err)
		}
		return false
	}
	return true
}

// loop sleeps until the earliest snooze ends (or the schedule changes)
// and wakes what is due.
func (w *Waker) loop() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		w.mu.Lock()
		wait := time.Hour
		for _, until := range w.due {
			wait = min(wait, max(0, until.Sub(w.now())))
		}
		w.mu.Unlock()
		t.Reset(wait)
		select {
		case <-w.ctx.Done():
			return
		case <-w.kick:
		case <-t.C:
			w.WakeDue(w.ctx, w.now())
		}
	}
}
