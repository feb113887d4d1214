package dialer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/dialer/pacing"
	"github.com/omnigate/omnigate/router/routing"
	"github.com/omnigate/omnigate/sessions"
)

// liveCall is a call this node placed and follows. Its fields are
// written by its follower goroutine under Service.mu.
type liveCall struct {
	a          Attempt
	rep        string // the rep held for it, if any
	dialedAt   time.Time
	answeredAt time.Time
	bridgedAt  time.Time
	machine    bool
	abandoned  bool
}

func reservation(a Attempt, rep string) routing.Reservation {
	return routing.Reservation{ID: a.ID, Channel: sessions.ChannelVoice, Rep: rep, CustomerID: a.CustomerID}
}

// dial asks the contact policy, then places a's call: the move to
// dialing is stored before the trunk is asked, so a crash between leaves
// an attempt that is concluded, not dialed again. rep, when set, is
// held for the call already and released on every path that places no
// call. The attempt it returns is as stored.
func (s *Service) dial(ctx context.Context, c Campaign, a Attempt, rep string) (Attempt, error) {
	now := s.o.Clock.Now()
	release := func() {
		if rep != "" {
			_ = s.o.Reps.Release(context.WithoutCancel(ctx), a.ID)
		}
	}
	req := contact.Request{CustomerID: a.CustomerID, Channel: sessions.ChannelVoice, Purpose: c.Spec.Purpose,
		Campaign: c.ID(), Topic: Topic(c.ID()), TouchID: a.ID, At: now}
	// The attempt's events go to the customer's conversation of the
	// campaign, which is not open work that holds its call back.
	if conv, err := s.conversation(ctx, a); err == nil {
		req.ConversationID, a.ConversationID = conv.ID, conv.ID
	}
	d, err := s.o.Policy.Evaluate(ctx, req)
	if err != nil {
		release()
		s.log.Warn("dialer: contact policy failed; retrying in a minute", slog.String("attempt", a.ID), slog.Any("error", err))
		a.Due = now.Add(time.Minute)
		a.State = AttemptDue
		saved, serr := s.o.Store.SaveAttempts(ctx, a)
		if serr != nil {
			return a, serr
		}
		return saved[0], fmt.Errorf("dialer: attempt %s: contact policy: %w", a.ID, err)
	}
	a.Policy = string(d.Decision)
	s.m.decision(a.Policy)
	a.Reasons = nil
	for _, r := range d.Reasons {
		a.Reasons = append(a.Reasons, r.Code)
	}
	ev := CallEvent{Policy: string(d.Decision), Reasons: d.Reasons}
	switch d.Decision {
	case channels.Deny:
		release()
		a.State, a.Outcome, a.EndedAt, a.Rep = AttemptDone, OutcomeDenied, now, ""
		ev.Step, ev.Outcome = StepSkipped, OutcomeDenied
	case channels.Defer:
		release()
		a.State, a.Due, a.Rep = AttemptDue, d.Until, ""
		ev.Step, ev.Until = StepDeferred, d.Until
	default:
		a.State, a.DialedAt, a.Rep, a.Node = AttemptDialing, now, rep, s.o.Node
		ev.Step = StepDialed
	}
	// The call is this node's from before it is stored as dialing, so
	// a runner looking for calls nobody follows never takes it for one.
	lc := &liveCall{a: a, rep: rep, dialedAt: now}
	forget := func() {
		s.mu.Lock()
		delete(s.calls, a.ID)
		s.mu.Unlock()
	}
	if a.State == AttemptDialing {
		s.mu.Lock()
		s.calls[a.ID] = lc
		s.mu.Unlock()
	}
	saved, err := s.o.Store.SaveAttempts(ctx, a)
	if err != nil {
		if a.State == AttemptDialing {
			forget()
			release()
		}
		return a, fmt.Errorf("dialer: attempt %s: %w", a.ID, err)
	}
	a = saved[0]
	s.mu.Lock()
	lc.a = a // as stored
	s.mu.Unlock()
	if a.State != AttemptDialing {
		if a.State == AttemptDone {
			s.m.outcome(a.Outcome)
		}
		s.record(ctx, a, ev)
		s.concluded(a, "")
		return a, nil
	}
	call, err := s.o.Trunk.Dial(ctx, Dial{AttemptID: a.ID, To: a.Number, CallerID: c.Spec.CallerID,
		RingTimeout: time.Duration(c.Spec.RingTimeout)})
	if err != nil {
		// No call was placed: the trunk says so. A busy trunk (or a
		// shutdown) gives the attempt back to the queue; anything else
		// ends it as failed.
		forget()
		release()
		if errors.Is(err, ErrTrunkBusy) || ctx.Err() != nil {
			a.State, a.DialedAt, a.Rep, a.Node = AttemptDue, time.Time{}, "", ""
			saved, serr := s.o.Store.SaveAttempts(context.WithoutCancel(ctx), a)
			if serr != nil {
				return a, serr
			}
			return saved[0], err
		}
		s.log.Warn("dialer: trunk refused a call", slog.String("attempt", a.ID), slog.Any("error", err))
		lc.rep = ""
		return s.conclude(ctx, c, lc, Progress{Kind: ProgressEnded, At: now, Outcome: OutcomeFailed}), nil
	}
	s.record(ctx, a, ev)
	s.wg.Go(func() { s.follow(context.WithoutCancel(ctx), c, lc, call) })
	return a, nil
}

// follow sees a call through: answered → a rep (held already, or found
// within the connect limit, or the call is abandoned) → ended.
func (s *Service) follow(ctx context.Context, c Campaign, lc *liveCall, call Call) {
	defer func() {
		s.mu.Lock()
		delete(s.calls, lc.a.ID)
		s.mu.Unlock()
	}()
	for p := range call.Events() {
		s.handling.Add(1)
		switch p.Kind {
		case ProgressRinging:
			s.step(ctx, lc, func(a *Attempt) { a.State = AttemptRinging })
		case ProgressAnswered:
			s.answered(ctx, c, lc, call, p)
		case ProgressEnded:
			s.conclude(ctx, c, lc, p)
			s.handling.Add(-1)
			return
		}
		s.handling.Add(-1)
	}
	// The channel closed without an end: the trunk lost the call.
	s.conclude(ctx, c, lc, Progress{Kind: ProgressEnded, At: s.o.Clock.Now(), Outcome: OutcomeFailed})
}

// step stores a change of a live attempt. A lost compare-and-set means
// another node concluded it (this node lost the lease): the call goes
// on, unrecorded here.
func (s *Service) step(ctx context.Context, lc *liveCall, fn func(*Attempt)) {
	s.mu.Lock()
	a := lc.a
	s.mu.Unlock()
	fn(&a)
	saved, err := s.o.Store.SaveAttempts(ctx, a)
	if err != nil {
		s.log.Warn("dialer: storing a call's step", slog.String("attempt", a.ID), slog.Any("error", err))
		return
	}
	s.mu.Lock()
	lc.a = saved[0]
	s.mu.Unlock()
}

func (s *Service) answered(ctx context.Context, c Campaign, lc *liveCall, call Call, p Progress) {
	ring := p.At.Sub(lc.dialedAt)
	s.mu.Lock()
	lc.answeredAt = p.At
	lc.machine = p.Machine
	s.mu.Unlock()
	if p.Machine {
		s.observe(c.ID(), pacing.Observation{Kind: pacing.ObserveMachine, At: p.At, Duration: ring})
		_ = call.Hangup(ctx)
		return
	}
	s.observe(c.ID(), pacing.Observation{Kind: pacing.ObserveAnswered, At: p.At, Duration: ring})
	s.step(ctx, lc, func(a *Attempt) { a.State, a.AnsweredAt = AttemptAnswered, p.At })
	rep := lc.rep
	if rep == "" {
		rep = s.connect(ctx, c, lc)
	}
	if rep != "" {
		uri := ""
		for _, r := range s.o.Roster() {
			if r.ID == rep {
				uri = r.SIPURI
			}
		}
		if err := call.Bridge(ctx, RepLeg{ID: rep, URI: uri}); err == nil {
			now := s.o.Clock.Now()
			s.mu.Lock()
			lc.bridgedAt = now
			s.mu.Unlock()
			s.step(ctx, lc, func(a *Attempt) { a.State, a.Rep = AttemptBridged, rep })
			return
		}
		s.log.Warn("dialer: bridging to the rep failed; abandoning", slog.String("attempt", lc.a.ID), slog.String("rep", rep))
	}
	s.mu.Lock()
	lc.abandoned = true
	s.mu.Unlock()
	s.observe(c.ID(), pacing.Observation{Kind: pacing.ObserveAbandoned, At: s.o.Clock.Now()})
	if err := call.Abandon(ctx, c.Spec.Abandon); err != nil {
		_ = call.Hangup(ctx)
	}
}

// connect finds a rep for an answered call, trying every 200ms until
// the connect limit; "" when none.
func (s *Service) connect(ctx context.Context, c Campaign, lc *liveCall) string {
	deadline := lc.answeredAt.Add(s.o.ConnectLimit)
	for {
		free := s.repsNow(c.Spec, s.o.Clock.Now(), false).free
		if rep, _ := s.reserveOne(ctx, lc.a, free); rep != "" {
			s.mu.Lock()
			lc.rep = rep
			s.mu.Unlock()
			return rep
		}
		if !s.o.Clock.Now().Before(deadline) {
			return ""
		}
		wait := s.o.Clock.After(200 * time.Millisecond)
		s.handling.Add(-1) // parked on the clock
		select {
		case <-ctx.Done():
		case <-wait:
		}
		s.handling.Add(1)
		if ctx.Err() != nil {
			return ""
		}
	}
}

// conclude ends an attempt: its outcome, the rep released, the next try
// (stored with it, atomically), the ledger and the timeline.
func (s *Service) conclude(ctx context.Context, c Campaign, lc *liveCall, p Progress) Attempt {
	s.mu.Lock()
	a, rep := lc.a, lc.rep
	answeredAt, bridgedAt, machine, abandoned := lc.answeredAt, lc.bridgedAt, lc.machine, lc.abandoned
	s.mu.Unlock()
	end := p.At
	if end.IsZero() {
		end = s.o.Clock.Now()
	}
	out := p.Outcome
	switch {
	case abandoned:
		out = OutcomeAbandoned
	case machine:
		out = OutcomeMachine
	case !bridgedAt.IsZero():
		out = OutcomeAnswered
	case out == "" || out == OutcomeAnswered:
		out = OutcomeFailed
	}
	if rep != "" {
		if err := s.o.Reps.Release(ctx, a.ID); err != nil {
			s.log.Warn("dialer: releasing a rep", slog.String("attempt", a.ID), slog.Any("error", err))
		}
	}
	a.State, a.Outcome, a.SIPCode, a.EndedAt = AttemptDone, out, p.SIPCode, end
	a.AnsweredAt = answeredAt
	if answeredAt.IsZero() {
		a.Ring = end.Sub(lc.dialedAt)
		s.observe(c.ID(), pacing.Observation{Kind: pacing.ObserveUnanswered, At: end, Duration: a.Ring})
	} else {
		a.Ring = answeredAt.Sub(lc.dialedAt)
	}
	if !bridgedAt.IsZero() {
		a.Talk = end.Sub(bridgedAt)
		s.observe(c.ID(), pacing.Observation{Kind: pacing.ObserveTalk, At: end, Duration: a.Talk})
	}
	if out != OutcomeAnswered {
		a.Rep = ""
	}
	next := s.nextTry(c, a)
	saved, err := s.o.Store.SaveAttempts(ctx, append([]Attempt{a}, next...)...)
	if err != nil {
		s.log.Warn("dialer: storing a call's outcome", slog.String("attempt", a.ID), slog.Any("error", err))
		return a
	}
	a = saved[0]
	if out == OutcomeAbandoned {
		// A touch of its own (the dial's touch, with the attempt's id, is
		// recorded already and a ledger keeps the first record of an id).
		// No purpose or topic, so it counts for the abandoned lockout and
		// not a second time against frequency caps.
		err := s.o.Ledger.Record(ctx, contact.Touch{ID: a.ID + ":abandoned", CustomerID: a.CustomerID,
			Channel: sessions.ChannelVoice, Direction: contact.Outbound, Campaign: a.Campaign,
			Outcome: contact.OutcomeAbandoned, At: end})
		if err != nil {
			s.log.Warn("dialer: recording an abandoned call on the ledger", slog.String("attempt", a.ID), slog.Any("error", err))
		}
	}
	s.m.outcome(out)
	ev := CallEvent{Step: StepOutcome, Outcome: out, SIPCode: p.SIPCode, RingMS: a.Ring.Milliseconds(),
		TalkMS: a.Talk.Milliseconds(), Rep: a.Rep}
	if len(next) > 0 {
		ev.NextTry = next[0].Due
	}
	s.record(ctx, a, ev)
	s.concluded(a, rep)
	return a
}
