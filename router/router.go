package router

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// Errors of the Router's methods, wrapped with the id at fault.
var (
	ErrUnknownRep  = errors.New("router: unknown rep")
	ErrUnknownTask = errors.New("router: unknown task")
	ErrNotOffered  = errors.New("router: task is not offered to this rep")
	ErrInvalid     = errors.New("router: invalid input")
)

// Options are the Router's collaborators; nil fields get defaults.
type Options struct {
	// Clock is the time source; nil means SystemClock.
	Clock Clock
	// State is where claims are made atomically; nil means a new
	// MemoryState (one process).
	State State
}

// Router owns the reps and queues and decides who gets each task. See the
// package doc for its concurrency rules.
type Router struct {
	// mu guards everything below. Lock order: Router.mu, then whatever the
	// State locks inside its methods (MemoryState.mu). The State never calls
	// back into the Router.
	mu        sync.Mutex
	cfg       Config
	clock     Clock
	state     State
	queues    []*queue
	byName    map[string]*queue
	byChannel map[string]*queue
	reps      map[string]*repState
	repList   []*repState // by id, for deterministic order
	tasks     map[string]*taskState
	timers    timerHeap
	seq       uint64
	skillIDs  interner
	langIDs   interner
	needs     map[string]*need
	// hot mirrors, by rep index, what route reads of every rep, packed so
	// the scan over a thousand reps stays in cache. sync keeps it current.
	hot      []repHot
	repVer   uint64 // bumped when any rep is added or changed
	sc       scan
	maxCands int
}

type repHot struct {
	used, capacity int32
	wrapUntil      int64 // unix nanoseconds; 0 none
	available      bool
}

// sync copies rs's presence and load into r.hot; call after changing them.
func (r *Router) sync(rs *repState) {
	h := &r.hot[rs.idx]
	h.used, h.capacity, h.available = int32(rs.used), int32(rs.capacity), rs.available
	h.wrapUntil = 0
	if !rs.wrapUntil.IsZero() {
		h.wrapUntil = rs.wrapUntil.UnixNano()
	}
}

type repState struct {
	rep       Rep
	idx       int
	tier      int
	capacity  int
	skills    bitset
	levels    []uint8 // by skill id
	langs     bitset
	channels  map[string]bool // nil: every channel
	presence  Presence
	available bool // presence == PresenceAvailable, for the hot path
	wrapUntil time.Time
	wrapGen   uint64
	idleSince time.Time
	used      int
	held      map[string]*taskState
	voice     int // held voice tasks
	misses    int
	waiting   taskHeap // tasks waiting only for this rep (owner wait)
	// targeted holds every waiting task whose owner or sticky assignee this
	// rep is, whatever its stage, so the rep finds them when it frees up
	// even without the skills.
	targeted map[*taskState]struct{}
}

type taskStatus uint8

const (
	statusWaiting taskStatus = iota
	statusOffered
	statusActive
)

func (s taskStatus) String() string {
	return [...]string{"waiting", "offered", "active"}[s]
}

type taskState struct {
	t          Task
	prio       int
	k1, k2     int64 // queue order: k1, then k2, then seq
	seq        uint64
	q          *queue
	cls        *class // requirements (stage at least exact), heap when queued there
	hidx       int
	inRep      *repState // set while in a rep's waiting heap
	status     taskStatus
	stage      stage
	stageStart time.Time
	until      time.Time // end of the owner wait
	relaxAt    time.Time
	overflowAt time.Time
	offerUntil time.Time
	targetID   string
	target     *repState // r.reps[targetID] as of the last route (reps come and go)
	targetRing Ring
	moved      bool
	rep        *repState // holder while offered or active
	excluded   map[string]bool
	gen        uint64
	timerAt    time.Time // the live timer's time, when timerGen == gen
	timerGen   uint64
	gone       bool
	offer      Decision
	// reserved: a Reserve, never offered, never queued, and with a target
	// only the target may take it.
	reserved bool
}

// before is the queue order: higher effective priority first, FIFO within.
// With aging, effective priority is base + wait/Aging, so two tasks keep
// their order for as long as both wait and the order is the enqueue time
// minus base×Aging: a static key.
func (t *taskState) before(o *taskState) bool {
	if t.k1 != o.k1 {
		return t.k1 < o.k1
	}
	if t.k2 != o.k2 {
		return t.k2 < o.k2
	}
	return t.seq < o.seq
}

// New builds a Router from cfg, which must pass Validate.
func New(cfg Config, opts Options) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.State == nil {
		opts.State = NewMemoryState()
	}
	r := &Router{
		cfg: cfg, clock: opts.Clock, state: opts.State,
		byName: map[string]*queue{}, byChannel: map[string]*queue{},
		reps: map[string]*repState{}, tasks: map[string]*taskState{},
		skillIDs: interner{}, langIDs: interner{}, needs: map[string]*need{},
		maxCands: cfg.maxCandidates(),
	}
	qcs := cfg.Queues
	if len(qcs) == 0 {
		qcs = []QueueConfig{{Name: "default"}}
	}
	for _, qc := range qcs {
		q := &queue{cfg: qc, skills: qc.Skills, drop: map[string]bool{}, classes: map[string]*class{}}
		for _, s := range qc.Relaxed.DropSkills {
			if s == "*" {
				q.dropAll = true
			}
			q.drop[s] = true
		}
		r.queues = append(r.queues, q)
		r.byName[qc.Name] = q
		for _, ch := range qc.Channels {
			if _, ok := r.byChannel[ch]; !ok {
				r.byChannel[ch] = q
			}
		}
	}
	now := r.clock.Now()
	for _, rep := range cfg.Reps {
		r.upsertLocked(rep, now)
	}
	return r, nil
}

// Config returns the configuration the router runs with.
func (r *Router) Config() Config { return r.cfg }

func (r *Router) upsertLocked(rep Rep, now time.Time) *repState {
	rs, ok := r.reps[rep.ID]
	if !ok {
		rs = &repState{presence: PresenceOffline, idleSince: now, held: map[string]*taskState{}, targeted: map[*taskState]struct{}{}}
		r.reps[rep.ID] = rs
		r.repList = append(r.repList, rs)
		slices.SortFunc(r.repList, func(a, b *repState) int {
			if a == rs {
				return cmpString(rep.ID, b.rep.ID)
			}
			if b == rs {
				return cmpString(a.rep.ID, rep.ID)
			}
			return cmpString(a.rep.ID, b.rep.ID)
		})
		r.hot = append(r.hot, repHot{})
		for i, x := range r.repList {
			x.idx = i
			r.sync(x)
		}
	}
	r.repVer++
	rs.rep = rep.clone()
	rs.tier = max(rep.Tier, 1)
	rs.capacity = rep.Capacity
	if rs.capacity == 0 {
		rs.capacity = r.cfg.capacity()
	}
	rs.skills, rs.levels, rs.langs, rs.channels = nil, nil, nil, nil
	for s, l := range rep.Skills {
		id := r.skillIDs.id(s)
		rs.skills.set(id)
		for len(rs.levels) <= id {
			rs.levels = append(rs.levels, 0)
		}
		rs.levels[id] = uint8(max(l, 1))
	}
	for _, l := range rep.Languages {
		rs.langs.set(r.langIDs.id(l))
	}
	if len(rep.Channels) > 0 {
		rs.channels = map[string]bool{}
		for _, ch := range rep.Channels {
			rs.channels[ch] = true
		}
	}
	r.sync(rs)
	return rs
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// UpsertRep adds a rep (offline) or changes a rep's configuration, keeping
// the rep's presence and work. A rep who can now take work gets it. A
// capacity lowered below what the rep holds takes effect as tasks end.
func (r *Router) UpsertRep(ctx context.Context, rep Rep) ([]Decision, error) {
	if err := rep.validate(r.cfg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	rs := r.upsertLocked(rep, now)
	var out []Decision
	err := r.fillRep(ctx, rs, now, &out)
	return out, err
}

// Enqueue routes a new task: it is assigned or offered at once if a rep can
// take it, else it waits (KindQueued). A task for a conversation the router
// already holds is not routed twice: the decision says where it is (for an
// assigned conversation, the sticky assignee).
func (r *Router) Enqueue(ctx context.Context, t Task) (Decision, error) {
	if t.ConversationID == "" || t.Channel == "" {
		return Decision{}, fmt.Errorf("%w: task needs a conversation id and a channel", ErrInvalid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	if ts, ok := r.tasks[t.ConversationID]; ok {
		d := r.base(ts, now)
		switch ts.status {
		case statusWaiting:
			d.Kind, d.Ring, d.Why = KindQueued, ts.stage.ring(), "already waiting"
		case statusOffered:
			d = ts.offer
		case statusActive:
			d.Kind, d.Ring, d.RepID = KindAssign, RingSticky, ts.rep.rep.ID
			d.Why = "conversation already assigned to this rep"
		}
		return d, nil
	}
	q := r.queueFor(t)
	if t.EnqueuedAt.IsZero() {
		t.EnqueuedAt = now
	}
	t.Skills = maps2(t.Skills)
	t.Reachable = slices.Clone(t.Reachable)
	ts := &taskState{t: t, hidx: -1}
	ts.prio = r.cfg.Priority.Priority(t.VIP, t.Tier) + t.Boost
	if a := r.cfg.Priority.aging(); a > 0 {
		ts.k2 = t.EnqueuedAt.UnixNano() - int64(ts.prio)*a.Nanoseconds()
	} else {
		ts.k1, ts.k2 = -int64(ts.prio), t.EnqueuedAt.UnixNano()
	}
	r.seq++
	ts.seq = r.seq
	switch {
	case t.Assignee != "":
		ts.targetID, ts.targetRing = t.Assignee, RingSticky
	case t.Owner != "" && !q.cfg.Owner.Disabled:
		ts.targetID, ts.targetRing = t.Owner, RingOwner
	}
	if err := r.state.Push(ctx, q.cfg.Name, t.ConversationID); err != nil {
		return Decision{}, fmt.Errorf("router: enqueue %s: %w", t.ConversationID, err)
	}
	r.tasks[t.ConversationID] = ts
	r.enterQueue(ts, q, now)
	if tr := r.reps[ts.targetID]; tr != nil && q.cfg.Owner.Wait > 0 && r.targetWorthWaiting(tr, ts, now) {
		ts.stage = stageTarget
		ts.until = now.Add(q.cfg.Owner.Wait)
		ts.relaxAt = time.Time{}
	}
	return r.route(ctx, ts, now)
}

func maps2(m map[string]int) map[string]int {
	if m == nil {
		return nil
	}
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (r *Router) queueFor(t Task) *queue {
	if q, ok := r.byName[t.Queue]; ok {
		return q
	}
	if q, ok := r.byChannel[t.Channel]; ok {
		return q
	}
	return r.queues[0]
}

// enterQueue (re)starts ts's rings in q: exact stage, timers from now.
func (r *Router) enterQueue(ts *taskState, q *queue, now time.Time) {
	ts.q = q
	ts.stage = stageExact
	ts.stageStart = now
	ts.until = time.Time{}
	ts.relaxAt = time.Time{}
	if a := q.cfg.Relaxed.After; a > 0 {
		ts.relaxAt = now.Add(a)
	}
	ts.overflowAt = time.Time{}
	if a := q.cfg.Overflow.After; a > 0 && !(ts.moved && q.cfg.Overflow.Action == ActionMove) {
		ts.overflowAt = now.Add(a)
	}
	ts.cls = r.classFor(q, ts.t.Channel, ts.t.Skills, ts.t.Language, stageExact)
}

// targetWorthWaiting: the target is online but cannot take the task now,
// and could once it frees up.
func (r *Router) targetWorthWaiting(tr *repState, ts *taskState, now time.Time) bool {
	if tr.presence != PresenceAvailable && tr.presence != PresenceOnCall {
		return false
	}
	if ts.excluded[tr.rep.ID] || (tr.channels != nil && !tr.channels[ts.t.Channel]) || ts.cls.cost > tr.capacity {
		return false
	}
	ts.target = tr
	_, why := r.eval(tr, ts, now)
	return why != rNone
}

func (r *Router) classFor(q *queue, channel string, skills map[string]int, lang string, st stage) *class {
	all := skills
	if len(q.skills) > 0 {
		all = maps2(q.skills)
		for s, l := range skills {
			all[s] = max(all[s], l)
		}
	}
	nk := needKey(all, lang)
	key := channel + "|" + nk + "|" + string(rune('0'+st))
	if c, ok := q.classes[key]; ok {
		return c
	}
	n, ok := r.needs[q.cfg.Name+"|"+nk]
	if !ok {
		n = &need{lang: -1}
		if lang != "" {
			n.lang = r.langIDs.id(lang)
		}
		for s, l := range all {
			id := r.skillIDs.id(s)
			n.skills.set(id)
			if l > 1 {
				n.levels = append(n.levels, level{id, uint8(l)})
			}
			if q.dropAll || q.drop[s] {
				continue
			}
			n.relaxedSkills.set(id)
			if l > 1 && !q.cfg.Relaxed.IgnoreLevels {
				n.relaxedLevels = append(n.relaxedLevels, level{id, uint8(l)})
			}
		}
		r.needs[q.cfg.Name+"|"+nk] = n
	}
	c := &class{key: key, q: q, channel: channel, cost: r.cfg.Cost(channel), need: n, stage: st}
	q.classes[key] = c
	return c
}

// place puts a waiting task where a rep that frees up will find it.
func (r *Router) place(ts *taskState) {
	if tr := r.reps[ts.targetID]; tr != nil {
		tr.targeted[ts] = struct{}{}
	}
	if ts.stage == stageTarget {
		if tr := r.reps[ts.targetID]; tr != nil {
			ts.inRep = tr
			heap.Push(&tr.waiting, ts)
			return
		}
		ts.stage = stageExact
	}
	if ts.cls.stage != ts.stage {
		ts.cls = r.classFor(ts.q, ts.t.Channel, ts.t.Skills, ts.t.Language, ts.stage)
	}
	heap.Push(&ts.cls.tasks, ts)
}

// unplace takes a task out of whichever heap holds it.
func (r *Router) unplace(ts *taskState) {
	if tr := r.reps[ts.targetID]; tr != nil {
		delete(tr.targeted, ts)
	}
	if ts.inRep != nil {
		heapRemove(&ts.inRep.waiting, ts)
		ts.inRep = nil
		return
	}
	heapRemove(&ts.cls.tasks, ts)
}

func (r *Router) schedule(ts *taskState) {
	var at time.Time
	pick := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	switch ts.status {
	case statusOffered:
		pick(ts.offerUntil)
	case statusWaiting:
		if ts.stage == stageTarget {
			pick(ts.until)
		}
		if ts.stage == stageExact {
			pick(ts.relaxAt)
		}
		pick(ts.overflowAt)
	}
	if at.IsZero() {
		ts.gen++
		return
	}
	if ts.timerGen == ts.gen && at.Equal(ts.timerAt) {
		return // already set
	}
	ts.gen++
	ts.timerAt, ts.timerGen = at, ts.gen
	r.seq++
	heap.Push(&r.timers, timer{at: at, seq: r.seq, task: ts, gen: ts.gen})
}

// NextDeadline is when Tick next has work: an owner wait ending, a ring
// widening, an overflow, an offer timing out or a wrap-up ending.
func (r *Router) NextDeadline() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.timers) > 0 {
		if r.timers[0].live() {
			return r.timers[0].at, true
		}
		heap.Pop(&r.timers)
	}
	return time.Time{}, false
}

// Tick runs the timers due at now and returns what they decided.
func (r *Router) Tick(ctx context.Context, now time.Time) ([]Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Decision
	for len(r.timers) > 0 && !r.timers[0].at.After(now) {
		tm := heap.Pop(&r.timers).(timer)
		if !tm.live() {
			continue
		}
		var err error
		if tm.rep != nil {
			rs := tm.rep
			rs.wrapUntil = time.Time{}
			r.sync(rs)
			rs.wrapGen++
			rs.idleSince = now
			err = r.fillRep(ctx, rs, now, &out)
		} else {
			ts := tm.task
			switch ts.status {
			case statusOffered:
				err = r.endOffer(ctx, ts, now, KindOfferExpired, &out)
			case statusWaiting:
				err = r.advance(ctx, ts, now, &out)
			}
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// advance moves a waiting task through its stages as time passes and
// routes it again when its rings widened.
func (r *Router) advance(ctx context.Context, ts *taskState, now time.Time, out *[]Decision) error {
	widened := false
	if ts.stage == stageTarget && !now.Before(ts.until) {
		r.leaveTarget(ts, ts.until)
		widened = true
	}
	if ts.stage == stageExact && !ts.relaxAt.IsZero() && !now.Before(ts.relaxAt) {
		r.unplace(ts)
		ts.stage = stageRelaxed
		r.place(ts)
		widened = true
	}
	if !ts.overflowAt.IsZero() && !now.Before(ts.overflowAt) {
		ts.overflowAt = time.Time{}
		return r.overflow(ctx, ts, now, out)
	}
	if widened {
		d, err := r.route(ctx, ts, now)
		if err != nil {
			return err
		}
		if d.Kind != KindQueued {
			*out = append(*out, d)
		}
		return nil
	}
	r.schedule(ts)
	return nil
}

// leaveTarget ends the owner wait of ts as of at: the skills rings open.
func (r *Router) leaveTarget(ts *taskState, at time.Time) {
	if ts.stage != stageTarget {
		return
	}
	placed := ts.inRep != nil
	if placed {
		r.unplace(ts)
	}
	ts.stage = stageExact
	ts.until = time.Time{}
	if a := ts.q.cfg.Relaxed.After; a > 0 {
		ts.relaxAt = at.Add(a)
	}
	if placed {
		r.place(ts)
	}
}

// overflow runs the queue's overflow action for ts.
func (r *Router) overflow(ctx context.Context, ts *taskState, now time.Time, out *[]Decision) error {
	oc := ts.q.cfg.Overflow
	action := oc.Action
	if action == ActionMove {
		for _, ch := range oc.MoveTo {
			if ch == ts.t.Channel || (len(ts.t.Reachable) > 0 && !slices.Contains(ts.t.Reachable, ch)) {
				continue
			}
			t2 := ts.t
			t2.Channel, t2.Queue = ch, ""
			q2 := r.queueFor(t2)
			probe := &taskState{t: t2, q: q2, stage: stageExact, targetID: ts.targetID, targetRing: ts.targetRing, excluded: ts.excluded}
			probe.cls = r.classFor(q2, ch, t2.Skills, t2.Language, stageExact)
			if !r.anyEligible(probe, now) {
				continue
			}
			d := r.base(ts, now)
			d.Kind, d.Ring = KindOverflow, RingOverflow
			d.Overflow = &Overflow{Action: ActionMove, FromChannel: ts.t.Channel, ToChannel: ch, ToQueue: q2.cfg.Name}
			d.Why = fmt.Sprintf("waited %s in %s; moved to %s, which has a free rep", now.Sub(ts.t.EnqueuedAt).Round(time.Second), ts.q.cfg.Name, ch)
			*out = append(*out, d)
			r.unplace(ts)
			if err := r.state.Drop(ctx, ts.q.cfg.Name, ts.t.ConversationID); err != nil {
				return err
			}
			if err := r.state.Push(ctx, q2.cfg.Name, ts.t.ConversationID); err != nil {
				return err
			}
			ts.t.Channel, ts.t.Queue, ts.moved = ch, q2.cfg.Name, true
			r.enterQueue(ts, q2, now)
			d2, err := r.route(ctx, ts, now)
			if err != nil {
				return err
			}
			*out = append(*out, d2)
			return nil
		}
		action = oc.Fallback
	}
	if action == "" {
		r.schedule(ts)
		return nil
	}
	d := r.base(ts, now)
	d.Kind, d.Ring = KindOverflow, RingOverflow
	d.Overflow = &Overflow{Action: action}
	d.Why = fmt.Sprintf("nobody took it within %s", now.Sub(ts.stageStart).Round(time.Second))
	if oc.Action == ActionMove {
		d.Why += "; no channel to move to had a free rep"
	}
	*out = append(*out, d)
	return r.remove(ctx, ts)
}

// remove forgets a waiting task.
func (r *Router) remove(ctx context.Context, ts *taskState) error {
	r.unplace(ts)
	ts.gone = true
	delete(r.tasks, ts.t.ConversationID)
	return r.state.Drop(ctx, ts.q.cfg.Name, ts.t.ConversationID)
}

// Accept confirms an offer. The returned decision (KindAccepted) carries
// the offer's explanation for the assignment event.
func (r *Router) Accept(ctx context.Context, conv, rep string) (Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts, err := r.offered(conv, rep)
	if err != nil {
		return Decision{}, err
	}
	now := r.clock.Now()
	ts.status = statusActive
	ts.gen++ // the offer timeout is void
	ts.rep.misses = 0
	d := ts.offer
	d.Kind, d.At = KindAccepted, now
	d.WaitedMS = now.Sub(ts.t.EnqueuedAt).Milliseconds()
	return d, nil
}

// Decline hands an offer back; the task goes to the next rep and this rep
// is not offered it again.
func (r *Router) Decline(ctx context.Context, conv, rep string) ([]Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts, err := r.offered(conv, rep)
	if err != nil {
		return nil, err
	}
	var out []Decision
	err = r.endOffer(ctx, ts, r.clock.Now(), KindOfferDeclined, &out)
	return out, err
}

func (r *Router) offered(conv, rep string) (*taskState, error) {
	ts, ok := r.tasks[conv]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTask, conv)
	}
	if ts.status != statusOffered || ts.rep.rep.ID != rep {
		return nil, fmt.Errorf("%w: %s to %s", ErrNotOffered, conv, rep)
	}
	return ts, nil
}

// endOffer takes an offer back from its rep (expired, declined or
// withdrawn), then routes the task again and refills the rep.
func (r *Router) endOffer(ctx context.Context, ts *taskState, now time.Time, kind Kind, out *[]Decision) error {
	rs := ts.rep
	if err := r.state.Unclaim(ctx, ts.t.ConversationID, ts.q.cfg.Name); err != nil {
		return err
	}
	r.unhold(ts)
	ts.status = statusWaiting
	if kind != KindOfferWithdrawn {
		// The rep said no (or nothing): don't offer them this task again.
		if ts.excluded == nil {
			ts.excluded = map[string]bool{}
		}
		ts.excluded[rs.rep.ID] = true
	}
	d := r.base(ts, now)
	d.Kind, d.RepID, d.Ring = kind, rs.rep.ID, ts.offer.Ring
	switch kind {
	case KindOfferExpired:
		rs.misses++
		d.Why = fmt.Sprintf("not accepted within %s (miss %d in a row)", ts.q.cfg.Offer.AcceptTimeout, rs.misses)
		if rs.misses >= ts.q.cfg.maxMisses() && rs.presence == PresenceAvailable {
			d.RepAway = true
			d.Why += "; rep set away"
		}
	case KindOfferDeclined:
		d.Why = "declined by the rep"
	case KindOfferWithdrawn:
		d.Why = "rep is no longer available"
	}
	*out = append(*out, d)
	if ts.targetID == rs.rep.ID {
		r.leaveTarget(ts, now)
	}
	if d.RepAway {
		if err := r.state.SetPresence(ctx, rs.rep.ID, PresenceAway); err != nil {
			return err
		}
		if err := r.setPresence(ctx, rs, PresenceAway, now, out); err != nil {
			return err
		}
	}
	ts.hidx = -1
	if err := r.advance(ctx, ts, now, out); err != nil {
		return err
	}
	if ts.status == statusWaiting && ts.hidx < 0 && !ts.gone {
		// advance found no reason to route (no ring widened): route now.
		d2, err := r.route(ctx, ts, now)
		if err != nil {
			return err
		}
		if d2.Kind != KindQueued {
			*out = append(*out, d2)
		}
	}
	return r.fillRep(ctx, rs, now, out)
}

// unhold frees the capacity ts holds on its rep (the State is the caller's).
func (r *Router) unhold(ts *taskState) {
	rs := ts.rep
	rs.used -= ts.cls.cost
	r.sync(rs)
	delete(rs.held, ts.t.ConversationID)
	if ts.t.Channel == sessions.ChannelVoice {
		rs.voice--
	}
	ts.rep = nil
	ts.gen++
}

// Release ends a task: the conversation was resolved or the call hung up
// (an assigned task: capacity freed, wrap-up starts), the customer gave up
// (a waiting task: it leaves the queue), or an offered task's customer left
// (the offer is withdrawn). The freed rep gets the next task.
func (r *Router) Release(ctx context.Context, conv string) ([]Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts, ok := r.tasks[conv]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTask, conv)
	}
	return r.release(ctx, ts, true)
}

// Unreserve ends a reservation that was never used (the contact policy
// refused the call it was for, or the trunk was busy): the rep is freed
// with no wrap-up, since they handled nothing. Only reservations can be
// unreserved (ErrInvalid for a conversation's task).
func (r *Router) Unreserve(ctx context.Context, conv string) ([]Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts, ok := r.tasks[conv]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTask, conv)
	}
	if !ts.reserved {
		return nil, fmt.Errorf("%w: %s is not a reservation", ErrInvalid, conv)
	}
	return r.release(ctx, ts, false)
}

// release ends ts (r.mu held); wrap says whether an active task's rep
// goes into the channel's wrap-up.
func (r *Router) release(ctx context.Context, ts *taskState, wrap bool) ([]Decision, error) {
	conv := ts.t.ConversationID
	now := r.clock.Now()
	var out []Decision
	switch ts.status {
	case statusWaiting:
		return nil, r.remove(ctx, ts)
	case statusOffered:
		d := r.base(ts, now)
		d.Kind, d.RepID, d.Ring, d.Why = KindOfferWithdrawn, ts.rep.rep.ID, ts.offer.Ring, "the conversation ended"
		out = append(out, d)
	}
	rs := ts.rep
	if err := r.state.Unclaim(ctx, conv, ""); err != nil {
		return out, err
	}
	wasActive := ts.status == statusActive
	r.unhold(ts)
	ts.gone = true
	delete(r.tasks, conv)
	if w := r.cfg.WrapUp[ts.t.Channel]; wrap && wasActive && w > 0 {
		if end := now.Add(w); end.After(rs.wrapUntil) {
			rs.wrapUntil = end
			r.sync(rs)
			rs.wrapGen++
			r.seq++
			heap.Push(&r.timers, timer{at: end, seq: r.seq, rep: rs, gen: rs.wrapGen})
		}
		return out, nil
	}
	rs.idleSince = now
	err := r.fillRep(ctx, rs, now, &out)
	return out, err
}

// SetPresence sets a rep available, away, offline, on_call, break or
// after_call_work (Presence.Settable). A rep who becomes available gets
// waiting work; a rep who goes away, offline, on break or into after-call
// work loses their open offers (routed again) and no task waits for them
// any more.
// Tasks the rep already holds stay with the rep.
func (r *Router) SetPresence(ctx context.Context, rep string, p Presence) ([]Decision, error) {
	if !p.Settable() {
		return nil, fmt.Errorf("%w: presence %q cannot be set", ErrInvalid, p)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rs, ok := r.reps[rep]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownRep, rep)
	}
	// Shared first, so a node that syncs sees what this one is about to
	// act on.
	if err := r.state.SetPresence(ctx, rep, p); err != nil {
		return nil, fmt.Errorf("router: presence of %s: %w", rep, err)
	}
	var out []Decision
	err := r.setPresence(ctx, rs, p, r.clock.Now(), &out)
	return out, err
}

func (r *Router) setPresence(ctx context.Context, rs *repState, p Presence, now time.Time, out *[]Decision) error {
	old := rs.presence
	rs.presence = p
	rs.available = p == PresenceAvailable
	r.sync(rs)
	switch p {
	case PresenceAvailable:
		if old != PresenceAvailable {
			rs.misses = 0
			if old != PresenceOnCall {
				rs.idleSince = now
			}
		}
		return r.fillRep(ctx, rs, now, out)
	case PresenceAway, PresenceOffline, PresenceBreak, PresenceAfterCallWork:
		for _, ts := range r.sortedHeld(rs) {
			if ts.status == statusOffered {
				if err := r.endOffer(ctx, ts, now, KindOfferWithdrawn, out); err != nil {
					return err
				}
			}
		}
		waiting := slices.Clone(rs.waiting)
		slices.SortFunc(waiting, func(a, b *taskState) int {
			if a.before(b) {
				return -1
			}
			return 1
		})
		for _, ts := range waiting {
			r.leaveTarget(ts, now)
			d, err := r.route(ctx, ts, now)
			if err != nil {
				return err
			}
			if d.Kind != KindQueued {
				*out = append(*out, d)
			}
		}
	}
	return nil
}

func (r *Router) sortedHeld(rs *repState) []*taskState {
	held := make([]*taskState, 0, len(rs.held))
	for _, ts := range rs.held {
		held = append(held, ts)
	}
	slices.SortFunc(held, func(a, b *taskState) int { return cmpString(a.t.ConversationID, b.t.ConversationID) })
	return held
}

// Rep returns one rep's status.
func (r *Router) Rep(id string) (RepStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rs, ok := r.reps[id]
	if !ok {
		return RepStatus{}, fmt.Errorf("%w: %s", ErrUnknownRep, id)
	}
	return r.status(rs, r.clock.Now()), nil
}

// Reps returns every rep's status, by id.
func (r *Router) Reps() []RepStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	out := make([]RepStatus, len(r.repList))
	for i, rs := range r.repList {
		out[i] = r.status(rs, now)
	}
	return out
}

// status reports the rep with the tier and capacity in force (the
// defaults filled in), so no caller derives them again.
func (r *Router) status(rs *repState, now time.Time) RepStatus {
	rep := rs.rep.clone()
	rep.Tier, rep.Capacity = rs.tier, rs.capacity
	return RepStatus{Rep: rep, Presence: r.effective(rs, now), Used: rs.used, Active: len(rs.held),
		IdleSince: rs.idleSince, WrapUntil: rs.wrapUntil, Misses: rs.misses}
}

func (r *Router) effective(rs *repState, now time.Time) Presence {
	if rs.presence == PresenceAvailable {
		if rs.wrapUntil.After(now) {
			return PresenceWrapUp
		}
		if rs.voice > 0 {
			return PresenceOnCall
		}
	}
	return rs.presence
}

// TaskStatus is where a task stands.
type TaskStatus struct {
	Task
	// Status is "waiting", "offered" or "active".
	Status string `json:"status"`
	Queue  string `json:"queue"`
	// Ring is how far out a waiting task's rings reach now.
	Ring     Ring   `json:"ring,omitempty"`
	RepID    string `json:"rep_id,omitempty"`
	Priority int    `json:"priority"`
	// Reserved marks a reservation (Reserve): work held outside the
	// queues, which ends only with Release.
	Reserved bool `json:"reserved,omitempty"`
}

// Task returns where the conversation's task stands.
func (r *Router) Task(conv string) (TaskStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts, ok := r.tasks[conv]
	if !ok {
		return TaskStatus{}, fmt.Errorf("%w: %s", ErrUnknownTask, conv)
	}
	return ts.statusOf(), nil
}

// Tasks lists every task the router holds (waiting, offered, active), by
// conversation id.
func (r *Router) Tasks() []TaskStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]TaskStatus, 0, len(r.tasks))
	for _, ts := range r.tasks {
		out = append(out, ts.statusOf())
	}
	slices.SortFunc(out, func(a, b TaskStatus) int { return cmpString(a.ConversationID, b.ConversationID) })
	return out
}

func (ts *taskState) statusOf() TaskStatus {
	st := TaskStatus{Task: ts.t, Status: ts.status.String(), Queue: ts.q.cfg.Name, Priority: ts.prio, Reserved: ts.reserved}
	if ts.status == statusWaiting {
		st.Ring = ts.stage.ring()
		if ts.stage == stageTarget {
			st.Ring = ts.targetRing
		}
	}
	if ts.rep != nil {
		st.RepID = ts.rep.rep.ID
	}
	return st
}

// Waiting returns the number of waiting tasks.
func (r *Router) Waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ts := range r.tasks {
		if ts.status == statusWaiting {
			n++
		}
	}
	return n
}

// Adopt makes the router hold t as assigned to rep without routing it: an
// assignment made elsewhere (by a person through the API, before a
// restart, or by a gateway node that died). The rep's load counts it even
// past capacity (the rep then gets no new work until under), and Release
// ends it as usual. Adopting a task the router already holds as active
// with rep changes nothing; one it holds otherwise must be released first
// (ErrInvalid). With a shared State, ErrTaken (wrapped) means another
// live node holds the conversation.
func (r *Router) Adopt(ctx context.Context, t Task, rep string) error {
	if t.ConversationID == "" || t.Channel == "" {
		return fmt.Errorf("%w: task needs a conversation id and a channel", ErrInvalid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rs, ok := r.reps[rep]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownRep, rep)
	}
	if ts, ok := r.tasks[t.ConversationID]; ok {
		if ts.status == statusActive && ts.rep == rs {
			return nil
		}
		return fmt.Errorf("%w: %s is %s here; release it first", ErrInvalid, t.ConversationID, ts.status)
	}
	now := r.clock.Now()
	if t.EnqueuedAt.IsZero() {
		t.EnqueuedAt = now
	}
	t.Assignee = rep
	t.Skills = maps2(t.Skills)
	t.Reachable = slices.Clone(t.Reachable)
	q := r.queueFor(t)
	ts := &taskState{t: t, hidx: -1, q: q, stage: stageExact, stageStart: now,
		targetID: rep, targetRing: RingSticky}
	ts.prio = r.cfg.Priority.Priority(t.VIP, t.Tier) + t.Boost
	ts.cls = r.classFor(q, t.Channel, t.Skills, t.Language, stageExact)
	err := r.state.Adopt(ctx, Claim{Queue: q.cfg.Name, ConversationID: t.ConversationID, RepID: rep,
		Units: ts.cls.cost, Limit: rs.capacity})
	if err != nil {
		return fmt.Errorf("router: adopt %s for %s: %w", t.ConversationID, rep, err)
	}
	r.seq++
	ts.seq = r.seq
	r.tasks[t.ConversationID] = ts
	rs.used += ts.cls.cost
	r.sync(rs)
	rs.held[t.ConversationID] = ts
	if t.Channel == sessions.ChannelVoice {
		rs.voice++
	}
	rs.idleSince = now
	ts.rep = rs
	ts.status = statusActive
	return nil
}

// Sync makes the router's view of every rep's load and presence what the
// State says, taking in what other gateway nodes claimed, released and set
// since. A rep found with more room, or newly available, gets waiting
// work at once; the decisions are returned. In a cluster the gateway calls
// it every second or so; with one process it finds nothing to change.
// Wrap-up and idle time stay per node.
func (r *Router) Sync(ctx context.Context) ([]Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	loads, err := r.state.Loads(ctx)
	if err != nil {
		return nil, err
	}
	pres, err := r.state.Presences(ctx)
	if err != nil {
		return nil, err
	}
	now := r.clock.Now()
	var out []Decision
	for _, rs := range r.repList {
		p, ok := pres[rs.rep.ID]
		if !ok {
			p = PresenceOffline
		}
		if !p.Settable() {
			p = PresenceOffline // written by a newer version, or garbage
		}
		if p != rs.presence {
			if err := r.setPresence(ctx, rs, p, now, &out); err != nil {
				return out, err
			}
		}
		if u := loads[rs.rep.ID]; u != rs.used {
			freed := u < rs.used
			rs.used = u
			r.sync(rs)
			if freed {
				if err := r.fillRep(ctx, rs, now, &out); err != nil {
					return out, err
				}
			}
		}
	}
	return out, nil
}
