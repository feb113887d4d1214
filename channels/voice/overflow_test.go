package voice

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer/sip"
	"github.com/omnigate/omnigate/dialer/sip/sipptest"
	"github.com/omnigate/omnigate/sessions"
)

// Nobody is free within max_wait: the caller is sent to voicemail (a
// phone that answers), and the timeline says so.
func TestInboundOverflowVoicemail(t *testing.T) {
	vm := sipptest.Start(t, "rep_answer", "-rtp_echo")
	r := newRig(t, rigOptions{cfg: Config{MaxWait: time.Second, Voicemail: "sip:vm@" + vm.Addr}})
	c := sipptest.StartUAC(t, "caller", r.ua.Addr(), time.Second)
	c.Wait()
	vm.Wait()
	steps := r.waitEnded()
	if got, want := calls(steps), []string{"incoming", "overflow", "ended"}; !slices.Equal(got, want) {
		t.Fatalf("call steps %v, want %v", got, want)
	}
	if o := callStep(t, steps, StepOverflow); o.Outcome != OutcomeVoicemail || o.QueueMS < 900 {
		t.Errorf("overflow %+v: want voicemail after about max_wait", o)
	}
	if e := callStep(t, steps, StepEnded); e.Outcome != OutcomeVoicemail || e.TalkMS < 500 || e.HungUpBy != "customer" {
		t.Errorf("ended %+v: want voicemail, hung up by the customer", e)
	}
}

// Nobody is free and there is no voicemail: the caller is told
// unavailable (480) and a callback is requested for the customer.
func TestInboundOverflowCallback(t *testing.T) {
	asked := make(chan string, 1)
	r := newRig(t, rigOptions{cfg: Config{MaxWait: 500 * time.Millisecond}})
	r.a.o.Callback = func(_ context.Context, customer, _ string) error { asked <- customer; return nil }
	c := sipptest.Start(t, refusingCaller(t, "480", true), r.ua.Addr())
	c.Wait()
	steps := r.waitEnded()
	if got, want := calls(steps), []string{"incoming", "overflow", "ended"}; !slices.Equal(got, want) {
		t.Fatalf("call steps %v, want %v", got, want)
	}
	if e := callStep(t, steps, StepEnded); e.Outcome != OutcomeCallback || e.SIPCode != 480 {
		t.Errorf("ended %+v: want callback, 480", e)
	}
	if got := <-asked; got != r.customer() {
		t.Errorf("callback for %s, want %s", got, r.customer())
	}
}

// Calls refused on the way in store nothing: a caller with no number
// (an untrusted trunk, From anonymous) gets 480 from the adapter, and a
// call beyond the trunk's max_calls gets 503 from the UA's screening.
func TestInboundRefusedStoresNothing(t *testing.T) {
	repA := sipptest.Start(t, "customer_noanswer")
	r := newRig(t, rigOptions{
		reps:  map[string]string{"a": "sip:a@" + repA.Addr},
		order: []string{"a"},
		trunk: func(tc *sip.TrunkConfig) { tc.MaxCalls = 1 },
	})
	anon := sipptest.Start(t, refusingCaller(t, "480", false), r.ua.Addr())
	anon.Wait()
	if _, err := r.store.IdentityOwner(context.Background(), sessions.Identity{Kind: sessions.IdentityPhone, Value: caller}); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("an anonymous call left a customer behind: %v", err)
	}

	// The first call holds the trunk's one slot while rep A rings.
	first := sipptest.StartUAC(t, "caller_abandon", r.ua.Addr(), 5*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for r.ua.Stats().Calls == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first call did not come up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	flood := sipptest.Start(t, refusingCaller(t, "503", true), r.ua.Addr())
	flood.Wait()
	first.Wait()
	repA.Wait()
	steps := r.waitEnded() // the first call's end: the refusal was handled before it
	if got, want := calls(steps), []string{"incoming", "ringing/a", "ended"}; !slices.Equal(got, want) {
		t.Fatalf("call steps %v, want %v: the refused call stored something", got, want)
	}
	n, err := r.store.FindCustomers(context.Background(), sessions.CustomerQuery{Phone: caller})
	if err != nil || len(n) != 1 {
		t.Fatalf("customers %d (%v), want 1", len(n), err)
	}
}
