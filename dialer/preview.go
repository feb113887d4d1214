package dialer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/sessions"
)

// Card is what a rep sees of a preview call before clicking call or
// skip: the customer, never the number (masked).
type Card struct {
	AttemptID  string `json:"attempt_id"`
	Campaign   string `json:"campaign"`
	CustomerID string `json:"customer_id"`
	Name       string `json:"name,omitempty"`
	Number     string `json:"number"` // masked
	// Why says what the call is for: the campaign's name and purpose,
	// and which try it is.
	Why string `json:"why"`
}

// ReasonRepSkipped is the reason code on the timeline of a preview
// attempt a rep skipped.
const ReasonRepSkipped = "rep_skipped"

// NextPreview gives rep the next preview call of a running preview
// campaign they are in, holding it for them (the same card again until
// they dial or skip it). ErrNotFound when there is none.
func (s *Service) NextPreview(ctx context.Context, rep string) (Card, error) {
	cs, err := s.o.Store.Campaigns(ctx)
	if err != nil {
		return Card{}, err
	}
	now := s.o.Clock.Now()
	for _, c := range cs {
		if c.Spec.Mode != ModePreview || !c.State.dialing() || !slices.Contains(s.campaignReps(c.Spec), rep) {
			continue
		}
		if held, err := s.heldBy(ctx, c.ID(), rep); err != nil || held.ID != "" {
			if err != nil {
				return Card{}, err
			}
			return s.card(ctx, c, held)
		}
		if !inSchedule(c.Spec.Schedule, now) {
			continue
		}
		due, err := s.o.Store.Due(ctx, c.ID(), now, 10)
		if err != nil {
			return Card{}, err
		}
		for _, a := range due {
			a.State, a.Rep = AttemptPreview, rep
			saved, err := s.o.Store.SaveAttempts(ctx, a)
			if errors.Is(err, ErrConflict) {
				continue // another rep took it
			}
			if err != nil {
				return Card{}, err
			}
			return s.card(ctx, c, saved[0])
		}
	}
	return Card{}, fmt.Errorf("%w: no preview call for rep %s", ErrNotFound, rep)
}

// heldBy returns the preview attempt of the campaign rep holds (zero
// when none); the attempts are read only when some card is held.
func (s *Service) heldBy(ctx context.Context, campaign, rep string) (Attempt, error) {
	n, err := s.o.Store.Counts(ctx, campaign)
	if err != nil || n["state:"+string(AttemptPreview)] == 0 {
		return Attempt{}, err
	}
	as, err := s.o.Store.Attempts(ctx, campaign)
	if err != nil {
		return Attempt{}, err
	}
	if i := slices.IndexFunc(as, func(a Attempt) bool { return a.State == AttemptPreview && a.Rep == rep }); i >= 0 {
		return as[i], nil
	}
	return Attempt{}, nil
}

func (s *Service) card(ctx context.Context, c Campaign, a Attempt) (Card, error) {
	cust, err := s.o.Sessions.Customer(ctx, a.CustomerID)
	if err != nil && !errors.Is(err, sessions.ErrNotFound) {
		return Card{}, err
	}
	return Card{AttemptID: a.ID, Campaign: c.ID(), CustomerID: a.CustomerID, Name: cust.Name,
		Number: MaskNumber(a.Number),
		Why:    fmt.Sprintf("%s (%s), try %d of %d", cmp.Or(c.Spec.Name, c.ID()), c.Spec.Purpose, a.Try, c.Spec.Attempts)}, nil
}

// heldCard returns the preview attempt rep holds, or ErrNotFound /
// ErrState.
func (s *Service) heldCard(ctx context.Context, rep, attemptID string) (Campaign, Attempt, error) {
	a, err := s.o.Store.Attempt(ctx, attemptID)
	if err != nil {
		return Campaign{}, Attempt{}, err
	}
	if a.State != AttemptPreview || a.Rep != rep {
		return Campaign{}, Attempt{}, fmt.Errorf("%w: attempt %s is %s, not a preview held by %s", ErrState, attemptID, a.State, rep)
	}
	c, err := s.o.Store.Campaign(ctx, a.Campaign)
	if err == nil && !c.State.dialing() {
		err = fmt.Errorf("%w: campaign %s is %s", ErrState, c.ID(), c.State)
	}
	return c, a, err
}

// Dial places the preview call rep holds: the rep is held for it first
// (ErrState when the router will not give them a call now), then the
// contact policy is asked as for any dial; the attempt returned says
// whether it was placed, denied or deferred.
func (s *Service) Dial(ctx context.Context, rep, attemptID string) (Attempt, error) {
	c, a, err := s.heldCard(ctx, rep, attemptID)
	if err != nil {
		return Attempt{}, err
	}
	if !s.reserve(ctx, a, rep) {
		return Attempt{}, fmt.Errorf("%w: rep %s cannot take a call now", ErrState, rep)
	}
	return s.dial(ctx, c, a, rep)
}

// Skip concludes the preview call rep holds without dialing it; the
// reason goes on the customer's timeline.
func (s *Service) Skip(ctx context.Context, rep, attemptID, reason string) (Attempt, error) {
	_, a, err := s.heldCard(ctx, rep, attemptID)
	if err != nil {
		return Attempt{}, err
	}
	a.State, a.Outcome, a.EndedAt = AttemptDone, OutcomeSkipped, s.o.Clock.Now()
	saved, err := s.o.Store.SaveAttempts(ctx, a)
	if err != nil {
		return Attempt{}, err
	}
	s.m.outcome(OutcomeSkipped)
	s.record(ctx, saved[0], CallEvent{Step: StepSkipped, Outcome: OutcomeSkipped,
		Reasons: []contact.Reason{{Code: ReasonRepSkipped, Detail: reason}}})
	s.concluded(saved[0], "")
	return saved[0], nil
}

// MarkOutcome records what the rep who took a call says came of it
// (sale, callback, not interested...), with a note; both go on the
// timeline. Only the call's rep may mark it, once the call ended; a
// second mark replaces the first.
func (s *Service) MarkOutcome(ctx context.Context, rep, attemptID, outcome, note string) (Attempt, error) {
	if outcome == "" || len(outcome) > 64 || utf8.RuneCountInString(note) > 2000 {
		return Attempt{}, fmt.Errorf("%w: an outcome is 1-64 bytes and a note at most 2000 characters", ErrInvalid)
	}
	for range 5 {
		a, err := s.o.Store.Attempt(ctx, attemptID)
		if err != nil {
			return Attempt{}, err
		}
		if a.Rep != rep || a.State != AttemptDone || a.Outcome != OutcomeAnswered {
			return Attempt{}, fmt.Errorf("%w: attempt %s is not a finished call of rep %s", ErrState, attemptID, rep)
		}
		a.RepOutcome, a.RepNote = outcome, note
		saved, err := s.o.Store.SaveAttempts(ctx, a)
		if errors.Is(err, ErrConflict) {
			continue // marked twice at once
		}
		if err != nil {
			return Attempt{}, err
		}
		s.record(ctx, saved[0], CallEvent{Step: StepMarked, RepOutcome: outcome, Note: note})
		return saved[0], nil
	}
	return Attempt{}, fmt.Errorf("%w: attempt %s kept changing", ErrConflict, attemptID)
}
