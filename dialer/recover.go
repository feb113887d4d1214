package dialer

import (
	"context"
	"log/slog"
	"time"
)

// recoverEvery is how often a runner looks again for attempts other
// nodes left in a call: one whose node was alive at the last look is
// concluded once that node's heartbeat lapses.
const recoverEvery = 30 * time.Second

// nodeLease names a node's heartbeat among the store's leases: each
// node renews its own every tick (Tick), so another can tell a call
// followed by a live node (a preview dial served there, a campaign
// whose lease moved while its calls went on) from one a dead node left.
func nodeLease(node string) string { return "~node:" + node }

// recover concludes the attempts of as left in a call state by a node
// that no longer follows them: this one before a restart, or one whose
// heartbeat lapsed. r.mu is not held.
func (r *runner) recover(ctx context.Context, c Campaign, as []Attempt) {
	s := r.s
	r.recovered = s.o.Clock.Now()
	alive := map[string]bool{}
	for _, a := range as {
		if !a.State.live() || s.following(a.ID) {
			continue
		}
		if a.Node != "" && a.Node != s.o.Node {
			up, seen := alive[a.Node]
			if !seen {
				up = s.nodeAlive(ctx, a.Node)
				alive[a.Node] = up
			}
			if up {
				continue
			}
		}
		s.interrupted(ctx, c, a)
	}
}

// nodeAlive reports whether node's heartbeat holds: probing takes it
// when it lapsed, and gives it straight back. An error counts as alive,
// so a store hiccup concludes nothing.
func (s *Service) nodeAlive(ctx context.Context, node string) bool {
	probe := s.o.Node + "/probe"
	took, err := s.o.Store.Lease(ctx, nodeLease(node), probe, s.o.LeaseTTL)
	if err != nil {
		return true
	}
	if took {
		_ = s.o.Store.Unlease(ctx, nodeLease(node), probe)
	}
	return !took
}

// interrupted concludes an attempt found in a call state with no call
// followed here: a crash or a lost lease cut it. It is not dialed
// again; the customer's next try follows the retry rules.
func (s *Service) interrupted(ctx context.Context, c Campaign, a Attempt) {
	a.State, a.Outcome, a.EndedAt = AttemptDone, OutcomeInterrupted, s.o.Clock.Now()
	next := s.nextTry(c, a)
	if _, err := s.o.Store.SaveAttempts(ctx, append([]Attempt{a}, next...)...); err != nil {
		s.log.Warn("dialer: concluding an interrupted attempt", slog.String("attempt", a.ID), slog.Any("error", err))
		return
	}
	s.m.outcome(OutcomeInterrupted)
	ev := CallEvent{Step: StepOutcome, Outcome: OutcomeInterrupted}
	if len(next) > 0 {
		ev.NextTry = next[0].Due
	}
	s.record(ctx, a, ev)
}
