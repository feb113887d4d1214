package voice

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer/sip"
	"github.com/omnigate/omnigate/dialer/sip/sipptest"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// BenchmarkInboundRouted measures the whole inbound path under load: b.N
// callers (SIPp, each a different number, 20 new calls a second, 300 ms
// of talk; the conversation resolved as each call ends) through the UA, the adapter, a memory store and the routing
// service, to eight SIPp reps' phones that answer at once. Reported:
// the delay from the caller's incoming event to the rep's ringing event
// on the timeline (Intake, the feed, the router's offer, the adapter
// following it, the rep's INVITE about to leave), p50 and p99.
//
//	go test -run X -bench InboundRouted -benchtime 300x ./channels/voice/
func BenchmarkInboundRouted(b *testing.B) {
	const nReps = 8
	reps := map[string]string{}
	var order []string
	for i := range nReps {
		id := fmt.Sprintf("r%d", i)
		phone := sipptest.Start(b, "rep_answer", "-m", "100000", "-timeout", "600s")
		reps[id], order = "sip:"+id+"@"+phone.Addr, append(order, id)
	}
	r := newRig(b, rigOptions{reps: reps, order: order,
		queue: router.QueueConfig{Offer: router.OfferConfig{AcceptTimeout: 10 * time.Second}},
		trunk: func(tc *sip.TrunkConfig) { tc.CallsPerSecond, tc.MaxCalls = 200, 500 }})
	dir := b.TempDir()
	var numbers []string
	var inf strings.Builder
	inf.WriteString("SEQUENTIAL\n")
	for i := range b.N {
		n := fmt.Sprintf("+1415555%04d", i%10000)
		numbers = append(numbers, n)
		fmt.Fprintf(&inf, "%s;\n", n)
	}
	csv := filepath.Join(dir, "numbers.csv")
	scen, err := os.ReadFile(sipptest.Scenario("caller"))
	if err == nil {
		err = os.WriteFile(csv, []byte(inf.String()), 0o644)
	}
	if err != nil {
		b.Fatal(err)
	}
	scenario := filepath.Join(dir, "callers.xml")
	if err := os.WriteFile(scenario, []byte(strings.ReplaceAll(string(scen), caller, "[field0]")), 0o644); err != nil {
		b.Fatal(err)
	}
	// The reps finish their after-call work at once: each ended call's
	// conversation is resolved, which frees the rep (no wrap-up here).
	sub, err := r.store.Subscribe(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	go func() {
		for ev := range sub.Events() {
			var c CallEvent
			if ev.Kind != sessions.KindCall || json.Unmarshal(ev.Payload, &c) != nil || c.Step != StepEnded {
				continue
			}
			done := sessions.StatusResolved
			_, _, _ = r.store.UpdateConversation(context.Background(), ev.ConversationID, sessions.ConversationUpdate{
				Status: &done, Event: sessions.Event{Kind: sessions.KindStatusChange, Author: "rep:" + c.Rep}})
		}
	}()
	b.ResetTimer()
	callers := sipptest.StartUAC(b, scenario, r.ua.Addr(), 300*time.Millisecond,
		"-inf", csv, "-m", fmt.Sprint(b.N), "-r", "20", "-timeout", "600s")
	callers.Wait()
	b.StopTimer()
	var delays []time.Duration
	for _, n := range numbers {
		id, err := r.store.IdentityOwner(context.Background(), sessions.Identity{Kind: sessions.IdentityPhone, Value: n})
		if err != nil {
			b.Fatal(err)
		}
		evs, _ := r.store.Timeline(context.Background(), id, 0, 100)
		var in, ring time.Time
		for _, ev := range evs {
			var c CallEvent
			if ev.Kind != sessions.KindCall || json.Unmarshal(ev.Payload, &c) != nil {
				continue
			}
			switch {
			case c.Step == StepIncoming:
				in = ev.Time
			case c.Step == StepRinging && ring.IsZero():
				ring = ev.Time
			}
		}
		if in.IsZero() || ring.IsZero() {
			b.Fatalf("%s: no incoming or ringing event", n)
		}
		delays = append(delays, ring.Sub(in))
	}
	slices.Sort(delays)
	q := func(p float64) time.Duration { return delays[int(p*float64(len(delays)-1))] }
	b.ReportMetric(float64(q(0.5).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(q(1).Microseconds())/1000, "max_ms")
}
