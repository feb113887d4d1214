package sip

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer"
	"github.com/omnigate/omnigate/dialer/sip/sipptest"
)

// sipp is one SIPp process playing a customer's phone (the trunk) or a
// rep's phone, on loopback (package sipptest).
type sipp struct {
	*sipptest.SIPp
	addr string
}

// startSIPpUAC runs scenario testdata/<name>.xml as a UAC placing one
// call to target.
func startSIPpUAC(t *testing.T, name, target string, dFlag string, d int64, extra ...string) *sipp {
	t.Helper()
	return startSIPp(t, name, append([]string{dFlag, strconv.FormatInt(d, 10), target}, extra...)...)
}

// startSIPp runs scenario testdata/<name>.xml (or the file name) for one
// call; extra args are SIPp flags (-key, -d, -rtp_echo).
func startSIPp(t *testing.T, name string, extra ...string) *sipp {
	t.Helper()
	s := sipptest.Start(t, name, extra...)
	return &sipp{SIPp: s, addr: s.Addr}
}

// wait asserts the scenario ran to its end.
func (s *sipp) wait() { s.Wait() }

// newTestUA starts a UA on a free loopback port with one trunk, "t", to
// the given proxy, and closes it when the test ends.
func newTestUA(t *testing.T, proxy string, mod func(*TrunkConfig)) *UA {
	t.Helper()
	tc := testTrunk(proxy)
	if mod != nil {
		mod(&tc)
	}
	return newTestUAWith(t, map[string]TrunkConfig{"t": tc})
}

func testTrunk(proxy string) TrunkConfig {
	return TrunkConfig{Proxy: proxy, FromUser: "omnigate", CallerID: "+4420700000", CallsPerSecond: 50, MaxCalls: 50}
}

func newTestUAWith(t *testing.T, trunks map[string]TrunkConfig) *UA {
	t.Helper()
	cfg := Config{Listen: "127.0.0.1:0", Trunks: trunks}
	if err := cfg.Prepare(func(string) string { return "secret" }); err != nil {
		t.Fatal(err)
	}
	u, err := NewUA(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	return u
}

var attempts int

func dial(t *testing.T, u *UA, ring time.Duration) *call {
	t.Helper()
	return dialOn(t, u, "t", ring)
}

func dialOn(t *testing.T, u *UA, trunk string, ring time.Duration) *call {
	t.Helper()
	tr, err := u.Trunk(trunk)
	if err != nil {
		t.Fatal(err)
	}
	attempts++
	c, err := tr.Dial(context.Background(), dialer.Dial{
		AttemptID: fmt.Sprintf("att-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), attempts),
		To:        "+15550100", RingTimeout: ring,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.(*call)
}

// next reads the call's next Progress.
func next(t *testing.T, c *call) dialer.Progress {
	t.Helper()
	select {
	case p, ok := <-c.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return p
	case <-time.After(20 * time.Second):
		t.Fatal("no progress in 20s")
	}
	return dialer.Progress{}
}

// untilAnswered reads progress up to the answer.
func untilAnswered(t *testing.T, c *call) {
	t.Helper()
	for {
		p := next(t, c)
		switch p.Kind {
		case dialer.ProgressAnswered:
			return
		case dialer.ProgressEnded:
			t.Fatalf("call ended before the answer: %+v", p)
		}
	}
}

func untilEnded(t *testing.T, c *call) dialer.Progress {
	t.Helper()
	for {
		if p := next(t, c); p.Kind == dialer.ProgressEnded {
			if _, open := <-c.Events(); open {
				t.Fatal("events not closed after ended")
			}
			return p
		}
	}
}

// waitFor polls cond (a counter reaching a watermark) up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
