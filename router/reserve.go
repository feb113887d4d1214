package router

import (
	"context"
	"errors"
	"fmt"
)

// ErrNoRep means no rep can take a reservation now: nobody in the queue's
// exact ring is available with free capacity, or the rep asked for is
// away, offline, busy, wrapping up or not on the channel. Reservations
// never wait; the caller tries again later (the dialer at its next pacing
// step).
var ErrNoRep = errors.New("router: no rep can take it now")

// Reserve holds a rep at once for work that does not wait in a queue: a
// call the dialer places (it reserves the rep before dialing, so an
// answered customer always finds one), a rep's own preview dial, a
// bridged inbound call. t.ConversationID names the reservation; it must
// not be a task the router holds. With t.Assignee set only that rep is
// considered; else the best rep of t's queue's exact ring, by the queue's
// selection policy, as for any task. Queues that offer are not asked:
// a reservation is a direct assignment.
//
// A reserved rep is a task's holder like any other: its channel's cost is
// claimed (a voice reservation fills a rep and shows them on_call, so
// they are offered nothing else), the claim goes through the State (in a
// cluster it lapses with the node's lease), and Release ends it with the
// channel's wrap-up. The decision is KindAssign; ErrNoRep (wrapped, with
// the reason for a named rep) when nobody can take it now, and then
// nothing is held.
func (r *Router) Reserve(ctx context.Context, t Task) (Decision, error) {
	if t.ConversationID == "" || t.Channel == "" {
		return Decision{}, fmt.Errorf("%w: a reservation needs an id and a channel", ErrInvalid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.tasks[t.ConversationID]; ok {
		return Decision{}, fmt.Errorf("%w: %s is held already", ErrInvalid, t.ConversationID)
	}
	if t.Assignee != "" {
		if _, ok := r.reps[t.Assignee]; !ok {
			return Decision{}, fmt.Errorf("%w: %s", ErrUnknownRep, t.Assignee)
		}
	}
	now := r.clock.Now()
	t.Owner = ""
	t.EnqueuedAt = now
	t.Skills = maps2(t.Skills)
	q := r.queueFor(t)
	ts := &taskState{t: t, hidx: -1, reserved: true}
	ts.prio = r.cfg.Priority.Priority(t.VIP, t.Tier) + t.Boost
	r.seq++
	ts.seq = r.seq
	if t.Assignee != "" {
		ts.targetID, ts.targetRing = t.Assignee, RingSticky
	}
	if err := r.state.Push(ctx, q.cfg.Name, t.ConversationID); err != nil {
		return Decision{}, fmt.Errorf("router: reserve %s: %w", t.ConversationID, err)
	}
	r.tasks[t.ConversationID] = ts
	r.enterQueue(ts, q, now)
	d, err := r.route(ctx, ts, now)
	if err != nil || d.Kind == KindAssign {
		return d, err
	}
	// Nobody now: a reservation does not wait.
	if d.Kind == KindTaken {
		return Decision{}, fmt.Errorf("router: reserve %s: %w", t.ConversationID, ErrTaken)
	}
	if err := r.remove(ctx, ts); err != nil {
		return Decision{}, err
	}
	if sc := r.sc.target; sc != nil && sc.reason != rNone {
		return Decision{}, fmt.Errorf("%w: %s is %s", ErrNoRep, t.Assignee, sc.reason)
	}
	return Decision{}, fmt.Errorf("%w: %s", ErrNoRep, d.Why)
}
