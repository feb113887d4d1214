package router

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestReserve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := Config{WrapUp: map[string]time.Duration{"voice": 10 * time.Second},
		Queues: []QueueConfig{{Name: "chat", Channels: []string{"webchat"}, Offer: OfferConfig{AcceptTimeout: 20 * time.Second}},
			{Name: "voice", Channels: []string{"voice"}}}}

	t.Run("best rep now, held like an assignment, never offered", func(t *testing.T) {
		f := newFixture(t, cfg, Rep{ID: "a"}, Rep{ID: "b"})
		d, err := f.r.Reserve(ctx, Task{ConversationID: "rsv:1", Channel: "voice"})
		if err != nil {
			t.Fatal(err)
		}
		wantKind(t, d, KindAssign, "a", RingExact) // a is the longest idle
		st, _ := f.r.Rep("a")
		if st.Presence != PresenceOnCall || st.Used != 100 {
			t.Fatalf("reserved rep = %+v, want on_call with the call's 100 units", st)
		}
		// Nothing else is offered to a: the chat goes to b.
		wantKind(t, f.enqueue(chat("c1")), KindOffer, "b", "")
		ts, _ := f.r.Task("rsv:1")
		if !ts.Reserved || ts.Status != "active" {
			t.Fatalf("task = %+v", ts)
		}
		f.checkInvariants()
	})

	t.Run("nobody free: ErrNoRep and nothing held", func(t *testing.T) {
		f := newFixture(t, cfg, Rep{ID: "a"})
		f.presence("a", PresenceAway)
		_, err := f.r.Reserve(ctx, Task{ConversationID: "rsv:1", Channel: "voice"})
		if !errors.Is(err, ErrNoRep) {
			t.Fatalf("err = %v, want ErrNoRep", err)
		}
		if n := len(f.r.Tasks()); n != 0 || f.r.Waiting() != 0 {
			t.Fatalf("%d tasks held, %d waiting after a refused reservation", n, f.r.Waiting())
		}
		if used, _ := f.st.Used(ctx, "a"); used != 0 {
			t.Fatalf("state holds %d units", used)
		}
		f.checkInvariants()
	})

	t.Run("named rep only, with the reason", func(t *testing.T) {
		f := newFixture(t, cfg, Rep{ID: "a"}, Rep{ID: "b"})
		f.presence("b", PresenceAway)
		_, err := f.r.Reserve(ctx, Task{ConversationID: "rsv:1", Channel: "voice", Assignee: "b"})
		if !errors.Is(err, ErrNoRep) || !strings.Contains(err.Error(), "away") {
			t.Fatalf("err = %v, want ErrNoRep naming away", err)
		}
		if st, _ := f.r.Rep("a"); st.Used != 0 {
			t.Fatalf("a reservation for b went to a: %+v", st)
		}
		d, err := f.r.Reserve(ctx, Task{ConversationID: "rsv:2", Channel: "voice", Assignee: "a"})
		if err != nil {
			t.Fatal(err)
		}
		wantKind(t, d, KindAssign, "a", RingSticky)
		if _, err := f.r.Reserve(ctx, Task{ConversationID: "rsv:3", Channel: "voice", Assignee: "a"}); !errors.Is(err, ErrNoRep) {
			t.Fatalf("second call on a full rep: %v", err)
		}
		if _, err := f.r.Reserve(ctx, Task{ConversationID: "rsv:4", Channel: "voice", Assignee: "zed"}); !errors.Is(err, ErrUnknownRep) {
			t.Fatalf("unknown rep: %v", err)
		}
		f.checkInvariants()
	})

	t.Run("release: wrap-up, then waiting work", func(t *testing.T) {
		f := newFixture(t, cfg, Rep{ID: "a"})
		if _, err := f.r.Reserve(ctx, Task{ConversationID: "rsv:1", Channel: "voice"}); err != nil {
			t.Fatal(err)
		}
		wantKind(t, f.enqueue(voice("v1")), KindQueued, "", "")
		if ds := f.release("rsv:1"); len(ds) != 0 {
			t.Fatalf("work given during wrap-up: %+v", ds)
		}
		if st, _ := f.r.Rep("a"); st.Presence != PresenceWrapUp || st.Used != 0 {
			t.Fatalf("after release = %+v", st)
		}
		ds := f.tick(10 * time.Second)
		if len(ds) != 1 {
			t.Fatalf("after wrap-up: %+v", ds)
		}
		wantKind(t, ds[0], KindAssign, "a", "")
		f.checkInvariants()
	})

	t.Run("unreserve: no call was placed, so no wrap-up; waiting work at once", func(t *testing.T) {
		f := newFixture(t, cfg, Rep{ID: "a"})
		if _, err := f.r.Reserve(ctx, Task{ConversationID: "rsv:1", Channel: "voice"}); err != nil {
			t.Fatal(err)
		}
		wantKind(t, f.enqueue(voice("v1")), KindQueued, "", "")
		ds, err := f.r.Unreserve(ctx, "rsv:1")
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 {
			t.Fatalf("after unreserve: %+v, want v1 assigned at once", ds)
		}
		wantKind(t, ds[0], KindAssign, "a", "")
		if st, _ := f.r.Rep("a"); st.Presence == PresenceWrapUp || !st.WrapUntil.IsZero() {
			t.Fatalf("after unreserve = %+v, want no wrap-up", st)
		}
		if _, err := f.r.Unreserve(ctx, "v1"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("unreserving a conversation's task: %v, want ErrInvalid", err)
		}
		f.checkInvariants()
	})

	t.Run("bad input", func(t *testing.T) {
		f := newFixture(t, cfg, Rep{ID: "a"})
		if _, err := f.r.Reserve(ctx, Task{Channel: "voice"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("no id: %v", err)
		}
		f.enqueue(chat("c1"))
		if _, err := f.r.Reserve(ctx, Task{ConversationID: "c1", Channel: "voice"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("an id the router holds: %v", err)
		}
	})
}
