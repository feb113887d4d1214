package webchat

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// bucket is a token bucket: burst tokens, refilled at rate per second.
type bucket struct {
	tokens float64
	last   time.Time
	refs   int // sockets of the visitor open now
}

// limiter holds one bucket per key. Keyed by visitor (acquire, allow,
// release), a bucket is shared by the visitor's sockets so opening more
// tabs buys no more frames. Keyed by client address (take), it counts new
// visitors. A bucket outlives its last use by idle, the time it takes to
// fill up again, so coming back straight away does not refill it.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	idle  time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

func newLimiter(perMinute, burst int) *limiter {
	rate := float64(perMinute) / 60
	return &limiter{rate: rate, burst: float64(burst),
		idle:    max(time.Minute, time.Duration(float64(burst)/rate*float64(time.Second))),
		buckets: map[string]*bucket{}}
}

// acquire registers a socket of the visitor.
func (l *limiter) acquire(visitor string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bucketLocked(visitor, now).refs++
}

// bucketLocked is key's bucket, a full one for a key not seen (or swept)
// before. Caller holds mu.
func (l *limiter) bucketLocked(key string, now time.Time) *bucket {
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	return b
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
	return l.takeLocked(b, now)
}

// take takes one token from key's bucket (see bucketLocked). For limits on something other than open
// sockets: new visitors per client address.
func (l *limiter) take(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.takeLocked(l.bucketLocked(key, now), now)
}

func (l *limiter) takeLocked(b *bucket, now time.Time) bool {
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

// clientAddr is the key the new-visitor limit counts r's client by: the
// peer address or, from a trusted proxy, the right-most X-Forwarded-For
// address that is not a trusted proxy (the ones left of it are whatever
// the client claimed). An IPv6 address counts by its /64, which one
// subscriber usually holds whole.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	a := ap.Addr().Unmap()
	if isTrusted(a, trusted) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			a = h.Unmap()
			if !isTrusted(a, trusted) {
				break
			}
		}
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
