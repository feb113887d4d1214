package sip

import (
	"sync"
	"time"
)

// limiter enforces a trunk's calls per second (a token bucket holding at
// most one second's worth) and its concurrent calls. A refused call
// touches nothing else: no socket, no dialog, no map entry.
type limiter struct {
	mu     sync.Mutex
	now    func() time.Time
	rate   float64
	tokens float64
	last   time.Time
	max    int
	active int
}

func newLimiter(perSecond, maxCalls int, now func() time.Time) *limiter {
	return &limiter{now: now, rate: float64(perSecond), tokens: float64(perSecond), last: now(), max: maxCalls}
}

// acquire takes a slot for a new call, or reports false at either limit.
func (l *limiter) acquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.tokens = min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.active >= l.max || l.tokens < 1 {
		return false
	}
	l.tokens--
	l.active++
	return true
}

// release frees the slot of a call that ended.
func (l *limiter) release() {
	l.mu.Lock()
	l.active--
	l.mu.Unlock()
}
