package sip

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The customer answers, is bridged to a rep's phone that echoes RTP, and
// the gateway hangs up: the customer's audio reaches the rep and the
// rep's comes back through the relay.
func TestSIPpAnsweredBridgedWithMedia(t *testing.T) {
	cust := startSIPp(t, "customer_answer")
	rep := startSIPp(t, "rep_answer", "-rtp_echo")
	u := newTestUA(t, cust.addr, nil)
	baseline := runtime.NumGoroutine()
	c := dial(t, u, 10*time.Second)
	if p := next(t, c); p.Kind != dialer.ProgressRinging {
		t.Fatalf("first progress %+v, want ringing", p)
	}
	untilAnswered(t, c)
	if err := c.Bridge(context.Background(), dialer.RepLeg{ID: "alice", URI: "sip:alice@" + rep.addr}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "50 packets each way", func() bool {
		return c.relay.toRep.Load() >= 50 && c.relay.toCust.Load() >= 50
	})
	if err := c.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := untilEnded(t, c)
	if p.Outcome != dialer.OutcomeAnswered || p.SIPCode != 200 || p.HungUpBy != byGateway {
		t.Fatalf("ended %+v", p)
	}
	cust.wait()
	rep.wait()
	t.Logf("relayed %d packets to the rep, %d back", c.relay.toRep.Load(), c.relay.toCust.Load())
	// The UA runs on; nothing of the call is left in it.
	waitGoroutines(t, baseline)
	if u.leg(c.id) != nil || u.leg(c.id+"-rep") != nil {
		t.Fatal("a leg outlived its call")
	}
}

func TestSIPpRefused(t *testing.T) {
	for _, tc := range []struct {
		code string
		want dialer.Outcome
	}{
		{"486", dialer.OutcomeBusy},
		{"600", dialer.OutcomeBusy},
		{"603", dialer.OutcomeDeclined},
		{"480", dialer.OutcomeUnavailable},
		{"404", dialer.OutcomeFailed},
	} {
		t.Run(tc.code, func(t *testing.T) {
			cust := startSIPp(t, rejectScenario(t, tc.code))
			u := newTestUA(t, cust.addr, nil)
			c := dial(t, u, 10*time.Second)
			p := untilEnded(t, c)
			if p.Outcome != tc.want || p.SIPCode <= 0 || p.HungUpBy != "" {
				t.Fatalf("ended %+v, want %s", p, tc.want)
			}
			if n := testutil.ToFloat64(u.metrics.ends.WithLabelValues("outbound", string(tc.want))); n != 1 {
				t.Errorf("calls_ended_total{outbound,%s} = %v, want 1", tc.want, n)
			}
			cust.wait()
		})
	}
}

// rejectScenario writes customer_reject.xml with its code filled in
// (SIPp checks response codes when it loads a scenario, before -key
// substitution).
func rejectScenario(t *testing.T, code string) string {
	b, err := os.ReadFile("testdata/customer_reject.xml")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "reject.xml")
	if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte("[code]"), []byte(code)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSIPpNoAnswerCancelled(t *testing.T) {
	cust := startSIPp(t, "customer_noanswer")
	u := newTestUA(t, cust.addr, nil)
	c := dial(t, u, 500*time.Millisecond)
	p := untilEnded(t, c)
	if p.Outcome != dialer.OutcomeNoAnswer || p.SIPCode != 487 {
		t.Fatalf("ended %+v, want no_answer 487", p)
	}
	cust.wait()
}

// Either side hangs up first: the other gets the gateway's BYE (its SIPp
// scenario ends only on it) and the call's end says who it was.
func TestSIPpHangsUpFirst(t *testing.T) {
	for _, tc := range []struct {
		by            string
		customer, rep []string
	}{
		{byCustomer, []string{"customer_bye", "-d", "1500"}, []string{"rep_answer", "-rtp_echo"}},
		{byRep, []string{"customer_answer"}, []string{"rep_bye", "-rtp_echo", "-d", "1000"}},
	} {
		t.Run(tc.by, func(t *testing.T) {
			cust := startSIPp(t, tc.customer[0], tc.customer[1:]...)
			rep := startSIPp(t, tc.rep[0], tc.rep[1:]...)
			u := newTestUA(t, cust.addr, nil)
			c := dial(t, u, 10*time.Second)
			untilAnswered(t, c)
			if err := c.Bridge(context.Background(), dialer.RepLeg{ID: "alice", URI: "sip:alice@" + rep.addr}); err != nil {
				t.Fatal(err)
			}
			if p := untilEnded(t, c); p.Outcome != dialer.OutcomeAnswered || p.HungUpBy != tc.by {
				t.Fatalf("ended %+v, want answered, hung up by the %s", p, tc.by)
			}
			cust.wait()
			rep.wait()
		})
	}
}

// No rep is free: the dialer abandons the answered call and the customer
// hears the recorded message. The customer's SIPp echoes what it hears,
// so a packet back at the relay proves the message's RTP reached it.
func TestSIPpAbandonPlaysMessage(t *testing.T) {
	cust := startSIPp(t, "customer_listen", "-rtp_echo")
	u := newTestUA(t, cust.addr, nil)
	msg := writeTestWAV(t, 1500*time.Millisecond)
	c := dial(t, u, 10*time.Second)
	untilAnswered(t, c)
	answered := time.Now()
	if err := c.Abandon(context.Background(), dialer.AbandonAction{Message: msg}); err != nil {
		t.Fatal(err)
	}
	p := untilEnded(t, c)
	if p.Outcome != dialer.OutcomeAbandoned || p.HungUpBy != byGateway {
		t.Fatalf("ended %+v, want abandoned by the gateway", p)
	}
	first := c.relay.firstFromCust.Load()
	if first == 0 || c.relay.custUnrelayed.Load() < 50 {
		t.Fatalf("the customer echoed %d packets of the message", c.relay.custUnrelayed.Load())
	}
	if d := time.Unix(0, first).Sub(answered); d > 2*time.Second {
		t.Fatalf("the message reached the customer %v after the answer, want within 2s", d)
	}
	t.Logf("message heard %v after the answer; %d packets echoed", time.Unix(0, first).Sub(answered), c.relay.custUnrelayed.Load())
	cust.wait()
}

// The trunk challenges with 401; the UA answers with the configured
// user and the password from the environment, and SIPp verifies it.
// (A 407 takes the same path in sipgo, with Proxy-Authorization, which
// SIPp's verifyauth does not read.)
func TestSIPpDigestAuth(t *testing.T) {
	cust := startSIPp(t, "customer_auth")
	u := newTestUA(t, cust.addr, func(tc *TrunkConfig) { tc.AuthUser, tc.AuthPasswordEnv = "omnigate", "TRUNK_PASSWORD" })
	c := dial(t, u, 10*time.Second)
	untilAnswered(t, c)
	_ = c.Hangup(context.Background())
	if p := untilEnded(t, c); p.Outcome != dialer.OutcomeAnswered {
		t.Fatalf("ended %+v", p)
	}
	cust.wait()
}

// A trunk on TCP: the same answered call, the signalling over one TCP
// connection to SIPp.
func TestSIPpTCPTrunk(t *testing.T) {
	cust := startSIPp(t, "customer_answer", "-t", "t1")
	u := newTestUA(t, cust.addr, func(tc *TrunkConfig) { tc.Transport = "tcp" })
	c := dial(t, u, 10*time.Second)
	untilAnswered(t, c)
	// The customer's RTP arriving shows SIPp went past its ACK step (a
	// BYE it gets during the step that starts the pcap aborts its call).
	waitFor(t, 10*time.Second, "the customer's RTP", func() bool { return c.relay.custUnrelayed.Load() >= 5 })
	_ = c.Hangup(context.Background())
	if p := untilEnded(t, c); p.Outcome != dialer.OutcomeAnswered || p.HungUpBy != byGateway {
		t.Fatalf("ended %+v", p)
	}
	cust.wait()
}

// The reserved rep's phone is busy: Bridge fails, the customer stays
// answered, and the dialer abandons with the recorded message.
func TestSIPpRepBusyThenAbandon(t *testing.T) {
	cust := startSIPp(t, "customer_listen", "-rtp_echo")
	rep := startSIPp(t, "rep_busy")
	u := newTestUA(t, cust.addr, nil)
	c := dial(t, u, 10*time.Second)
	untilAnswered(t, c)
	if err := c.Bridge(context.Background(), dialer.RepLeg{ID: "alice", URI: "sip:alice@" + rep.addr}); err == nil {
		t.Fatal("Bridge to a busy phone succeeded")
	}
	rep.wait()
	if err := c.Abandon(context.Background(), dialer.AbandonAction{Message: writeTestWAV(t, 400*time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if p := untilEnded(t, c); p.Outcome != dialer.OutcomeAbandoned || p.HungUpBy != byGateway {
		t.Fatalf("ended %+v", p)
	}
	if c.relay.custUnrelayed.Load() == 0 {
		t.Fatal("the customer heard nothing")
	}
	cust.wait()
}

// Abandon to a destination bridges the customer there; the call counts
// as abandoned whoever hangs up.
func TestSIPpAbandonToDestination(t *testing.T) {
	cust := startSIPp(t, "customer_answer")
	vm := startSIPp(t, "rep_bye", "-rtp_echo", "-d", "500")
	u := newTestUA(t, cust.addr, nil)
	c := dial(t, u, 10*time.Second)
	untilAnswered(t, c)
	if err := c.Abandon(context.Background(), dialer.AbandonAction{Destination: "sip:voicemail@" + vm.addr}); err != nil {
		t.Fatal(err)
	}
	if p := untilEnded(t, c); p.Outcome != dialer.OutcomeAbandoned || p.HungUpBy != byRep {
		t.Fatalf("ended %+v", p)
	}
	cust.wait()
	vm.wait()
}

// The same attempt id twice is one call: the second Dial is refused and
// sends nothing (the SIPp trunk takes exactly one INVITE).
func TestSIPpDuplicateAttemptIsOneCall(t *testing.T) {
	cust := startSIPp(t, "customer_noanswer")
	u := newTestUA(t, cust.addr, func(tc *TrunkConfig) { tc.MaxCalls = 2 })
	tr, _ := u.Trunk("t")
	d := dialer.Dial{AttemptID: "dup-1", To: "+15550100", RingTimeout: 500 * time.Millisecond}
	c, err := tr.Dial(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Dial(context.Background(), d); err == nil {
		t.Fatal("a second call with the same attempt id was placed")
	}
	if p := untilEnded(t, c.(*call)); p.Outcome != dialer.OutcomeNoAnswer {
		t.Fatalf("%+v", p)
	}
	cust.wait()
	// The refused duplicate gave its slot back: two calls fit again.
	for range 2 {
		if !u.trunks["t"].lim.acquire() {
			t.Fatal("a refused Dial kept its limiter slot")
		}
	}
}
