package sip

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer"
	"github.com/prometheus/client_golang/prometheus"
)

// Close with one call bridged and one ringing: the bridged call's legs
// get BYE (SIPp's scenarios end only on it), the ringing one a CANCEL,
// both calls' last Progress says the gateway ended them, and every
// goroutine the UA started is gone.
func TestSIPpCloseHangsUpEveryCall(t *testing.T) {
	talking := startSIPp(t, "customer_answer")
	ringing := startSIPp(t, "customer_noanswer")
	rep := startSIPp(t, "rep_answer", "-rtp_echo")
	baseline := runtime.NumGoroutine()

	u := newTestUAWith(t, map[string]TrunkConfig{"t": testTrunk(talking.addr), "r": testTrunk(ringing.addr)})
	reg := prometheus.NewRegistry()
	if err := u.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	c1 := dial(t, u, 10*time.Second)
	untilAnswered(t, c1)
	if err := c1.Bridge(context.Background(), dialer.RepLeg{ID: "alice", URI: "sip:alice@" + rep.addr}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "RTP through the bridge", func() bool { return c1.relay.toCust.Load() >= 5 })
	c2 := dialOn(t, u, "r", time.Minute)
	if p := next(t, c2); p.Kind != dialer.ProgressRinging {
		t.Fatalf("second call: %+v, want ringing", p)
	}
	if n := gathered(t, reg, "omnigate_sip_calls"); n != 2 {
		t.Fatalf("omnigate_sip_calls = %v with two calls up", n)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if p := untilEnded(t, c1); p.Outcome != dialer.OutcomeAnswered || p.HungUpBy != byGateway {
		t.Fatalf("bridged call ended %+v", p)
	}
	if p := untilEnded(t, c2); p.Outcome != dialer.OutcomeNoAnswer || p.SIPCode != 487 {
		t.Fatalf("ringing call ended %+v", p)
	}
	talking.wait()
	ringing.wait()
	rep.wait()
	if _, err := u.trunks["t"].Dial(context.Background(), dialer.Dial{AttemptID: "late", To: "+15550100", RingTimeout: time.Second}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Dial after Close: %v, want ErrClosed", err)
	}
	waitGoroutines(t, baseline)
}

// waitGoroutines waits (up to 10 s, watching the count) for the number of
// goroutines to come back to baseline, and dumps them if it does not.
func waitGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Limits: with max_calls 1, a second Dial while the first rings is
// refused with ErrTrunkBusy and sends nothing (the SIPp playing the
// trunk takes exactly one call: a second INVITE would fail its scenario).
func TestSIPpTrunkBusyBeyondLimit(t *testing.T) {
	cust := startSIPp(t, "customer_noanswer")
	u := newTestUA(t, cust.addr, func(tc *TrunkConfig) { tc.MaxCalls = 1 })
	tr, _ := u.Trunk("t")
	c := dial(t, u, time.Second)
	if p := next(t, c); p.Kind != dialer.ProgressRinging {
		t.Fatalf("%+v, want ringing", p)
	}
	if _, err := tr.Dial(context.Background(), dialer.Dial{AttemptID: "second", To: "+15550101", RingTimeout: time.Second}); !errors.Is(err, dialer.ErrTrunkBusy) {
		t.Fatalf("second Dial: %v, want ErrTrunkBusy", err)
	}
	if p := untilEnded(t, c); p.Outcome != dialer.OutcomeNoAnswer {
		t.Fatalf("%+v", p)
	}
	cust.wait()
	if u.leg("second") != nil {
		t.Fatal("the refused call left a dialog behind")
	}
}

// gathered is the value of the unlabelled metric name in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
