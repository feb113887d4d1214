package snooze_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/snooze"
	"github.com/omnigate/omnigate/sessions"
)

var t0 = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

type rig struct {
	t     *testing.T
	store *sessions.MemoryStore
	w     *snooze.Waker
}

func (r *rig) conversation() sessions.Conversation {
	r.t.Helper()
	ctx := context.Background()
	c, _, err := r.store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "s", Value: sessions.NewID("v")}, sessions.Customer{})
	if err != nil {
		r.t.Fatal(err)
	}
	cv, _, err := r.store.OpenConversation(ctx, c.ID, "", sessions.ChannelWebchat)
	if err != nil {
		r.t.Fatal(err)
	}
	return cv
}

// snooze sets cv pending until until, as the API does, and waits until
// the Waker saw it (when it runs).
func (r *rig) snooze(cv sessions.Conversation, until time.Time) {
	r.t.Helper()
	to := sessions.StatusPending
	payload, _ := json.Marshal(sessions.ConversationChange{Status: to, SnoozeUntil: until})
	_, ev, err := r.store.UpdateConversation(context.Background(), cv.ID, sessions.ConversationUpdate{Status: &to,
		Event: sessions.Event{Kind: sessions.KindStatusChange, Author: "rep:alice", Payload: payload}})
	if err != nil {
		r.t.Fatal(err)
	}
	r.settle(ev)
}

func (r *rig) settle(ev sessions.Event) {
	r.t.Helper()
	if r.w == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.w.WaitHandled(ctx, ev.CustomerID, ev.Seq); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) status(cv sessions.Conversation) (sessions.ConversationStatus, string) {
	r.t.Helper()
	ctx := context.Background()
	c, err := r.store.Conversation(ctx, cv.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	evs, _ := r.store.Timeline(ctx, cv.CustomerID, 0, 100)
	var ch sessions.ConversationChange
	for _, ev := range evs {
		if ev.Kind == sessions.KindStatusChange {
			_ = json.Unmarshal(ev.Payload, &ch)
		}
	}
	return c.Status, ch.Reason
}

// TestSnoozeEndsOnTheMovedClock: a snooze set before the Waker starts
// (read back from the store) and one set after (from the feed) each open
// at their time and not before; a reopen by a person cancels a third.
func TestSnoozeEndsOnTheMovedClock(t *testing.T) {
	t.Parallel()
	r := &rig{t: t, store: sessions.NewMemoryStore()}
	defer r.store.Close()
	before := r.conversation()
	r.snooze(before, t0.Add(time.Hour))
	// The waker's own loop reads the clock while the test moves it.
	var clock atomic.Pointer[time.Time]
	clock.Store(&t0)
	w, err := snooze.Start(snooze.Options{Store: r.store, Now: func() time.Time { return *clock.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r.w = w
	after, cancelled := r.conversation(), r.conversation()
	r.snooze(after, t0.Add(2*time.Hour))
	r.snooze(cancelled, t0.Add(time.Hour))
	open := sessions.StatusOpen
	_, ev, err := r.store.UpdateConversation(context.Background(), cancelled.ID, sessions.ConversationUpdate{Status: &open,
		Event: sessions.Event{Author: "rep:alice"}})
	if err != nil {
		t.Fatal(err)
	}
	r.settle(ev)
	if n := w.Scheduled(); n != 2 {
		t.Fatalf("scheduled %d, want 2", n)
	}

	ctx := context.Background()
	steps := []struct {
		at                time.Duration
		woken             int
		before, afterConv sessions.ConversationStatus
	}{
		{59 * time.Minute, 0, sessions.StatusPending, sessions.StatusPending},
		{time.Hour, 1, sessions.StatusOpen, sessions.StatusPending},
		{2 * time.Hour, 1, sessions.StatusOpen, sessions.StatusOpen},
		{3 * time.Hour, 0, sessions.StatusOpen, sessions.StatusOpen},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		clock.Store(&now)
		if n := w.WakeDue(ctx, now); n != s.woken {
			t.Errorf("at +%v woke %d, want %d", s.at, n, s.woken)
		}
		if got, _ := r.status(before); got != s.before {
			t.Errorf("at +%v the first is %s, want %s", s.at, got, s.before)
		}
		if got, _ := r.status(after); got != s.afterConv {
			t.Errorf("at +%v the second is %s, want %s", s.at, got, s.afterConv)
		}
	}
	if _, reason := r.status(before); reason != snooze.ReasonSnoozeEnded {
		t.Errorf("reason %q, want %s", reason, snooze.ReasonSnoozeEnded)
	}
	if _, reason := r.status(cancelled); reason != "" {
		t.Errorf("the cancelled snooze was woken: reason %q", reason)
	}
}

// TestCustomerReplyEndsSnooze: the customer's message opens a snoozed
// conversation at once, whatever the clock says.
func TestCustomerReplyEndsSnooze(t *testing.T) {
	t.Parallel()
	r := &rig{t: t, store: sessions.NewMemoryStore()}
	defer r.store.Close()
	w, err := snooze.Start(snooze.Options{Store: r.store, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r.w = w
	cv := r.conversation()
	r.snooze(cv, t0.Add(24*time.Hour))
	msg, _, err := r.store.Append(context.Background(), sessions.Event{CustomerID: cv.CustomerID, ConversationID: cv.ID,
		Kind: sessions.KindMessageIn, Channel: sessions.ChannelWebchat, Author: "customer", Payload: json.RawMessage(`{"text":"any news?"}`)})
	if err != nil {
		t.Fatal(err)
	}
	r.settle(msg)
	if st, reason := r.status(cv); st != sessions.StatusOpen || reason != snooze.ReasonCustomerReplied {
		t.Errorf("after the reply: %s (%q), want open (customer_replied)", st, reason)
	}
	if n := w.Scheduled(); n != 0 {
		t.Errorf("scheduled %d after the reply", n)
	}
}
