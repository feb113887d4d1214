// Package sim is a deterministic discrete-event simulation of a contact
// centre that drives the real router: Poisson arrivals per channel,
// exponential handle times and patience, rep shifts, and the router's own
// timers, all on a manual clock. Same scenario and seed, same result.
//
// It exists to prove the router against queueing theory (Erlang C and A,
// see erlang.go and the tests) and to compare strategies (Compare).
package sim

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// Scenario is one simulated contact centre.
type Scenario struct {
	// Seed makes a run; replications use Seed, Seed+1, ...
	Seed uint64
	// Duration is how long contacts arrive; the run then drains.
	Duration time.Duration
	// Warmup is the start excluded from the statistics (the centre starts
	// empty); zero means none.
	Warmup time.Duration
	// Router is the router's configuration; its Reps are replaced by Reps.
	Router router.Config
	Reps   []RepSpec
	// Streams are the arrival streams.
	Streams []Stream
	// Targets is the service-level threshold per channel; a missing
	// channel means 20s.
	Targets map[string]time.Duration
	// AcceptDelay is how long a rep takes to accept an offer (queues with
	// offers only).
	AcceptDelay time.Duration
}

// RepSpec is a simulated rep and their shift.
type RepSpec struct {
	router.Rep
	// Start and End bound the shift, from the start of the run; End zero
	// means to the end of the run (and the drain).
	Start, End time.Duration
}

// Stream is a Poisson stream of contacts of one kind.
type Stream struct {
	Channel string
	// Rate is arrivals per hour.
	Rate float64
	// MeanHandle is the mean of the exponential handle time.
	MeanHandle time.Duration
	// MeanPatience is the mean of the exponential patience; zero means the
	// customer never gives up.
	MeanPatience time.Duration
	// VIP is the share of VIP contacts; Tiers the shares of tiers A to D
	// among the rest (the remainder is ungraded).
	VIP   float64
	Tiers [4]float64
	// Needs are the skill and language mixes, picked by weight; empty
	// means no requirement.
	Needs []Need
	// Owned is the share of contacts from customers with an owner, drawn
	// uniformly from Owners (by rep id).
	Owned  float64
	Owners []string
}

// Need is a skill and language requirement with its weight in a stream.
type Need struct {
	Weight   float64
	Skills   map[string]int
	Language string
}

// Contact is one simulated contact's outcome.
type Contact struct {
	Channel    string // the channel it arrived on
	VIP        bool
	Owner      string
	Arrived    time.Duration
	Wait       time.Duration // to answer or abandonment
	Answered   bool
	Abandoned  bool
	Overflowed bool
	Rep        string
	Ring       router.Ring
}

// Run is the outcome of one run.
type Run struct {
	Contacts []Contact // those that arrived after the warm-up
	// Occupancy per rep: held units over capacity, averaged over the rep's
	// shift within [Warmup, Duration].
	Occupancy map[string]float64
	Decisions int
}

type evKind uint8

const (
	evArrival evKind = iota
	evAbandon
	evComplete
	evShiftStart
	evShiftEnd
	evAccept
)

type event struct {
	at   time.Duration
	seq  uint64
	kind evKind
	i    int // stream, contact or rep index
	rep  string
}

type events []event

func (h events) Len() int { return len(h) }
func (h events) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h events) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *events) Push(x any)   { *h = append(*h, x.(event)) }
func (h *events) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type simContact struct {
	Contact
	stream  int
	channel string // now (after a move)
	held    int    // units held on rep
	done    bool
}

type engine struct {
	s     Scenario
	rng   *rand.Rand
	clk   *router.ManualClock
	r     *router.Router
	start time.Time
	now   time.Duration
	evs   events
	seq   uint64
	cs    []*simContact
	// occupancy, integrated per rep whenever the rep's load or shift
	// changes, within [Warmup, Duration]
	reps map[string]*repAcc
	decs int
}

type repAcc struct {
	cap     int
	used    int
	onShift bool
	last    time.Duration
	busy    float64 // unit-seconds
	staffed float64 // seconds
}

// touch integrates the rep's load and shift up to t.
func (e *engine) touch(a *repAcc, t time.Duration) {
	lo, hi := max(a.last, e.s.Warmup), min(t, e.s.Duration)
	if hi > lo {
		dt := (hi - lo).Seconds()
		if a.onShift {
			a.staffed += dt
		}
		a.busy += float64(a.used) * dt
	}
	a.last = t
}

func (e *engine) load(rep string, units int) {
	a := e.reps[rep]
	e.touch(a, e.now)
	a.used += units
}

// Simulate runs s once with seed.
func Simulate(s Scenario, seed uint64) (Run, error) {
	ctx := context.Background()
	start := time.Date(2025, 1, 6, 8, 0, 0, 0, time.UTC)
	e := &engine{s: s, rng: rand.New(rand.NewPCG(seed, 0x5eed)), clk: router.NewManualClock(start), start: start,
		reps: map[string]*repAcc{}}
	cfg := s.Router
	cfg.Reps = nil
	for _, rs := range s.Reps {
		cfg.Reps = append(cfg.Reps, rs.Rep)
		c := rs.Capacity
		if c == 0 {
			c = cfg.Capacity
		}
		if c == 0 {
			c = 100
		}
		e.reps[rs.ID] = &repAcc{cap: c}
	}
	r, err := router.New(cfg, router.Options{Clock: e.clk})
	if err != nil {
		return Run{}, err
	}
	e.r = r
	for i, st := range s.Streams {
		if st.Rate > 0 {
			e.push(e.exp(3600/st.Rate), evArrival, i, "")
		}
	}
	for _, rs := range s.Reps {
		e.push(rs.Start, evShiftStart, 0, rs.ID)
		if rs.End > 0 {
			e.push(rs.End, evShiftEnd, 0, rs.ID)
		}
	}
	for {
		next := time.Duration(math.MaxInt64)
		if len(e.evs) > 0 {
			next = e.evs[0].at
		}
		if dl, ok := r.NextDeadline(); ok {
			if t := dl.Sub(start); t <= next {
				e.advance(max(t, e.now))
				ds, err := r.Tick(ctx, e.clk.Now())
				if err != nil {
					return Run{}, err
				}
				e.apply(ds)
				continue
			}
		}
		if len(e.evs) == 0 {
			break
		}
		ev := heap.Pop(&e.evs).(event)
		e.advance(ev.at)
		if err := e.handle(ctx, ev); err != nil {
			return Run{}, fmt.Errorf("sim at %s: %w", e.now, err)
		}
	}
	run := Run{Occupancy: map[string]float64{}, Decisions: e.decs}
	for _, c := range e.cs {
		if c.Arrived >= s.Warmup && c.Arrived < s.Duration {
			run.Contacts = append(run.Contacts, c.Contact)
		}
	}
	for _, rs := range s.Reps {
		a := e.reps[rs.ID]
		e.touch(a, s.Duration)
		if a.staffed > 0 {
			run.Occupancy[rs.ID] = a.busy / (a.staffed * float64(a.cap))
		}
	}
	return run, nil
}

func (e *engine) exp(mean float64) time.Duration {
	return time.Duration(e.rng.ExpFloat64() * mean * float64(time.Second))
}

func (e *engine) push(at time.Duration, k evKind, i int, rep string) {
	e.seq++
	heap.Push(&e.evs, event{at: at, seq: e.seq, kind: k, i: i, rep: rep})
}

// advance moves the clock.
func (e *engine) advance(t time.Duration) {
	e.now = t
	e.clk.Set(e.start.Add(t))
}

func (e *engine) handle(ctx context.Context, ev event) error {
	switch ev.kind {
	case evArrival:
		st := e.s.Streams[ev.i]
		if next := e.now + e.exp(3600/st.Rate); next < e.s.Duration {
			e.push(next, evArrival, ev.i, "")
		}
		return e.arrive(ctx, ev.i)
	case evAbandon:
		c := e.cs[ev.i]
		if c.done || c.Answered {
			return nil
		}
		c.Abandoned, c.done, c.Wait = true, true, e.now-c.Arrived
		ds, err := e.r.Release(ctx, e.convID(ev.i))
		if err != nil {
			return err
		}
		e.apply(ds)
	case evComplete:
		c := e.cs[ev.i]
		c.done = true
		e.load(c.Rep, -c.held)
		ds, err := e.r.Release(ctx, e.convID(ev.i))
		if err != nil {
			return err
		}
		e.apply(ds)
	case evAccept:
		c := e.cs[ev.i]
		if c.done || c.Answered {
			return nil
		}
		d, err := e.r.Accept(ctx, e.convID(ev.i), ev.rep)
		if err != nil {
			return nil // the offer ended meanwhile
		}
		e.apply([]router.Decision{d})
	case evShiftStart:
		e.touch(e.reps[ev.rep], e.now)
		e.reps[ev.rep].onShift = true
		ds, err := e.r.SetPresence(ctx, ev.rep, router.PresenceAvailable)
		if err != nil {
			return err
		}
		e.apply(ds)
	case evShiftEnd:
		e.touch(e.reps[ev.rep], e.now)
		e.reps[ev.rep].onShift = false
		ds, err := e.r.SetPresence(ctx, ev.rep, router.PresenceOffline)
		if err != nil {
			return err
		}
		e.apply(ds)
	}
	return nil
}

func (e *engine) convID(i int) string { return "c" + itoa(i) }

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}

func (e *engine) arrive(ctx context.Context, si int) error {
	st := e.s.Streams[si]
	i := len(e.cs)
	c := &simContact{Contact: Contact{Channel: st.Channel, Arrived: e.now}, stream: si, channel: st.Channel}
	e.cs = append(e.cs, c)
	t := router.Task{ConversationID: e.convID(i), CustomerID: "cust" + itoa(i), Channel: st.Channel}
	if e.rng.Float64() < st.VIP {
		t.VIP, c.VIP = true, true
	} else {
		u := e.rng.Float64()
		for k, share := range st.Tiers {
			if u < share {
				t.Tier = [...]sessions.Tier{sessions.TierA, sessions.TierB, sessions.TierC, sessions.TierD}[k]
				break
			}
			u -= share
		}
	}
	if len(st.Needs) > 0 {
		total := 0.0
		for _, n := range st.Needs {
			total += n.Weight
		}
		u := e.rng.Float64() * total
		for _, n := range st.Needs {
			if u < n.Weight {
				t.Skills, t.Language = n.Skills, n.Language
				break
			}
			u -= n.Weight
		}
	}
	if len(st.Owners) > 0 && e.rng.Float64() < st.Owned {
		t.Owner = st.Owners[e.rng.IntN(len(st.Owners))]
		c.Owner = t.Owner
	}
	if st.MeanPatience > 0 {
		e.push(e.now+e.exp(st.MeanPatience.Seconds()), evAbandon, i, "")
	}
	d, err := e.r.Enqueue(ctx, t)
	if err != nil {
		return err
	}
	e.apply([]router.Decision{d})
	return nil
}

// apply acts on the router's decisions as the gateway would.
func (e *engine) apply(ds []router.Decision) {
	for _, d := range ds {
		e.decs++
		i := e.byConv(d.ConversationID)
		c := e.cs[i]
		switch d.Kind {
		case router.KindAssign, router.KindAccepted:
			if d.Kind == router.KindAssign {
				c.held = e.s.Router.Cost(d.Channel)
				e.load(d.RepID, c.held)
			}
			c.Answered, c.Wait, c.Rep, c.Ring = true, e.now-c.Arrived, d.RepID, d.Ring
			e.push(e.now+e.exp(e.s.Streams[c.stream].MeanHandle.Seconds()), evComplete, i, "")
		case router.KindOffer:
			c.held = e.s.Router.Cost(d.Channel)
			c.Rep = d.RepID
			e.load(d.RepID, c.held)
			e.push(e.now+e.s.AcceptDelay, evAccept, i, d.RepID)
		case router.KindOfferExpired, router.KindOfferDeclined, router.KindOfferWithdrawn:
			e.load(d.RepID, -c.held)
			c.held = 0
		case router.KindOverflow:
			if d.Overflow.Action == router.ActionMove {
				c.channel = d.Overflow.ToChannel
				continue
			}
			c.Overflowed, c.done, c.Wait = true, true, e.now-c.Arrived
		}
	}
}

func (e *engine) byConv(id string) int {
	n := 0
	for _, ch := range id[1:] {
		n = n*10 + int(ch-'0')
	}
	return n
}

// Stats are the figures of one or more runs.
type Stats struct {
	Offered, Answered, Abandoned, Overflowed int
	// PWait is the share of contacts not answered on arrival.
	PWait float64
	// ServiceLevel is the share of contacts answered within their
	// channel's target (abandoned and overflowed count as missed).
	ServiceLevel float64
	// ASA is the mean wait of answered contacts.
	ASA time.Duration
	// AbandonRate is abandoned over offered.
	AbandonRate float64
	// P99Wait is the 99th percentile wait of answered contacts.
	P99Wait time.Duration
	// OccupancyMean, OccupancyStd and Jain describe occupancy across reps;
	// Jain's fairness index is (Σx)² / (n·Σx²), 1 when all are equal.
	OccupancyMean, OccupancyStd, Jain float64
	// VIPServiceLevel is ServiceLevel among VIP contacts.
	VIPServiceLevel float64
	// OwnerHitRate is the share of answered contacts with an owner that
	// the owner answered.
	OwnerHitRate float64
}

// Summarise computes the statistics of a run.
func Summarise(run Run, targets map[string]time.Duration) Stats {
	var st Stats
	var waits []time.Duration
	var sumWait time.Duration
	var vip, vipIn, owned, ownerHit, inTarget int
	for _, c := range run.Contacts {
		st.Offered++
		target := targets[c.Channel]
		if target == 0 {
			target = 20 * time.Second
		}
		if c.Wait > 0 || !c.Answered {
			st.PWait++
		}
		switch {
		case c.Answered:
			st.Answered++
			sumWait += c.Wait
			waits = append(waits, c.Wait)
			if c.Wait <= target {
				inTarget++
			}
			if c.Owner != "" {
				owned++
				if c.Rep == c.Owner {
					ownerHit++
				}
			}
		case c.Abandoned:
			st.Abandoned++
		case c.Overflowed:
			st.Overflowed++
		}
		if c.VIP {
			vip++
			if c.Answered && c.Wait <= target {
				vipIn++
			}
		}
	}
	if st.Offered > 0 {
		st.PWait /= float64(st.Offered)
		st.ServiceLevel = float64(inTarget) / float64(st.Offered)
		st.AbandonRate = float64(st.Abandoned) / float64(st.Offered)
	}
	if st.Answered > 0 {
		st.ASA = sumWait / time.Duration(st.Answered)
		slices.Sort(waits)
		st.P99Wait = waits[min(len(waits)-1, int(math.Ceil(0.99*float64(len(waits))))-1)]
	}
	if vip > 0 {
		st.VIPServiceLevel = float64(vipIn) / float64(vip)
	}
	if owned > 0 {
		st.OwnerHitRate = float64(ownerHit) / float64(owned)
	}
	var xs []float64
	for _, o := range run.Occupancy {
		xs = append(xs, o)
	}
	slices.Sort(xs) // map order must not change float sums
	st.OccupancyMean, st.OccupancyStd, st.Jain = spread(xs)
	return st
}

func spread(xs []float64) (mean, std, jain float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	var sum, sq float64
	for _, x := range xs {
		sum += x
		sq += x * x
	}
	n := float64(len(xs))
	mean = sum / n
	std = math.Sqrt(max(sq/n-mean*mean, 0))
	if sq > 0 {
		jain = sum * sum / (n * sq)
	}
	return mean, std, jain
}
