package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// BreakReason is a code a rep on break gives (lunch, training...), with
// the label the inbox and the wallboard show.
type BreakReason struct {
	// Code is what the API takes and reports; required, unique.
	Code string `yaml:"code" json:"code"`
	// Label is shown to people; empty means the code.
	Label string `yaml:"label" json:"label"`
}

// DefaultBreakReasons are the codes when routing.break_reasons is empty.
var DefaultBreakReasons = []BreakReason{
	{Code: "lunch", Label: "Lunch"}, {Code: "training", Label: "Training"},
	{Code: "meeting", Label: "Meeting"}, {Code: "personal", Label: "Personal"},
}

// ErrBadState is SetState's answer to a presence and reason that do not
// go together: a break without a configured reason, a reason without a
// break, or a presence that cannot be set.
var ErrBadState = errors.New("routing: bad rep state")

// RepState is a rep's state as supervisors see it: the effective presence
// (wrap_up and on_call included), the break reason, and since when, as
// this node observed it (a change made on another node is seen at the
// next sync, within routing.sync_interval).
type RepState struct {
	Rep      string          `json:"rep"`
	Presence router.Presence `json:"presence"`
	// Reason is the break reason code; empty unless on break.
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// stateInterval is how often presence changes the router makes by itself
// (wrap-up ending, a missed offer, another node's change) are looked for.
const stateInterval = time.Second

// BreakReasons are the configured break reason codes.
func (s *Service) BreakReasons() []BreakReason { return slices.Clone(s.cfg.BreakReasons) }

// SetState sets a rep's presence with, for a break, its reason (one of
// BreakReasons); like SetPresence otherwise.
func (s *Service) SetState(ctx context.Context, rep string, p router.Presence, reason string) error {
	switch {
	case !p.Settable():
		return fmt.Errorf("%w: presence %q cannot be set", ErrBadState, p)
	case p == router.PresenceBreak && !slices.ContainsFunc(s.cfg.BreakReasons, func(b BreakReason) bool { return b.Code == reason }):
		return fmt.Errorf("%w: a break needs a reason, one of the configured codes; %q is not", ErrBadState, reason)
	case p != router.PresenceBreak && reason != "":
		return fmt.Errorf("%w: only a break takes a reason", ErrBadState)
	}
	s.mu.Lock()
	s.reasons[rep] = reason
	s.mu.Unlock()
	if err := s.SetPresence(ctx, rep, p); err != nil {
		return err
	}
	return nil
}

// State is the rep's state (sessions.ErrNotFound for a rep the router
// does not route): what was set through the service at once, a change
// the router made by itself within stateInterval.
func (s *Service) State(rep string) (RepState, error) {
	s.mu.Lock()
	st, ok := s.states[rep]
	s.mu.Unlock()
	if ok {
		return st, nil
	}
	s.observe() // not looked at yet (just started)
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok = s.states[rep]; !ok {
		return RepState{}, fmt.Errorf("%w: rep %s is not routed", sessions.ErrNotFound, rep)
	}
	return st, nil
}

// States are every routed rep's states, by rep id.
func (s *Service) States() []RepState {
	s.observe()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RepState, 0, len(s.states))
	for _, st := range s.states {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b RepState) int { return strings.Compare(a.Rep, b.Rep) })
	return out
}

// OnRepState registers fn, called (on a routing goroutine, in order; it
// must not block) with each change of a rep's state as this node sees it.
func (s *Service) OnRepState(fn func(RepState)) {
	s.mu.Lock()
	s.stateListeners = append(s.stateListeners, fn)
	s.mu.Unlock()
}

// observe compares the router's presences with the states last seen and
// tells the listeners what changed, stamped with the service's clock.
// observeMu keeps the listeners' calls in order.
func (s *Service) observe() {
	s.observeMu.Lock()
	defer s.observeMu.Unlock()
	now := s.clock.Now().UTC()
	var changed []RepState
	s.mu.Lock()
	for _, st := range s.r.Reps() {
		reason := ""
		if st.Presence == router.PresenceBreak {
			reason = s.reasons[st.ID]
		}
		old, ok := s.states[st.ID]
		if ok && old.Presence == st.Presence && old.Reason == reason {
			continue
		}
		ns := RepState{Rep: st.ID, Presence: st.Presence, Reason: reason, Since: now}
		s.states[st.ID] = ns
		changed = append(changed, ns)
	}
	ls := s.stateListeners
	s.mu.Unlock()
	for _, c := range changed {
		for _, fn := range ls {
			fn(c)
		}
	}
}
