package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

// maxSnooze is how far ahead a conversation may be snoozed.
const maxSnooze = 90 * 24 * time.Hour

type pendingRequest struct {
	// SnoozeUntil is when the conversation opens again by itself; absent
	// means it stays pending until someone (or the customer) reopens it.
	SnoozeUntil time.Time `json:"snooze_until,omitzero"`
}

// pending sets a conversation pending, waiting on the customer or a third
// party, optionally until a time: the gateway's snooze timer (package
// internal/snooze) opens it then, or when the customer writes first. The
// time is on the status_change event's payload, so the timeline says
// until when, and the timer rebuilds its schedule from the timelines
// after a restart. Snoozing again replaces the time.
func (s *Server) pending(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	var req pendingRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	now := s.now()
	if !req.SnoozeUntil.IsZero() && (!req.SnoozeUntil.After(now) || req.SnoozeUntil.Sub(now) > maxSnooze) {
		return errorf(CodeInvalid, "snooze_until must be in the future, at most %d days ahead", int(maxSnooze.Hours()/24))
	}
	c, err := s.workable(r, p)
	if err != nil {
		return err
	}
	if c.Status == sessions.StatusResolved {
		return errorf(CodeConflict, "conversation %s is resolved; reopen it first", c.ID)
	}
	to := sessions.StatusPending
	payload, err := json.Marshal(sessions.ConversationChange{Status: to, Assignee: c.Assignee, SnoozeUntil: req.SnoozeUntil.UTC()})
	if err != nil {
		return err
	}
	return s.update(w, r, c.ID, sessions.ConversationUpdate{
		Status: &to,
		Event:  sessions.Event{Kind: sessions.KindStatusChange, Author: p.Author(), Payload: payload},
	})
}
