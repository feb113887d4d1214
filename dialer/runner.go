package dialer

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnigate/omnigate/dialer/pacing"
	"github.com/omnigate/omnigate/router"
)

// voiceCost is the capacity a voice call takes of a rep (the router's
// default cost of voice: a call fills a rep of default capacity).
const voiceCost = 100

// abandonWindow is the rolling period the abandonment cap also holds
// over.
const abandonWindow = 30 * 24 * time.Hour

// runner paces one campaign this node holds the lease of. The Service's
// loop calls tick once a second; the calls it places are followed by
// their own goroutines (Service.follow), which report back through
// observe and concluded.
type runner struct {
	s     *Service
	id    string
	pacer pacing.Pacer

	mu sync.Mutex
	// answers are the campaign's answered calls (by a person), oldest
	// first, for the abandonment rate over the campaign and 30 days.
	answers            []answer
	answered, abandons int
	guarded            bool
	ready              int // at the last decision
	// recovered is when attempts left in a call by other nodes were
	// last looked for.
	recovered time.Time
	// dirty says an attempt concluded since the campaign was last
	// checked for being finished.
	dirty bool
}

type answer struct {
	at        time.Time
	abandoned bool
}

// newRunner builds the campaign's runner, concluding attempts a crash
// left in a call state (never dialed again) and counting past answers.
func (s *Service) newRunner(ctx context.Context, c Campaign) (*runner, error) {
	r := &runner{s: s, id: c.ID(), dirty: true}
	as, err := s.o.Store.Attempts(ctx, c.ID())
	if err != nil {
		return nil, err
	}
	r.recover(ctx, c, as)
	for _, a := range as {
		if a.Outcome == OutcomeAnswered || a.Outcome == OutcomeAbandoned {
			r.answers = append(r.answers, answer{at: a.AnsweredAt, abandoned: a.Outcome == OutcomeAbandoned})
		}
	}
	slices.SortFunc(r.answers, func(x, y answer) int { return x.at.Compare(y.at) })
	for _, x := range r.answers {
		r.answered++
		if x.abandoned {
			r.abandons++
		}
	}
	r.pacer, err = s.o.Pacer(PacerConfig{Mode: c.Spec.Mode, AbandonTarget: c.Spec.AbandonTarget,
		ConnectLimit: s.o.ConnectLimit, Answered: r.answered, Abandoned: r.abandons})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// nextTry is the customer's next attempt after a, if the retry rules
// and the campaign's attempts allow one.
func (s *Service) nextTry(c Campaign, a Attempt) []Attempt {
	after, ok := c.Spec.Retry.after(a.Outcome)
	if !ok || a.Try >= c.Spec.Attempts {
		return nil
	}
	return []Attempt{a.next(a.EndedAt.Add(after))}
}

// tick places the calls the pacer asks for now.
func (r *runner) tick(ctx context.Context, c Campaign) {
	s := r.s
	now := s.o.Clock.Now()
	if now.Sub(r.recovered) >= recoverEvery {
		if as, err := s.o.Store.Attempts(ctx, c.ID()); err == nil {
			r.recover(ctx, c, as)
		}
	}
	r.mu.Lock()
	r.guarded = r.overCap(c.Spec.AbandonTarget, now)
	guarded := r.guarded
	r.mu.Unlock()
	if !c.State.dialing() || c.Spec.Mode == ModePreview || !inSchedule(c.Spec.Schedule, now) {
		r.maybeFinish(ctx, c)
		return
	}
	free, snap := r.snapshot(c, now)
	reserveFirst := c.Spec.Mode == ModeProgressive || guarded
	var n int
	if reserveFirst {
		// Each call holds its rep from the dial, so the free reps are
		// the lines: what progressive pacing answers with nothing
		// ringing unheld.
		n = pacing.Progressive{}.Decide(pacing.Snapshot{Now: now, Ready: snap.Ready})
	} else {
		r.mu.Lock()
		n = r.pacer.Decide(snap)
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.ready = snap.Ready
	r.mu.Unlock()
	if n <= 0 {
		r.maybeFinish(ctx, c)
		return
	}
	due, err := s.o.Store.Due(ctx, c.ID(), now, n)
	if err != nil {
		s.log.Warn("dialer: reading due attempts", slog.String("campaign", c.ID()), slog.Any("error", err))
		return
	}
	if len(due) == 0 {
		r.maybeFinish(ctx, c)
		return
	}
	reps := make([]string, len(due))
	if reserveFirst {
		for i, a := range due {
			if reps[i], free = s.reserveOne(ctx, a, free); reps[i] == "" {
				due = due[:i]
				break
			}
		}
	}
	// Each dial waits on the policy, the store and the trunk; a big
	// campaign's tick places them side by side. A busy trunk stops the
	// rest: they wait for the next tick, their reps released.
	var busy atomic.Bool
	var wg sync.WaitGroup
	sem := make(chan struct{}, dialWorkers)
	for i, a := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if busy.Load() {
				if reps[i] != "" {
					_ = s.o.Reps.Release(context.WithoutCancel(ctx), a.ID)
				}
				return
			}
			if _, err := s.dial(ctx, c, a, reps[i]); errors.Is(err, ErrTrunkBusy) {
				busy.Store(true)
			}
		})
	}
	wg.Wait()
}

// dialWorkers bounds the dials one tick of a campaign places at once.
const dialWorkers = 8

// snapshot counts the campaign's reps and calls for the pacer, tells
// the pacer of wrap-ups that ended, and returns the free reps, longest
// idle first.
func (r *runner) snapshot(c Campaign, now time.Time) ([]string, pacing.Snapshot) {
	s := r.s
	// Calls first, then reps: a call taking a rep in between shows as a
	// rep less (fewer lines), never as a free rep and a call holding it
	// both (one line too many).
	snap := pacing.Snapshot{Now: now}
	for _, lc := range s.liveCalls(c.ID()) {
		switch {
		case !lc.bridgedAt.IsZero():
			snap.Talking = append(snap.Talking, now.Sub(lc.bridgedAt))
		case !lc.answeredAt.IsZero():
			snap.Waiting++
		case lc.rep == "":
			snap.Ringing = append(snap.Ringing, now.Sub(lc.dialedAt))
		}
	}
	v := s.repsNow(c.Spec, now, true)
	snap.Ready, snap.Wrapping = len(v.free), v.wrapping
	r.mu.Lock()
	for _, d := range v.wrapEnded {
		r.pacer.Observe(pacing.Observation{Kind: pacing.ObserveWrap, At: now, Duration: d})
	}
	r.mu.Unlock()
	return v.free, snap
}

// repsView is what the campaign's reps are doing now.
type repsView struct {
	free []string // can take a call, longest idle first
	// wrapping has how long each rep in wrap-up after one of this node's
	// calls has been at it; wrapEnded the wrap-ups seen ended since.
	wrapping, wrapEnded []time.Duration
}

// repsNow reads the campaign's reps from the router; consume moves
// ended wrap-ups out of s.released into wrapEnded (the runner's tick
// does, for its pacer).
func (s *Service) repsNow(spec Spec, now time.Time, consume bool) repsView {
	type idle struct {
		id    string
		since time.Time
	}
	var free []idle
	var v repsView
	var sts []router.RepStatus
	for _, id := range s.campaignReps(spec) {
		if st, err := s.o.Reps.Rep(id); err == nil {
			sts = append(sts, st)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range sts {
		id := st.ID
		at, released := s.released[id]
		switch {
		case st.Presence == router.PresenceWrapUp && released:
			v.wrapping = append(v.wrapping, now.Sub(at))
		case released && consume:
			v.wrapEnded = append(v.wrapEnded, now.Sub(at))
			delete(s.released, id)
		}
		if st.Presence == router.PresenceAvailable && st.Capacity-st.Used >= voiceCost {
			free = append(free, idle{id, st.IdleSince})
		}
	}
	slices.SortFunc(free, func(a, b idle) int { return cmp.Or(a.since.Compare(b.since), cmp.Compare(a.id, b.id)) })
	for _, f := range free {
		v.free = append(v.free, f.id)
	}
	return v
}

// campaignReps are the reps a campaign's calls go to: those it lists
// and those with every skill it asks at its level.
func (s *Service) campaignReps(spec Spec) []string {
	var out []string
	for _, rep := range s.o.Roster() {
		ok := slices.Contains(spec.Reps, rep.ID)
		if !ok && len(spec.Skills) > 0 {
			ok = true
			for sk, lvl := range spec.Skills {
				if rep.Skills[sk] < max(lvl, 1) {
					ok = false
				}
			}
		}
		if ok {
			out = append(out, rep.ID)
		}
	}
	return out
}

// reserveOne holds the first of free that the router lets it, for a.
func (s *Service) reserveOne(ctx context.Context, a Attempt, free []string) (string, []string) {
	for i, rep := range free {
		if s.reserve(ctx, a, rep) {
			return rep, free[i+1:]
		}
	}
	return "", nil
}

// reserve holds rep for a's call (the reservation is named after the
// attempt); false when the router refuses.
func (s *Service) reserve(ctx context.Context, a Attempt, rep string) bool {
	_, err := s.o.Reps.Reserve(ctx, reservation(a, rep))
	if err != nil && !errors.Is(err, router.ErrNoRep) {
		s.log.Warn("dialer: reserving a rep", slog.String("attempt", a.ID), slog.String("rep", rep), slog.Any("error", err))
	}
	return err == nil
}

// observe feeds the campaign's pacer, when it runs here.
func (s *Service) observe(campaign string, o pacing.Observation) {
	if r := s.runner(campaign); r != nil {
		r.mu.Lock()
		r.pacer.Observe(o)
		r.mu.Unlock()
	}
}

// concluded counts a finished attempt for the abandonment cap and marks
// the campaign to be checked for being finished.
func (s *Service) concluded(a Attempt, rep string) {
	if rep != "" {
		s.mu.Lock()
		s.released[rep] = a.EndedAt
		s.mu.Unlock()
	}
	r := s.runner(a.Campaign)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirty = true
	if a.Outcome == OutcomeAnswered || a.Outcome == OutcomeAbandoned {
		r.answers = append(r.answers, answer{at: a.AnsweredAt, abandoned: a.Outcome == OutcomeAbandoned})
		r.answered++
		if a.Outcome == OutcomeAbandoned {
			r.abandons++
		}
	}
}

// overCap reports whether abandonment reached target over the campaign
// or the last 30 days. r.mu is held.
func (r *runner) overCap(target float64, now time.Time) bool {
	cut := now.Add(-abandonWindow)
	i, _ := slices.BinarySearchFunc(r.answers, cut, func(x answer, t time.Time) int { return x.at.Compare(t) })
	r.answers = r.answers[i:]
	recent, recentAb := len(r.answers), 0
	for _, x := range r.answers {
		if x.abandoned {
			recentAb++
		}
	}
	return reached(r.abandons, r.answered, target) || reached(recentAb, recent, target)
}

func reached(abandons, answered int, target float64) bool {
	return answered > 0 && float64(abandons) >= target*float64(answered)
}

// maybeFinish moves a campaign whose attempts have all concluded on:
// a trial to trial_done, the rest to done.
func (r *runner) maybeFinish(ctx context.Context, c Campaign) {
	r.mu.Lock()
	dirty := r.dirty
	r.dirty = false
	r.mu.Unlock()
	if !dirty || !c.State.dialing() || len(r.s.liveCalls(c.ID())) > 0 {
		return
	}
	n, err := r.s.o.Store.Counts(ctx, c.ID())
	if err != nil {
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
		return
	}
	// A trial waits for its sample's attempts; a running campaign for
	// all of them.
	prefix := "state:"
	if c.State == StateTrial {
		prefix = "trial_state:"
	}
	if n.sum(prefix, "") > n[prefix+string(AttemptDone)] {
		return
	}
	next := StateDone
	if c.State == StateTrial {
		next = StateTrialDone
	}
	_, err = r.s.transition(ctx, c.ID(), func(cur *Campaign) error {
		if cur.State != c.State {
			return ErrState
		}
		cur.State = next
		return nil
	})
	if err != nil && !errors.Is(err, ErrState) {
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
	}
}
