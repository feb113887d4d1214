package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// reason is why a rep is not eligible, as a small number for counting;
// reasonName gives the Reason constant.
type reason uint8

const (
	rNone reason = iota
	rOffline
	rAway
	rOnCall
	rWrapUp
	rCapacity
	rChannel
	rSkill
	rLevel
	rLanguage
	rTier
	rDeclined
	rOwnerWait
	rRingClosed
	numReasons
)

var reasonName = [numReasons]string{"", ReasonOffline, ReasonAway, ReasonOnCall, ReasonWrapUp, ReasonCapacity,
	ReasonChannel, ReasonSkill, ReasonLevel, ReasonLanguage, ReasonTier, ReasonDeclined, ReasonOwnerWait, ReasonRingClosed}

func (r reason) String() string { return reasonName[r] }

// eval is one rep's standing for one task.
type eval struct {
	rs     *repState
	ring   Ring   // innermost ring the rep belongs to; "" none
	reason reason // why not eligible now; rNone: eligible
	known  bool   // ring is set (it is worked out only when needed)
}

func presenceReason(rs *repState, now time.Time) reason {
	if rs.available {
		if !rs.wrapUntil.IsZero() && rs.wrapUntil.After(now) {
			return rWrapUp
		}
		return rNone
	}
	switch rs.presence {
	case PresenceAway, PresenceBreak, PresenceAfterCallWork:
		return rAway
	case PresenceOnCall:
		return rOnCall
	}
	return rOffline
}

func exactFail(rs *repState, n *need, q *queue) reason {
	if rs.tier > 1 && !q.cfg.AnyTier {
		return rTier
	}
	if !rs.skills.covers(n.skills) {
		return rSkill
	}
	for _, l := range n.levels {
		if l.skill >= len(rs.levels) || rs.levels[l.skill] < l.min {
			return rLevel
		}
	}
	if n.lang >= 0 && !rs.langs.has(n.lang) {
		return rLanguage
	}
	return rNone
}

func relaxedFail(rs *repState, n *need, q *queue) reason {
	rc := q.cfg.Relaxed
	if rs.tier > 1 && !q.cfg.AnyTier && !rc.Tier2 {
		return rTier
	}
	if !rs.skills.covers(n.relaxedSkills) {
		return rSkill
	}
	for _, l := range n.relaxedLevels {
		if l.skill >= len(rs.levels) || rs.levels[l.skill] < l.min {
			return rLevel
		}
	}
	if n.lang >= 0 && !rc.AnyLanguage && !rs.langs.has(n.lang) {
		return rLanguage
	}
	return rNone
}

// match is a rep's ring membership for a class, ignoring presence and load.
func (r *Router) match(rs *repState, c *class) (Ring, reason) {
	if rs.channels != nil && !rs.channels[c.channel] {
		return "", rChannel
	}
	if c.cost > rs.capacity {
		return "", rCapacity
	}
	why := exactFail(rs, c.need, c.q)
	if why == rNone {
		return RingExact, rNone
	}
	if c.q.cfg.Relaxed.After == 0 || relaxedFail(rs, c.need, c.q) != rNone {
		return "", why
	}
	if c.stage < stageRelaxed {
		return RingRelaxed, rRingClosed
	}
	return RingRelaxed, rNone
}

// members returns the reps in one of c's rings (exact or relaxed, open or
// not), whatever their presence and load, in rep order; cached per class
// until a rep is added or changed.
func (r *Router) members(c *class) []*repState {
	if c.membersVer != r.repVer {
		c.members = c.members[:0]
		for _, rs := range r.repList {
			if ring, _ := r.match(rs, c); ring != "" {
				c.members = append(c.members, rs)
			}
		}
		c.membersVer = r.repVer
	}
	return c.members
}

// eval says whether rs can take ts now, and from which ring. Reasons are
// checked in this order: presence, load (free capacity), then ring
// membership (channel, tier, skills, levels, language, the owner's wait),
// then a decline. So a busy rep is "no_capacity" whatever their skills,
// and the skills are looked at only for reps who could take work now.
func (r *Router) eval(rs *repState, ts *taskState, now time.Time) (Ring, reason) {
	if why := r.load(rs, ts, now); why != rNone {
		ring, _ := r.membership(rs, ts)
		return ring, why
	}
	return r.membership(rs, ts)
}

// load: can rs take more work of ts's cost now?
func (r *Router) load(rs *repState, ts *taskState, now time.Time) reason {
	if why := presenceReason(rs, now); why != rNone {
		return why
	}
	if rs.used+ts.cls.cost > rs.capacity {
		return rCapacity
	}
	return rNone
}

// membership is the innermost ring rs belongs to for ts, and why rs may
// still not take it (not in any ring yet, or declined it).
func (r *Router) membership(rs *repState, ts *taskState) (Ring, reason) {
	var ring Ring
	if rs == ts.target {
		// The owner (or sticky assignee) needs no skills: they know the
		// customer.
		ring = ts.targetRing
		if rs.channels != nil && !rs.channels[ts.t.Channel] {
			return ring, rChannel
		}
	} else {
		var why reason
		ring, why = r.match(rs, ts.cls)
		if why == rNone && ts.stage == stageTarget {
			why = rOwnerWait
		}
		if why != rNone {
			return ring, why
		}
	}
	if ts.excluded[rs.rep.ID] {
		return ring, rDeclined
	}
	return ring, rNone
}

// better reports whether a beats b under q's selection policy.
func (r *Router) better(q *queue, a, b *repState) bool {
	switch q.cfg.selectPolicy() {
	case SelectRoundRobin:
		return r.rrDist(q, a) < r.rrDist(q, b)
	case SelectFewestActive:
		if len(a.held) != len(b.held) {
			return len(a.held) < len(b.held)
		}
		if !a.idleSince.Equal(b.idleSince) {
			return a.idleSince.Before(b.idleSince)
		}
		return a.idx < b.idx
	}
	if !a.idleSince.Equal(b.idleSince) {
		return a.idleSince.Before(b.idleSince)
	}
	if len(a.held) != len(b.held) {
		return len(a.held) < len(b.held)
	}
	return a.idx < b.idx
}

func (r *Router) rrDist(q *queue, rs *repState) int {
	last := -1
	if l, ok := r.reps[q.rrLast]; ok {
		last = l.idx
	}
	n := len(r.repList)
	return ((rs.idx-last-1)%n + n) % n
}

// scan is the evaluation of every rep for one task: how many were
// excluded for each reason, and the reps that passed the load test (with
// their ring and, if not eligible, the reason).
type scan struct {
	counts [numReasons]int
	passed []eval
	target *eval // the owner or sticky assignee, if a known rep
	tEval  eval
}

// route finds the rep for a waiting task and assigns or offers it; with
// nobody eligible the task waits (placed in its heap, timers set). The
// returned decision is the assignment, the offer or KindQueued.
//
// The scan over every rep is the hot loop of the router: it reads the
// compact r.hot array for presence and load and looks at skills only for
// reps who could take the work now.
func (r *Router) route(ctx context.Context, ts *taskState, now time.Time) (Decision, error) {
	ts.target = r.reps[ts.targetID]
	nowN := now.UnixNano()
	cost := int32(ts.cls.cost)
	for attempt := 0; ; attempt++ {
		sc := &r.sc
		sc.counts = [numReasons]int{}
		sc.passed = sc.passed[:0]
		sc.target = nil
		var target, exact, relaxed *repState
		for i := range r.hot {
			h := &r.hot[i]
			var why reason
			switch {
			case !h.available:
				why = presenceReason(r.repList[i], now)
			case h.wrapUntil > nowN:
				why = rWrapUp
			case h.used+cost > h.capacity:
				why = rCapacity
			}
			if why != rNone {
				sc.counts[why]++
				continue
			}
			rs := r.repList[i]
			ring, why := r.membership(rs, ts)
			sc.counts[why]++
			sc.passed = append(sc.passed, eval{rs, ring, why, true})
			if why != rNone {
				continue
			}
			switch ring {
			case RingSticky, RingOwner:
				target = rs
			case RingExact:
				if exact == nil || r.better(ts.q, rs, exact) {
					exact = rs
				}
			case RingRelaxed:
				if relaxed == nil || r.better(ts.q, rs, relaxed) {
					relaxed = rs
				}
			}
		}
		if ts.target != nil {
			ring, why := r.eval(ts.target, ts, now)
			sc.tEval = eval{ts.target, ring, why, true}
			sc.target = &sc.tEval
		}
		winner, ring := target, ts.targetRing
		if ts.reserved && ts.target != nil {
			exact, relaxed = nil, nil // a named rep or nobody
		}
		if winner == nil {
			winner, ring = exact, RingExact
		}
		if winner == nil {
			winner, ring = relaxed, RingRelaxed
		}
		if winner == nil {
			return r.queued(ts, now, sc), nil
		}
		d := r.explain(ts, winner, ring, sc, now)
		err := r.assign(ctx, ts, winner, ring, now)
		if errors.Is(err, ErrCapacity) && attempt <= 2*len(r.repList) {
			// Another node filled the rep: learn its real load, choose again.
			// Each refresh makes one rep's load true, so this ends.
			used, uerr := r.state.Used(ctx, winner.rep.ID)
			if uerr != nil {
				return Decision{}, uerr
			}
			winner.used = used
			r.sync(winner)
			continue
		}
		if errors.Is(err, ErrTaken) {
			// Another node claimed it: it is theirs, forget it here.
			r.unplace(ts)
			ts.gone = true
			delete(r.tasks, ts.t.ConversationID)
			d = r.base(ts, now)
			d.Kind, d.Why = KindTaken, "claimed by another gateway node"
			return d, nil
		}
		if err != nil {
			return Decision{}, fmt.Errorf("router: assign %s to %s: %w", ts.t.ConversationID, winner.rep.ID, err)
		}
		// Date the decision from the claim, not from before it: with
		// other nodes, the room it took may have been made by a release
		// in between, and the timeline must never show an assignment
		// ahead of the release that made room for it.
		d.At = r.clock.Now()
		if ts.status == statusOffered {
			d.Kind = KindOffer
			ts.offer = d
		}
		return d, nil
	}
}

func (r *Router) assign(ctx context.Context, ts *taskState, rs *repState, ring Ring, now time.Time) error {
	conv := ts.t.ConversationID
	err := r.state.Claim(ctx, Claim{Queue: ts.q.cfg.Name, ConversationID: conv, RepID: rs.rep.ID, Units: ts.cls.cost, Limit: rs.capacity})
	if err != nil {
		return err
	}
	if ts.hidx >= 0 {
		r.unplace(ts)
	}
	rs.used += ts.cls.cost
	r.sync(rs)
	rs.held[conv] = ts
	if ts.t.Channel == sessions.ChannelVoice {
		rs.voice++
	}
	rs.idleSince = now
	ts.rep = rs
	if ring == RingExact || ring == RingRelaxed {
		ts.q.rrLast = rs.rep.ID
	}
	if to := ts.q.cfg.Offer.AcceptTimeout; to > 0 && !ts.reserved {
		ts.status = statusOffered
		ts.offerUntil = now.Add(to)
	} else {
		ts.status = statusActive
	}
	r.schedule(ts)
	return nil
}

// fillRep gives rs waiting work while it can take some: each time the task
// first in queue order among those rs is eligible for. Because every change
// that could make a waiting task assignable routes it at once, no other
// rep with free capacity is eligible for that task either, so this finds
// what a full scan of every task would.
func (r *Router) fillRep(ctx context.Context, rs *repState, now time.Time, out *[]Decision) error {
	id := rs.rep.ID
	for {
		if presenceReason(rs, now) != rNone {
			return nil
		}
		free := rs.capacity - rs.used
		var best *taskState
		for ts := range rs.targeted {
			if ts.cls.cost <= free && !ts.excluded[id] && (rs.channels == nil || rs.channels[ts.t.Channel]) &&
				(best == nil || ts.before(best)) {
				best = ts
			}
		}
		for _, q := range r.queues {
			for _, c := range q.classes {
				if len(c.tasks) == 0 || c.cost > free {
					continue
				}
				if _, why := r.match(rs, c); why != rNone {
					continue
				}
				if ts := c.tasks.first(func(ts *taskState) bool { return !ts.excluded[id] }); ts != nil && (best == nil || ts.before(best)) {
					best = ts
				}
			}
		}
		if best == nil {
			return nil
		}
		d, err := r.route(ctx, best, now)
		if err != nil {
			return err
		}
		if d.Kind == KindQueued {
			return nil // not expected; never loop
		}
		*out = append(*out, d)
	}
}

// anyEligible reports whether some rep could take probe now.
func (r *Router) anyEligible(probe *taskState, now time.Time) bool {
	probe.target = r.reps[probe.targetID]
	for _, rs := range r.repList {
		if _, why := r.eval(rs, probe, now); why == rNone {
			return true
		}
	}
	return false
}

func (r *Router) queued(ts *taskState, now time.Time, sc *scan) Decision {
	if ts.hidx < 0 {
		r.place(ts)
	}
	r.schedule(ts)
	d := r.explain(ts, nil, "", sc, now)
	d.Kind = KindQueued
	d.Ring = ts.stage.ring()
	if ts.stage == stageTarget {
		d.Ring = ts.targetRing
		d.Why = fmt.Sprintf("waiting up to %s for %s %s, who is online but busy", ts.until.Sub(now).Round(time.Second), ts.targetRing, ts.targetID)
	} else {
		d.Why = fmt.Sprintf("no eligible rep with free capacity in rings up to %s", d.Ring)
	}
	return d
}

func (r *Router) base(ts *taskState, now time.Time) Decision {
	return Decision{
		ConversationID: ts.t.ConversationID, CustomerID: ts.t.CustomerID,
		Queue: ts.q.cfg.Name, Channel: ts.t.Channel, Priority: ts.prio,
		Select: ts.q.cfg.selectPolicy(), WaitedMS: now.Sub(ts.t.EnqueuedAt).Milliseconds(), At: now,
	}
}

func (r *Router) candidate(ts *taskState, e eval, now time.Time) Candidate {
	return Candidate{RepID: e.rs.rep.ID, Ring: e.ring, Excluded: e.reason.String(),
		IdleMS: now.Sub(e.rs.idleSince).Milliseconds(), Active: len(e.rs.held), FreeUnits: e.rs.capacity - e.rs.used}
}

// explain builds the decision for giving ts to winner (nil: nobody) from
// the scan of every rep.
func (r *Router) explain(ts *taskState, winner *repState, ring Ring, sc *scan, now time.Time) Decision {
	d := r.base(ts, now)
	d.Kind, d.Ring, d.Considered = KindAssign, ring, len(r.repList)
	eligible := sc.counts[rNone]
	if eligible < len(r.repList) {
		d.Excluded = make(map[string]int, 4)
		for why, n := range sc.counts[1:] {
			if n > 0 {
				d.Excluded[reason(why+1).String()] = n
			}
		}
	}
	if winner != nil {
		d.RepID = winner.rep.ID
		d.Why = r.why(ts, winner, ring, eligible, sc.target, now)
	}
	if r.maxCands == 0 {
		return d
	}
	n := r.maxCands
	cands := make([]Candidate, 0, min(n, len(r.repList)))
	seen := func(rs *repState) bool {
		for _, c := range cands {
			if c.RepID == rs.rep.ID {
				return true
			}
		}
		return false
	}
	add := func(e eval) {
		if len(cands) < n && !seen(e.rs) {
			cands = append(cands, r.candidate(ts, e, now))
		}
	}
	if winner != nil {
		add(eval{winner, ring, rNone, true})
	}
	if sc.target != nil {
		add(*sc.target)
	}
	// Other eligible reps, best first under the policy (top n only).
	var top []eval
	for _, e := range sc.passed {
		if e.reason != rNone || seen(e.rs) {
			continue
		}
		i := len(top)
		for i > 0 && r.better(ts.q, e.rs, top[i-1].rs) {
			i--
		}
		if i < n {
			top = append(top, eval{})
			copy(top[i+1:], top[i:])
			top[i] = e
			if len(top) > n {
				top = top[:n]
			}
		}
	}
	for _, e := range top {
		add(e)
	}
	// Then the excluded, nearest first: reps in one of the task's rings
	// (busy, away, waiting for the ring to open...), then the rest, each in
	// rep order.
	for _, rs := range r.members(ts.cls) {
		if len(cands) >= n {
			break
		}
		if !seen(rs) {
			if ring, why := r.eval(rs, ts, now); why != rNone {
				add(eval{rs, ring, why, true})
			}
		}
	}
	for _, rs := range r.repList {
		if len(cands) >= n {
			break
		}
		if !seen(rs) {
			if ring, why := r.eval(rs, ts, now); why != rNone && ring == "" {
				add(eval{rs, ring, why, true})
			}
		}
	}
	d.Candidates = cands
	return d
}

func (r *Router) why(ts *taskState, w *repState, ring Ring, eligible int, target *eval, now time.Time) string {
	free := w.capacity - w.used
	switch ring {
	case RingSticky:
		return fmt.Sprintf("sticky: the conversation's assignee is available with %d free units", free)
	case RingOwner:
		return fmt.Sprintf("owner: the customer's dedicated advisor is available with %d free units", free)
	}
	var s string
	switch ts.q.cfg.selectPolicy() {
	case SelectRoundRobin:
		s = "next in round robin"
	case SelectFewestActive:
		s = "fewest active tasks"
	default:
		s = "longest idle"
	}
	s = fmt.Sprintf("%s of %d eligible in the %s ring (idle %s, %d active, %d free units)",
		s, eligible, ring, now.Sub(w.idleSince).Round(time.Second), len(w.held), free)
	if ring == RingRelaxed {
		s += "; nobody in the exact ring was free"
	}
	if target != nil {
		s += fmt.Sprintf("; %s %s skipped: %s", ts.targetRing, ts.targetID, target.reason)
	} else if ts.targetID != "" {
		s += fmt.Sprintf("; %s %s is not a known rep", ts.targetRing, ts.targetID)
	}
	return s
}
