package kpi

import (
	"time"

	"github.com/omnigate/omnigate/router"
)

// repLive is a rep as the engine follows them: the presence routing
// reports, the conversations they hold (from the feed), and the state
// occupancy counts, since when.
type repLive struct {
	presence   router.Presence
	reason     string
	since      time.Time
	active     int
	state      string // stIdle, stHandling, stBreak, stAway; "" offline (not logged in)
	stateSince time.Time
}

// stateOf is the rep's state for occupancy: logged in is every state but
// offline; handling is holding a contact, a call, wrap-up or after-call
// work.
func (r *repLive) stateOf() string {
	switch r.presence {
	case router.PresenceOffline, "":
		return ""
	case router.PresenceBreak:
		return stBreak
	case router.PresenceAway:
		return stAway
	case router.PresenceOnCall, router.PresenceWrapUp, router.PresenceAfterCallWork:
		return stHandling
	}
	if r.active > 0 {
		return stHandling
	}
	return stIdle
}

// transition accrues the time in the old state up to at and enters the
// state the rep is in now.
func (e *Engine) transition(id string, r *repLive, at time.Time) {
	s := r.stateOf()
	if s == r.state {
		return
	}
	e.accrue(id, r, at)
	r.state, r.stateSince = s, at
}

// accrue adds the time since stateSince to the rep's state counter, slot
// by slot, and moves stateSince to to. Time going backwards (an event
// stamped before the last flush) adds nothing.
func (e *Engine) accrue(id string, r *repLive, to time.Time) {
	if r.state == "" || !to.After(r.stateSince) {
		if r.state == "" || r.stateSince.IsZero() {
			r.stateSince = to
		}
		return
	}
	for from := r.stateSince; from.Before(to); {
		end := from.UTC().Truncate(Slot).Add(Slot)
		if end.After(to) {
			end = to
		}
		e.count(from, cStatePrefix+r.state, ms(end.Sub(from)), dimRep, id)
		from = end
	}
	r.stateSince = to
}

// hold gives rep the conversation.
func (e *Engine) hold(at time.Time, c *conv, rep string) {
	c.rep = rep
	if c.assigned.IsZero() {
		c.assigned = at
	}
	r := e.rep(rep)
	r.active++
	e.transition(rep, r, at)
}

// release takes the conversation from whoever holds it.
func (e *Engine) release(at time.Time, c *conv) {
	if c.rep == "" {
		return
	}
	r := e.rep(c.rep)
	r.active = max(r.active-1, 0)
	e.transition(c.rep, r, at)
	c.rep = ""
}

func (e *Engine) rep(id string) *repLive {
	r := e.reps[id]
	if r == nil {
		r = &repLive{presence: router.PresenceOffline}
		e.reps[id] = r
	}
	return r
}
