package webchat

import (
	"sync"
	"time"
)

// bucket is a token bucket: burst tokens, refilled at rate per second.
type bucket struct {
	tokens float64
	last   time.Time
	refs   int // sockets of the visitor open now
}

// limiter holds one bucket per visitor, shared by the visitor's sockets so
// opening more tabs buys no more frames. A bucket outlives its last socket
// by idle, so reconnecting straight away does not refill it.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	idle  time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

func newLimiter(perMinute, burst int) *limiter {
	return &limiter{rate: float64(perMinute) / 60, burst: float64(burst), idle: time.Minute,
		buckets: map[string]*bucket{}}
}

// acquire registers a socket of the visitor.
func (l *limiter) acquire(visitor string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[visitor]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[visitor] = b
	}
	b.refs++
}

// release unregisters a socket; the bucket stays until sweep finds it idle.
func (l *limiter) release(visitor string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets[visitor]; ok {
		b.refs--
		l.refill(b, now)
	}
}

// allow takes one token, reporting false when there is none.
func (l *limiter) allow(visitor string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[visitor]
	if !ok {
		return false // acquire was not called: a bug, fail closed
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *limiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.last = now
	}
}

// sweep forgets buckets with no socket that have been idle long enough to
// be full again anyway.
func (l *limiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, b := range l.buckets {
		if b.refs <= 0 && now.Sub(b.last) > l.idle {
			delete(l.buckets, k)
		}
	}
}
