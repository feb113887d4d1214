package dialer

import (
	"sync"
	"time"
)

// Clock is the dialer's time: the runner's ticks, the connect limit,
// SimTrunk's rings and talks. ManualClock lets a test move it.
type Clock interface {
	Now() time.Time
	// After delivers the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time                         { return time.Now() }
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// ManualClock moves only when told (Advance); timers due by then fire
// in order. Safe for concurrent use.
type ManualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []manualWaiter
	// fired are the timers the last Advance fired: until each is read,
	// its goroutine has not run the step it was due for.
	fired []chan time.Time
}

type manualWaiter struct {
	at time.Time
	ch chan time.Time
}

// NewManualClock starts at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t} }

func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *ManualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, manualWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock by d and fires every timer due.
func (c *ManualClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	c.fired = c.fired[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
		c.fired = append(c.fired, w.ch)
	}
	clear(c.waiters[len(kept):])
	c.waiters = kept
	return c.now
}

// firedRead reports whether every timer the last Advance fired was
// read: a test's watermark that the goroutines waiting on them woke.
func (c *ManualClock) firedRead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.fired {
		if len(ch) > 0 {
			return false
		}
	}
	return true
}

// Waiters counts timers not yet fired: a test's watermark that every
// goroutine it drives is parked on the clock.
func (c *ManualClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}
