package callsim

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/omnigate/omnigate/dialer/pacing"
)

// Decide is how often the simulated runner asks the pacer.
const Decide = time.Second

// epoch is the virtual clock's zero: pacers see epoch plus the shift's
// elapsed time.
var epoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

type eventKind uint8

// Kinds in the order events of one instant are handled: the decision
// last, once the instant's calls, talks and wrap-ups have happened.
const (
	evRingEnd eventKind = iota // a call is answered, or ends unanswered
	evAbandon                  // an answered customer's wait runs out
	evTalkEnd
	evWrapEnd
	evDecide
)

type event struct {
	at   time.Duration
	seq  uint64
	kind eventKind
	id   int32 // call or rep
}

func (e event) before(o event) bool {
	if e.at != o.at {
		return e.at < o.at
	}
	if (e.kind == evDecide) != (o.kind == evDecide) {
		return o.kind == evDecide
	}
	return e.seq < o.seq
}

type outcome uint8

const (
	outHuman outcome = iota
	outMachine
	outUnanswered
)

type callState uint8

const (
	callRinging callState = iota
	callWaiting
	callTaken
	callAbandoned
	callEnded
)

type call struct {
	dialed  time.Duration
	outcome outcome
	state   callState
	pos     int32 // index in sim.ringing while ringing
}

type repState uint8

const (
	repReady repState = iota
	repTalking
	repWrapping
)

type sim struct {
	sc    Scenario
	p     pacing.Pacer
	rng   *rand.Rand
	now   time.Duration
	seq   uint64
	queue []event // binary heap

	calls   []call
	ringing []int32
	waiting []int32 // FIFO of answered calls; entries no longer waiting are skipped
	head    int
	nWait   int

	state []repState
	since []time.Duration
	ready []int32

	answerMu, answerSigma, talkMu, talkSigma float64

	talk time.Duration
	res  Result

	snap pacing.Snapshot
}

// Run simulates one shift of sc with pacer p, deterministic for seed.
func Run(sc Scenario, p pacing.Pacer, seed uint64) (Result, error) {
	if err := sc.Validate(); err != nil {
		return Result{}, err
	}
	s := &sim{sc: sc, p: p, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		state: make([]repState, sc.Reps), since: make([]time.Duration, sc.Reps)}
	s.answerMu, s.answerSigma = lognormal(sc.AnswerMean, sc.AnswerCV)
	s.talkMu, s.talkSigma = lognormal(sc.TalkMean, sc.TalkCV)
	for r := sc.Reps - 1; r >= 0; r-- {
		s.ready = append(s.ready, int32(r))
	}
	s.push(0, evDecide, 0)
	for len(s.queue) > 0 && s.queue[0].at < sc.Shift {
		e := s.pop()
		s.now = e.at
		switch e.kind {
		case evRingEnd:
			s.ringEnd(e.id)
		case evAbandon:
			s.abandon(e.id)
		case evTalkEnd:
			s.talkEnd(e.id)
		case evWrapEnd:
			s.wrapEnd(e.id)
		case evDecide:
			s.decide()
			s.push(s.now+Decide, evDecide, 0)
		}
	}
	s.res.Reps = sc.Reps
	s.res.Seed = seed
	s.res.Ringing = len(s.ringing)
	s.res.TalkOccupancy = s.talk.Seconds() / (float64(sc.Reps) * sc.Shift.Seconds())
	if s.res.Answered > 0 {
		s.res.AbandonRate = float64(s.res.Abandoned) / float64(s.res.Answered)
	}
	return s.res, nil
}

// lognormal gives mu and sigma of the normal whose exponential has this
// mean and coefficient of variation.
func lognormal(mean time.Duration, cv float64) (mu, sigma float64) {
	s2 := math.Log1p(cv * cv)
	return math.Log(mean.Seconds()) - s2/2, math.Sqrt(s2)
}

func (s *sim) sample(mu, sigma float64) time.Duration {
	return time.Duration(math.Exp(mu+sigma*s.rng.NormFloat64()) * 1e9)
}

func (s *sim) observe(k pacing.ObservationKind, d time.Duration) {
	s.p.Observe(pacing.Observation{Kind: k, At: epoch.Add(s.now), Duration: d})
}

// decide asks the pacer and places the calls it wants.
func (s *sim) decide() {
	sn := &s.snap
	sn.Now = epoch.Add(s.now)
	sn.Ready = len(s.ready)
	sn.Waiting = s.nWait
	sn.Talking, sn.Wrapping, sn.Ringing = sn.Talking[:0], sn.Wrapping[:0], sn.Ringing[:0]
	for r, st := range s.state {
		switch st {
		case repTalking:
			sn.Talking = append(sn.Talking, s.now-s.since[r])
		case repWrapping:
			sn.Wrapping = append(sn.Wrapping, s.now-s.since[r])
		}
	}
	for _, c := range s.ringing {
		sn.Ringing = append(sn.Ringing, s.now-s.calls[c].dialed)
	}
	// A trunk has a limit too: no pacer gets more than ten lines a rep
	// in one second.
	n := min(s.p.Decide(*sn), 10*s.sc.Reps)
	for range n {
		s.dial()
	}
}

// chances gives the outcome chances at the current time, with drift.
func (s *sim) chances() (answer, machine, busy float64) {
	sc := s.sc
	if sc.DriftTo < 0 {
		return sc.Answer, sc.Machine, sc.Busy
	}
	answer = sc.Answer + (sc.DriftTo-sc.Answer)*s.now.Seconds()/sc.Shift.Seconds()
	scale := (1 - answer) / (1 - sc.Answer)
	return answer, sc.Machine * scale, sc.Busy * scale
}

func (s *sim) dial() {
	id := int32(len(s.calls))
	c := call{dialed: s.now, pos: int32(len(s.ringing))}
	answer, machine, busy := s.chances()
	end := s.sc.RingTimeout
	switch u := s.rng.Float64(); {
	case u < answer+machine:
		c.outcome = outMachine
		if u < answer {
			c.outcome = outHuman
		}
		if t := s.sample(s.answerMu, s.answerSigma); t < end {
			end = t
		} else {
			c.outcome = outUnanswered
		}
	case u < answer+machine+busy:
		c.outcome = outUnanswered
		end = s.sc.BusyMin + time.Duration(s.rng.Float64()*float64(s.sc.BusyMax-s.sc.BusyMin))
	default:
		c.outcome = outUnanswered
	}
	s.calls = append(s.calls, c)
	s.ringing = append(s.ringing, id)
	s.res.Dialed++
	s.push(s.now+end, evRingEnd, id)
}

func (s *sim) ringEnd(id int32) {
	c := &s.calls[id]
	last := s.ringing[len(s.ringing)-1]
	s.ringing[c.pos] = last
	s.calls[last].pos = c.pos
	s.ringing = s.ringing[:len(s.ringing)-1]
	ring := s.now - c.dialed
	switch c.outcome {
	case outMachine:
		c.state = callEnded
		s.res.Machine++
		s.observe(pacing.ObserveMachine, ring)
	case outUnanswered:
		c.state = callEnded
		s.res.Unanswered++
		s.observe(pacing.ObserveUnanswered, ring)
	case outHuman:
		s.res.Answered++
		s.observe(pacing.ObserveAnswered, ring)
		if n := len(s.ready); n > 0 {
			r := s.ready[n-1]
			s.ready = s.ready[:n-1]
			c.state = callTaken
			s.startTalk(r)
			return
		}
		c.state = callWaiting
		s.waiting = append(s.waiting, id)
		s.nWait++
		s.push(s.now+s.sc.ConnectLimit, evAbandon, id)
	}
}

func (s *sim) abandon(id int32) {
	c := &s.calls[id]
	if c.state != callWaiting {
		return
	}
	c.state = callAbandoned
	s.nWait--
	s.res.Abandoned++
	s.observe(pacing.ObserveAbandoned, s.sc.ConnectLimit)
}

func (s *sim) startTalk(r int32) {
	d := s.sample(s.talkMu, s.talkSigma)
	s.talk += min(s.now+d, s.sc.Shift) - s.now
	s.state[r], s.since[r] = repTalking, s.now
	s.push(s.now+d, evTalkEnd, r)
}

func (s *sim) talkEnd(r int32) {
	s.observe(pacing.ObserveTalk, s.now-s.since[r])
	s.state[r], s.since[r] = repWrapping, s.now
	s.push(s.now+s.sc.Wrap, evWrapEnd, r)
}

func (s *sim) wrapEnd(r int32) {
	s.observe(pacing.ObserveWrap, s.now-s.since[r])
	for s.head < len(s.waiting) {
		id := s.waiting[s.head]
		s.head++
		if c := &s.calls[id]; c.state == callWaiting {
			c.state = callTaken
			s.nWait--
			s.startTalk(r)
			return
		}
	}
	s.waiting, s.head = s.waiting[:0], 0
	s.state[r], s.since[r] = repReady, s.now
	s.ready = append(s.ready, r)
}

func (s *sim) push(at time.Duration, k eventKind, id int32) {
	s.seq++
	q := append(s.queue, event{at: at, seq: s.seq, kind: k, id: id})
	for i := len(q) - 1; i > 0; {
		up := (i - 1) / 2
		if !q[i].before(q[up]) {
			break
		}
		q[i], q[up] = q[up], q[i]
		i = up
	}
	s.queue = q
}

func (s *sim) pop() event {
	q := s.queue
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && q[l].before(q[m]) {
			m = l
		}
		if l+1 < n && q[l+1].before(q[m]) {
			m = l + 1
		}
		if m == i {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	s.queue = q
	return top
}
