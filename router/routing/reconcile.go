package routing

import (
	"context"
	"errors"
	"log/slog"

	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// sync renews the lease and syncs with the other nodes (cluster). It
// runs on a loop of its own so that nothing slow (a long reconcile)
// delays the heartbeat: a lapsed lease hands this node's conversations to
// others.
func (s *Service) sync() {
	ctx, cancel := context.WithTimeout(s.ctx, max(s.cfg.SyncInterval, s.cfg.NodeLease/3))
	if err := s.cluster.Heartbeat(ctx, s.cfg.NodeLease); err != nil {
		s.fail("heartbeat", err)
	}
	cancel()
	s.apply(s.r.Sync(s.ctx))
}

// reconcile compares the router with the store and fixes what differs:
// tasks whose conversation moved on without this node seeing the event;
// (cluster) conversations and reservations held by nodes whose lease
// lapsed; open conversations that no router holds, which are routed
// (unassigned) or adopted (assigned). With all set (start, or after the
// feed lost events) every open or pending conversation is looked at.
// Else, in a cluster, open conversations that no live node holds and that
// are unchanged for reconcile_after; on one node, unassigned ones, and
// only after a step failed (nothing else can leave one behind).
func (s *Service) reconcile(all bool) {
	for _, ts := range s.r.Tasks() {
		if s.ctx.Err() != nil {
			return
		}
		s.apply(s.settle(ts.ConversationID))
	}
	if s.cluster != nil {
		orphans, err := s.cluster.Orphans(s.ctx)
		if err != nil {
			s.fail("list orphans", err)
		}
		for _, conv := range orphans {
			s.apply(s.takeOver(conv))
		}
	}
	if s.cluster == nil && !all && !s.dirty.Swap(false) {
		// One node sees every event it did not fail on: the listing (a
		// scan of every conversation in the bolt store) is needed only
		// after a failure. In a cluster it is, since any node may fail.
		return
	}
	statuses := []sessions.ConversationStatus{sessions.StatusOpen}
	if all {
		statuses = append(statuses, sessions.StatusPending)
	}
	now := s.clock.Now()
	for _, st := range statuses {
		q := sessions.ConversationQuery{Status: st, Limit: 500}
		for {
			page, next, err := s.store.Conversations(s.ctx, q)
			if err != nil {
				s.fail("list conversations", err)
				return
			}
			var ids []string
			for _, cv := range page {
				if _, err := s.r.Task(cv.ID); err == nil {
					continue
				}
				if !all && now.Sub(cv.UpdatedAt) < s.cfg.ReconcileAfter {
					continue // the feed is probably on it
				}
				if !all && s.cluster == nil && cv.Assignee != "" {
					continue // not a task here, and nobody else's
				}
				ids = append(ids, cv.ID)
			}
			if s.cluster != nil {
				// What a live node holds is that node's business.
				if ids, err = s.cluster.Unheld(s.ctx, ids); err != nil {
					s.fail("list unheld", err)
					return
				}
			}
			for _, id := range ids {
				s.apply(s.settle(id))
			}
			if next == "" || s.ctx.Err() != nil {
				break
			}
			q.Cursor = next
		}
	}
}

// takeOver handles what a dead node held: a conversation is settled like
// any other, and if it is over (or is a reservation, which dies with its
// node), its claim is freed.
func (s *Service) takeOver(conv string) []router.Decision {
	defer s.lock(conv)()
	if _, err := s.r.Task(conv); err == nil {
		return nil
	}
	if isReservation(conv) {
		if err := s.cluster.Unclaim(s.ctx, conv, ""); err != nil {
			s.fail("free orphan", err, slog.String("reservation", conv))
		}
		return nil
	}
	cv, err := s.store.Conversation(s.ctx, conv)
	if err != nil && !errors.Is(err, sessions.ErrNotFound) {
		s.fail("read conversation", err, slog.String("conversation", conv))
		return nil
	}
	if err != nil || !cv.Status.Active() || (cv.Assignee == "" && cv.Status != sessions.StatusOpen) {
		// Unclaim does nothing if a live node took it over meanwhile.
		if err := s.cluster.Unclaim(s.ctx, conv, ""); err != nil {
			s.fail("free orphan", err, slog.String("conversation", conv))
		}
		return nil
	}
	return s.settleLocked(cv)
}
