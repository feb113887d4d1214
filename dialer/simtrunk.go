package dialer

import (
	"context"
	"sync"
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
	c := &simCall{clock: t.clock, plan: rule(d.To), events: make(chan Progress, 4),
		bridged: make(chan struct{}), abandoned: make(chan struct{}), hungUp: make(chan struct{})}
	go c.play(d.RingTimeout)
	return c, nil
}

type simCall struct {
	clock  Clock
	plan   SimCall
	events chan Progress

	once                       sync.Once
	bridged, abandoned, hungUp chan struct{}
	bridgeOnce, abandonOnce    sync.Once
}

func (c *simCall) Events() <-chan Progress { return c.events }

func (c *simCall) Bridge(ctx context.Context, rep RepLeg) error {
	c.bridgeOnce.Do(func() { close(c.bridged) })
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

func (c *simCall) end(o Outcome, code int, by string) {
	c.events <- Progress{Kind: ProgressEnded, At: c.clock.Now(), Outcome: o, SIPCode: code, HungUpBy: by}
	close(c.events)
}

// wait returns true after d, false when the gateway hung up first.
func (c *simCall) wait(d time.Duration) bool {
	select {
	case <-c.clock.After(d):
		return true
	case <-c.hungUp:
		return false
	}
}

func (c *simCall) play(ringTimeout time.Duration) {
	p := c.plan
	c.events <- Progress{Kind: ProgressRinging, At: c.clock.Now()}
	answers := p.Outcome == OutcomeAnswered || p.Outcome == OutcomeMachine
	if p.Ring >= ringTimeout && ringTimeout > 0 {
		if c.wait(ringTimeout) {
			c.end(OutcomeNoAnswer, 487, "")
		} else {
			c.end(OutcomeFailed, 487, "gateway")
		}
		return
	}
	if !c.wait(p.Ring) {
		c.end(OutcomeFailed, 487, "gateway")
		return
	}
	if !answers {
		c.end(p.Outcome, p.SIPCode, "")
		return
	}
	c.events <- Progress{Kind: ProgressAnswered, At: c.clock.Now(), Machine: p.Outcome == OutcomeMachine}
	select {
	case <-c.bridged:
		if c.wait(p.Talk) {
			c.end(OutcomeAnswered, 200, "customer")
		} else {
			c.end(OutcomeAnswered, 200, "gateway")
		}
	case <-c.abandoned:
		c.end(OutcomeAbandoned, 200, "gateway")
	case <-c.hungUp:
		c.end(p.Outcome, 200, "gateway")
	}
}
