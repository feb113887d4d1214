package dialer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// SimTrunk is a Trunk with no SIP: each number's call plays a SimCall
// on the Clock, so tests, the gateway's end-to-end and crash tests and
// the demo run campaigns without a carrier. It records every Dial, so a
// test can prove each attempt was dialed at most once.
type SimTrunk struct {
	clock Clock
	// Rule says how a call to a number goes; nil is SimByLastDigit.
	Rule func(number string) SimCall

	mu    sync.Mutex
	dials []Dial
	// active are the calls whose events are not all read yet: what
	// settled looks at.
	active []*simCall
}

// SimCall is how a simulated call goes: after Ring, its Outcome (with
// OutcomeAnswered and OutcomeMachine the call is answered; an answered
// call bridged to a rep lasts Talk). Ring beyond the dial's ring timeout
// is no_answer.
type SimCall struct {
	Outcome Outcome
	Ring    time.Duration
	Talk    time.Duration
	SIPCode int
}

// SimByLastDigit is the default rule, by the number's last digit:
// 0-2 a person answers after 5s and talks 60s once bridged; 3 a machine;
// 4 busy (486); 5 unavailable (480); 6 failed (503); 7-9 no answer.
func SimByLastDigit(number string) SimCall {
	d := byte('9')
	if number != "" {
		d = number[len(number)-1]
	}
	switch d {
	case '0', '1', '2':
		return SimCall{Outcome: OutcomeAnswered, Ring: 5 * time.Second, Talk: time.Minute, SIPCode: 200}
	case '3':
		return SimCall{Outcome: OutcomeMachine, Ring: 5 * time.Second, SIPCode: 200}
	case '4':
		return SimCall{Outcome: OutcomeBusy, Ring: time.Second, SIPCode: 486}
	case '5':
		return SimCall{Outcome: OutcomeUnavailable, Ring: time.Second, SIPCode: 480}
	case '6':
		return SimCall{Outcome: OutcomeFailed, Ring: time.Second, SIPCode: 503}
	}
	return SimCall{Outcome: OutcomeNoAnswer, Ring: time.Hour, SIPCode: 487}
}

var _ Trunk = (*SimTrunk)(nil)

// NewSimTrunk returns a simulated trunk on clock (nil: the system clock).
func NewSimTrunk(clock Clock) *SimTrunk {
	if clock == nil {
		clock = SystemClock{}
	}
	return &SimTrunk{clock: clock}
}

// Dials returns every Dial placed, in order.
func (t *SimTrunk) Dials() []Dial {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Dial(nil), t.dials...)
}

func (t *SimTrunk) Dial(ctx context.Context, d Dial) (Call, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rule := t.Rule
	if rule == nil {
		rule = SimByLastDigit
	}
	t.mu.Lock()
	t.dials = append(t.dials, d)
	t.mu.Unlock()
	c := &simCall{clock: t.clock, plan: rule(d.To), events: make(chan Progress, 4), talk: make(chan (<-chan time.Time), 1),
		abandoned: make(chan struct{}), hungUp: make(chan struct{})}
	// Timers start here and in Bridge, not in the call's goroutine, so
	// durations are exact on a ManualClock however late that goroutine
	// runs.
	c.events <- Progress{Kind: ProgressRinging, At: t.clock.Now()}
	ring, noAnswer := c.plan.Ring, d.RingTimeout > 0 && c.plan.Ring >= d.RingTimeout
	if noAnswer {
		ring = d.RingTimeout
	}
	t.mu.Lock()
	t.active = append(t.active, c)
	t.mu.Unlock()
	go c.play(t.clock.After(ring), noAnswer)
	return c, nil
}

type simCall struct {
	clock  Clock
	plan   SimCall
	events chan Progress

	// parked is set while the call's goroutine waits for a timer or the
	// gateway; ended once it closed its events.
	parked, ended atomic.Bool
	// talk gets the talk timer when the call is bridged.
	talk              chan (<-chan time.Time)
	abandoned, hungUp chan struct{}
	bridgeOnce        sync.Once
	abandonOnce, once sync.Once
}

func (c *simCall) Events() <-chan Progress { return c.events }

func (c *simCall) Bridge(ctx context.Context, rep RepLeg) error {
	c.bridgeOnce.Do(func() { c.talk <- c.clock.After(c.plan.Talk) })
	return nil
}

func (c *simCall) Abandon(ctx context.Context, a AbandonAction) error {
	c.abandonOnce.Do(func() { close(c.abandoned) })
	return nil
}

func (c *simCall) Hangup(ctx context.Context) error {
	c.once.Do(func() { close(c.hungUp) })
	return nil
}

func (c *simCall) end(at time.Time, o Outcome, code int, by string) {
	c.events <- Progress{Kind: ProgressEnded, At: at, Outcome: o, SIPCode: code, HungUpBy: by}
	close(c.events)
	c.ended.Store(true)
}

// live reports whether a call is in progress or its events unread.
func (t *SimTrunk) live() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.active) > 0
}

// settled reports whether every call waits on the clock or the gateway
// with its events read: a test moving a ManualClock waits for it, so a
// call's next step happens at the time it is due. Calls ended and read
// are forgotten.
func (t *SimTrunk) settled() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := t.active[:0]
	ok := true
	for _, c := range t.active {
		drained := len(c.events) == 0
		if c.ended.Load() && drained {
			continue
		}
		kept = append(kept, c)
		ok = ok && drained && (c.parked.Load() || c.ended.Load())
	}
	clear(t.active[len(kept):])
	t.active = kept
	return ok
}

// wait returns the time timer fired at, or ok false when the gateway
// hung up first.
func (c *simCall) wait(timer <-chan time.Time) (time.Time, bool) {
	c.parked.Store(true)
	defer c.parked.Store(false)
	select {
	case at := <-timer:
		return at, true
	case <-c.hungUp:
		return c.clock.Now(), false
	}
}

func (c *simCall) play(ring <-chan time.Time, noAnswer bool) {
	p := c.plan
	at, rang := c.wait(ring)
	switch {
	case !rang:
		c.end(at, OutcomeFailed, 487, "gateway")
		return
	case noAnswer:
		c.end(at, OutcomeNoAnswer, 487, "")
		return
	case p.Outcome != OutcomeAnswered && p.Outcome != OutcomeMachine:
		c.end(at, p.Outcome, p.SIPCode, "")
		return
	}
	c.events <- Progress{Kind: ProgressAnswered, At: at, Machine: p.Outcome == OutcomeMachine}
	c.parked.Store(true)
	select {
	case talk := <-c.talk:
		c.parked.Store(false)
		if at, ok := c.wait(talk); ok {
			c.end(at, OutcomeAnswered, 200, "customer")
		} else {
			c.end(at, OutcomeAnswered, 200, "gateway")
		}
	case <-c.abandoned:
		c.end(c.clock.Now(), OutcomeAbandoned, 200, "gateway")
	case <-c.hungUp:
		c.end(c.clock.Now(), p.Outcome, 200, "gateway")
	}
}
