package sip

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer"
)

// runCaller starts a SIPp UAC calling the UA once, with -d talk time.
func runCaller(t *testing.T, u *UA, scenario string, d time.Duration) *sipp {
	t.Helper()
	return startSIPpUAC(t, scenario, u.Addr(), "-d", d.Milliseconds())
}

// An inbound call: rep A's phone rings out (CANCEL, 487), rep B answers,
// the caller is answered and RTP flows both ways until the caller hangs
// up. The trusted trunk's P-Asserted-Identity is the verified number.
func TestSIPpInboundNextRepAnswers(t *testing.T) {
	repA := startSIPp(t, "customer_noanswer") // a phone that only rings
	repB := startSIPp(t, "rep_answer", "-rtp_echo")
	u := newTestUA(t, "127.0.0.1:5060", func(tc *TrunkConfig) { tc.Trusted = true })
	calls := make(chan *InboundCall, 1)
	errA := make(chan error, 1)
	u.HandleInbound(func(ctx context.Context, ic *InboundCall) {
		calls <- ic
		_ = ic.Ring()
		errA <- ic.Connect(ctx, dialer.RepLeg{ID: "a", URI: "sip:a@" + repA.addr}, 300*time.Millisecond)
		if err := ic.Connect(ctx, dialer.RepLeg{ID: "b", URI: "sip:b@" + repB.addr}, 5*time.Second); err != nil {
			t.Errorf("rep B: %v", err)
		}
	})
	baseline := runtime.NumGoroutine()
	caller := runCaller(t, u, "caller", 2500*time.Millisecond)
	ic := <-calls
	if ic.From != "+14155550123" || !ic.Verified {
		t.Errorf("caller %q verified %v, want +14155550123 verified", ic.From, ic.Verified)
	}
	if err := <-errA; !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("rep A: %v, want ErrNoAnswer", err)
	}
	if p := <-ic.Events(); p.Kind != dialer.ProgressAnswered {
		t.Fatalf("%+v, want answered", p)
	}
	waitFor(t, 10*time.Second, "RTP both ways", func() bool {
		return ic.c.relay.toRep.Load() >= 20 && ic.c.relay.toCust.Load() >= 20
	})
	if p := <-ic.Events(); p.Kind != dialer.ProgressEnded || p.Outcome != dialer.OutcomeAnswered || p.HungUpBy != byCustomer {
		t.Fatalf("%+v, want answered, hung up by the customer", p)
	}
	caller.wait()
	repA.wait()
	repB.wait()
	t.Logf("INVITE in -> rep A's INVITE out: %v", ic.SetupDelay())
	waitGoroutines(t, baseline) // nothing of the call is left in the UA
	if u.leg(ic.CallID) != nil {
		t.Fatal("the caller's leg outlived the call")
	}
}

// The caller hangs up while queued (rep ringing): the rep's phone is
// CANCELled and the call ends abandoned by the customer.
func TestSIPpInboundCallerAbandons(t *testing.T) {
	u, rep, calls := queueToRingingRep(t, "")
	caller := runCaller(t, u, "caller_abandon", 500*time.Millisecond)
	ic := <-calls
	if ic.Verified {
		t.Error("an untrusted trunk's caller id counted as verified")
	}
	if p := <-ic.Events(); p.Kind != dialer.ProgressEnded || p.Outcome != dialer.OutcomeAbandoned || p.HungUpBy != byCustomer {
		t.Fatalf("%+v, want abandoned by the customer", p)
	}
	caller.wait()
	rep.wait()
}

// A queued caller hears the hold file (its SIPp echoes the RTP back to
// the relay) until it gives up; the rep's ringing phone is CANCELled.
func TestSIPpInboundHoldMusic(t *testing.T) {
	u, rep, calls := queueToRingingRep(t, writeTestWAV(t, 300*time.Millisecond))
	caller := startSIPpUAC(t, "caller_hold", u.Addr(), "-d", 1500, "-rtp_echo")
	ic := <-calls
	if p := <-ic.Events(); p.Outcome != dialer.OutcomeAbandoned {
		t.Fatalf("%+v, want abandoned", p)
	}
	// 1.5 s of hold is 75 packets; the file loops every 15.
	if n := ic.c.relay.custUnrelayed.Load(); n < 40 {
		t.Fatalf("the caller echoed %d packets of hold music", n)
	}
	caller.wait()
	rep.wait()
}

// queueToRingingRep starts a rep's phone that only rings and a UA whose
// handler rings the caller, plays hold (a WAV path, or nothing), and
// offers the call to that phone for a minute; each call the handler gets
// arrives on the channel.
func queueToRingingRep(t *testing.T, hold string) (*UA, *sipp, <-chan *InboundCall) {
	t.Helper()
	rep := startSIPp(t, "customer_noanswer")
	u := newTestUA(t, "127.0.0.1:5060", nil)
	calls := make(chan *InboundCall, 2)
	u.HandleInbound(func(ctx context.Context, ic *InboundCall) {
		calls <- ic
		_ = ic.Ring()
		if hold != "" {
			if err := ic.Hold(hold); err != nil {
				t.Error(err)
			}
		}
		if err := ic.Connect(ctx, dialer.RepLeg{ID: "a", URI: "sip:a@" + rep.addr}, time.Minute); err == nil {
			t.Error("connected to a phone that only rings")
		}
	})
	return u, rep, calls
}
