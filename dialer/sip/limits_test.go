package sip

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	l := newLimiter(2, 3, func() time.Time { return now })
	for i := range 2 {
		if !l.acquire() {
			t.Fatalf("call %d of the first second is refused", i+1)
		}
	}
	if l.acquire() {
		t.Fatal("a third call in the same second is allowed at 2 calls/s")
	}
	now = now.Add(500 * time.Millisecond)
	if !l.acquire() {
		t.Fatal("half a second later one token should be back")
	}
	now = now.Add(time.Second)
	if l.acquire() {
		t.Fatal("a fourth concurrent call is allowed with max_calls 3")
	}
	l.release()
	if !l.acquire() {
		t.Fatal("a released slot is not reusable")
	}
}
