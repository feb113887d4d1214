package voice

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer/sip"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"

	"github.com/omnigate/omnigate/dialer/sip/sipptest"
)

// An inbound call: rep A (longest idle) is offered it and rings out, the
// miss sets A away (max_misses 1), rep B is offered it and answers, RTP
// flows both ways through the relay, the caller hangs up; the
// timeline holds every step in order and the conversation is B's.
func TestInboundNextRepAnswers(t *testing.T) {
	repA := sipptest.Start(t, "customer_noanswer")
	repB := sipptest.Start(t, "rep_answer", "-rtp_echo")
	r := newRig(t, rigOptions{
		reps:  map[string]string{"a": "sip:a@" + repA.Addr, "b": "sip:b@" + repB.Addr},
		order: []string{"a", "b"},
		queue: router.QueueConfig{Offer: router.OfferConfig{AcceptTimeout: 2 * time.Second, MaxMisses: 1}},
	})
	c := sipptest.StartUAC(t, "caller", r.ua.Addr(), 3*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for st := r.ua.Stats(); st.ToRep < 20 || st.ToCustomer < 20; st = r.ua.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("RTP both ways: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Wait()
	repA.Wait()
	repB.Wait()
	steps := r.waitEnded()
	want := []string{"incoming", "ringing/a", "missed/a", "ringing/b", "answered/b", "ended/b"}
	if got := calls(steps); !slices.Equal(got, want) {
		t.Fatalf("call steps %v, want %v", got, want)
	}
	var routed []string
	for _, s := range steps {
		if s.decision != "" {
			routed = append(routed, s.decision+"/"+s.rep)
		}
		if s.decision == "offer_expired" && !s.away {
			t.Error("rep A's miss did not set A away (max_misses 1)")
		}
	}
	// The router's offers sit between the call's steps, and B's
	// acceptance (the answer) is recorded as an assignment.
	wantRouted := []string{"offer/a", "offer_expired/a", "offer/b", "response:accepted/", "accepted/b"}
	if !slices.Equal(routed, wantRouted) {
		t.Fatalf("routing events %v, want %v", routed, wantRouted)
	}
	for _, s := range steps[1:] {
		if s.conv != steps[1].conv {
			t.Fatalf("event %d in conversation %s, want every call event in %s", s.seq, s.conv, steps[1].conv)
		}
	}
	in := callStep(t, steps, StepIncoming)
	if in.Direction != "in" || !in.Verified || in.Number == caller || !strings.Contains(in.Number, "*") {
		t.Errorf("incoming %+v: want direction in, verified, the number masked", in)
	}
	if m := callStep(t, steps, StepMissed); m.SIPCode != 487 || m.RingMS < 500 {
		t.Errorf("missed %+v: want 487 after about the accept timeout", m)
	}
	end := callStep(t, steps, StepEnded)
	if end.Outcome != OutcomeAnswered || end.HungUpBy != "customer" || end.TalkMS < 2000 {
		t.Errorf("ended %+v: want answered, hung up by the customer, about 3 s of talk", end)
	}
	conv, err := r.store.Conversation(context.Background(), steps[1].conv)
	if err != nil || conv.Assignee != "b" || conv.Channel != sessions.ChannelVoice {
		t.Fatalf("conversation %+v (%v): want it on voice and assigned to b", conv, err)
	}
	if st, _ := r.svc.Rep("a"); st.Presence != router.PresenceAway {
		t.Errorf("rep a is %s after missing the call, want away", st.Presence)
	}
	ids, _ := r.store.Identities(context.Background(), r.customer())
	if len(ids) != 1 || !ids[0].Verified {
		t.Errorf("identities %+v: want the asserted number, verified", ids)
	}
}

// The caller, hearing the hold file, hangs up while rep A's phone rings:
// A's phone is CANCELled and the timeline says abandoned, hung up by the
// customer, with the queue time.
func TestInboundCallerAbandons(t *testing.T) {
	repA := sipptest.Start(t, "customer_noanswer")
	r := newRig(t, rigOptions{
		reps:  map[string]string{"a": "sip:a@" + repA.Addr},
		order: []string{"a"},
		queue: router.QueueConfig{Offer: router.OfferConfig{AcceptTimeout: 30 * time.Second}},
		trunk: func(tc *sip.TrunkConfig) { tc.Trusted = false },
		cfg:   Config{Hold: sipptest.WriteWAV(t, 300*time.Millisecond)},
	})
	c := sipptest.StartUAC(t, "caller_hold", r.ua.Addr(), time.Second, "-rtp_echo")
	c.Wait()
	repA.Wait()
	steps := r.waitEnded()
	if got, want := calls(steps), []string{"incoming", "ringing/a", "ended"}; !slices.Equal(got, want) {
		t.Fatalf("call steps %v, want %v", got, want)
	}
	end := callStep(t, steps, StepEnded)
	if end.Outcome != OutcomeAbandoned || end.HungUpBy != "customer" || end.QueueMS < 900 {
		t.Errorf("ended %+v: want abandoned by the customer after about 1 s", end)
	}
	if in := callStep(t, steps, StepIncoming); in.Verified {
		t.Error("an untrusted trunk's caller id recorded as verified")
	}
	ids, _ := r.store.Identities(context.Background(), r.customer())
	if len(ids) != 1 || ids[0].Verified {
		t.Errorf("identities %+v: want the caller id, unverified", ids)
	}
}

// A VIP customer's owner (B) rings first although A has been idle
// longer; B answers.
func TestInboundOwnerFirst(t *testing.T) {
	repB := sipptest.Start(t, "rep_answer", "-rtp_echo")
	vip, owner := true, "b"
	r := newRig(t, rigOptions{
		// A's phone is nowhere: ringing it would fail the call steps.
		reps:  map[string]string{"a": "sip:a@127.0.0.1:9", "b": "sip:b@" + repB.Addr},
		order: []string{"a", "b"},
		queue: router.QueueConfig{Offer: router.OfferConfig{AcceptTimeout: 5 * time.Second}},
		prepare: func(ctx context.Context, st sessions.Store) {
			c, _, err := st.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityPhone, Value: caller, Verified: true}, sessions.Customer{Name: "Ada"})
			if err == nil {
				_, err = st.UpdateCustomer(ctx, c.ID, sessions.CustomerUpdate{VIP: &vip, Owner: &owner, Author: "admin:test"})
			}
			if err != nil {
				t.Fatal(err)
			}
		},
	})
	r.answeredBy(repB, "b")
}

// While the call is up the rep is on a call with the whole capacity
// held; the gateway stopping hangs the call up (BYE both ways) and the
// end is recorded as the gateway's; resolving the conversation starts
// the rep's voice wrap-up, which keeps them from new work.
func TestInboundCapacityShutdownWrapUp(t *testing.T) {
	rep := sipptest.Start(t, "rep_answer", "-rtp_echo")
	r := newRig(t, rigOptions{
		reps:   map[string]string{"b": "sip:b@" + rep.Addr},
		order:  []string{"b"},
		queue:  router.QueueConfig{Offer: router.OfferConfig{AcceptTimeout: 15 * time.Second}},
		wrapUp: time.Minute,
	})
	sipptest.StartUAC(t, "caller", r.ua.Addr(), time.Minute) // talks until the gateway hangs up
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Answered, and the conversation assigned to b (the acceptance
		// handled), with b on the call and the whole capacity held.
		st, _ := r.svc.Rep("b")
		assigned := false
		if id, err := r.store.IdentityOwner(context.Background(), sessions.Identity{Kind: sessions.IdentityPhone, Value: caller}); err == nil {
			cs, _, _ := r.store.Conversations(context.Background(), sessions.ConversationQuery{CustomerID: id})
			assigned = len(cs) == 1 && cs[0].Assignee == "b"
		}
		if assigned && st.Presence == router.PresenceOnCall && st.Used == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rep b during the call: %+v (conversation assigned to b: %v), want on_call with 100 units used", st, assigned)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.ua.Close(); err != nil { // the gateway's shutdown: calls first
		t.Fatal(err)
	}
	r.a.Close()
	rep.Wait() // the rep's phone got the gateway's BYE
	steps := r.waitEnded()
	if e := callStep(t, steps, StepEnded); e.Outcome != OutcomeAnswered || e.HungUpBy != "gateway" || e.Rep != "b" {
		t.Fatalf("ended %+v: want answered, hung up by the gateway", e)
	}
	resolved := sessions.StatusResolved
	if _, _, err := r.store.UpdateConversation(context.Background(), steps[1].conv, sessions.ConversationUpdate{Status: &resolved, Event: sessions.Event{Author: "rep:b"}}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		st, _ := r.svc.Rep("b")
		if st.Presence == router.PresenceWrapUp && st.WrapUntil.After(time.Now().Add(50*time.Second)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rep b after resolving: %+v, want wrap_up for a minute", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Nobody is free when the call comes in: the caller hears ringback,
// queued, until rep B comes online; B is offered the call and answers.
func TestInboundQueuedUntilARepFrees(t *testing.T) {
	rep := sipptest.Start(t, "rep_answer", "-rtp_echo")
	r := newRig(t, rigOptions{
		reps:  map[string]string{"b": "sip:b@" + rep.Addr},
		later: []string{"b"},
		queue: router.QueueConfig{Offer: router.OfferConfig{AcceptTimeout: 5 * time.Second}},
	})
	c := sipptest.StartUAC(t, "caller", r.ua.Addr(), 500*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Queued: the incoming call is on the timeline and routed (the
		// routing service handled it: waiting, as nobody is online).
		if id, err := r.store.IdentityOwner(context.Background(), sessions.Identity{Kind: sessions.IdentityPhone, Value: caller}); err == nil {
			if last, _ := r.store.LastSeq(context.Background(), id); last > 0 && r.svc.WaitHandled(context.Background(), id, last) == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the call never reached the timeline")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.svc.SetPresence(context.Background(), "b", router.PresenceAvailable); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	rep.Wait()
	steps := r.waitEnded()
	if got, want := calls(steps), []string{"incoming", "ringing/b", "answered/b", "ended/b"}; !slices.Equal(got, want) {
		t.Fatalf("call steps %v, want %v", got, want)
	}
	if a := callStep(t, steps, StepAnswered); a.QueueMS <= 0 {
		t.Errorf("answered %+v: want the queue time", a)
	}
}

// The customer's conversation was pending (waiting on them) when they
// call: the call joins it, reopens it, and it is routed.
func TestInboundReopensPendingConversation(t *testing.T) {
	rep := sipptest.Start(t, "rep_answer", "-rtp_echo")
	var pending string
	r := newRig(t, rigOptions{
		reps:  map[string]string{"b": "sip:b@" + rep.Addr},
		order: []string{"b"},
		queue: router.QueueConfig{Offer: router.OfferConfig{AcceptTimeout: 5 * time.Second}},
		prepare: func(ctx context.Context, st sessions.Store) {
			c, _, err := st.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityPhone, Value: caller, Verified: true}, sessions.Customer{})
			if err != nil {
				t.Fatal(err)
			}
			cv, _, err := st.OpenConversation(ctx, c.ID, "", sessions.ChannelVoice)
			if err != nil {
				t.Fatal(err)
			}
			p := sessions.StatusPending
			if _, _, err := st.UpdateConversation(ctx, cv.ID, sessions.ConversationUpdate{Status: &p, Event: sessions.Event{Kind: sessions.KindStatusChange, Author: "rep:b"}}); err != nil {
				t.Fatal(err)
			}
			pending = cv.ID
		},
	})
	steps := r.answeredBy(rep, "b")
	for _, s := range steps {
		if s.kind == sessions.KindCall && s.conv != pending {
			t.Fatalf("call event %d in %s, want the pending conversation %s", s.seq, s.conv, pending)
		}
	}
}
