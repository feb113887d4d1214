package routing_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/internal/testredis"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/router/routing"
	"github.com/omnigate/omnigate/sessions"
)

var quiet = slog.New(slog.DiscardHandler)

var routerConfig = router.Config{
	Queues: []router.QueueConfig{{Name: "chat", Channels: []string{"webchat"}}, {Name: "voice", Channels: []string{"voice"}}},
	Reps:   []router.Rep{{ID: "a", Name: "A"}},
}

func start(t *testing.T, cfg routing.Config, rc router.Config, o routing.Options) *routing.Service {
	t.Helper()
	s, err := routing.New(cfg, rc, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// chat writes a customer's web chat message as a channel's intake does
// and waits until the service has handled it.
func chat(t *testing.T, store sessions.Store, s *routing.Service, customer, id string) sessions.Conversation {
	t.Helper()
	ctx := context.Background()
	cv, _, err := store.OpenConversation(ctx, customer, "", sessions.ChannelWebchat)
	if err != nil {
		t.Fatal(err)
	}
	ev, _, err := store.Append(ctx, sessions.Event{CustomerID: customer, ConversationID: cv.ID, Kind: sessions.KindMessageIn,
		Channel: sessions.ChannelWebchat, ExternalID: id, Author: "customer", Payload: json.RawMessage(`{"text":"hi"}`)})
	if err != nil {
		t.Fatal(err)
	}
	handled(t, s, customer, ev.Seq)
	return cv
}

func handled(t *testing.T, s *routing.Service, customer string, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitHandled(ctx, customer, seq); err != nil {
		t.Fatalf("customer %s's event %d not handled: %v", customer, seq, err)
	}
}

func newCustomer(t *testing.T, store sessions.Store, visitor string) string {
	t.Helper()
	c, _, err := store.ResolveCustomer(context.Background(), sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "demo", Value: visitor}, sessions.Customer{})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// assignments are the router's assignment decisions on the customer's
// timeline.
func assignments(t *testing.T, store sessions.Store, customer string) []sessions.Event {
	t.Helper()
	evs, err := store.Timeline(context.Background(), customer, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []sessions.Event
	for _, ev := range evs {
		if ev.Kind == sessions.KindAssignment {
			out = append(out, ev)
		}
	}
	return out
}

// TestAssignsAndRecords: a chat with nobody available waits; the rep
// becoming available gets it, written by the router with its decision;
// the customer's next message stays with the rep.
func TestAssignsAndRecords(t *testing.T) {
	t.Parallel()
	store := sessions.NewMemoryStore()
	s := start(t, routing.Config{}, routerConfig, routing.Options{Store: store, Logger: quiet})
	cust := newCustomer(t, store, "v1")
	cv := chat(t, store, s, cust, "m1")
	if got := assignments(t, store, cust); len(got) != 0 {
		t.Fatalf("assigned with the only rep offline: %+v", got)
	}
	if err := s.SetPresence(context.Background(), "a", router.PresenceAvailable); err != nil {
		t.Fatal(err)
	}
	got := assignments(t, store, cust)
	if len(got) != 1 || got[0].Author != sessions.AuthorRouter {
		t.Fatalf("assignments = %+v, want one by the router", got)
	}
	var d router.Decision
	if err := json.Unmarshal(got[0].Payload, &d); err != nil || d.RepID != "a" || d.Why == "" {
		t.Fatalf("decision = %+v (%v)", d, err)
	}
	if c, _ := store.Conversation(context.Background(), cv.ID); c.Assignee != "a" {
		t.Fatalf("conversation = %+v", c)
	}
	chat(t, store, s, cust, "m2")
	if n := len(assignments(t, store, cust)); n != 1 {
		t.Fatalf("%d assignments after a second message, want 1 (sticky)", n)
	}
	if st, err := s.Rep("a"); err != nil || st.Used != 25 || st.Capacity != 100 || st.Tier != 1 {
		t.Fatalf("rep = %+v, %v; want 25 of 100 used, tier 1", st, err)
	}
}

// TestReservationHoldsRep: a rep reserved for a call is offered no chat
// until the reservation is released.
func TestReservationHoldsRep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sessions.NewMemoryStore()
	s := start(t, routing.Config{}, routerConfig, routing.Options{Store: store, Logger: quiet})
	if _, err := s.Reserve(ctx, routing.Reservation{ID: "call-1", Channel: sessions.ChannelVoice}); !errors.Is(err, router.ErrNoRep) {
		t.Fatalf("reserve with nobody available: %v", err)
	}
	if err := s.SetPresence(ctx, "a", router.PresenceAvailable); err != nil {
		t.Fatal(err)
	}
	d, err := s.Reserve(ctx, routing.Reservation{ID: "call-1", Channel: sessions.ChannelVoice})
	if err != nil || d.RepID != "a" {
		t.Fatalf("reserve = %+v, %v", d, err)
	}
	if st, _ := s.Rep("a"); st.Presence != router.PresenceOnCall {
		t.Fatalf("reserved rep is %s, want on_call", st.Presence)
	}
	cust := newCustomer(t, store, "v1")
	chat(t, store, s, cust, "m1")
	if got := assignments(t, store, cust); len(got) != 0 {
		t.Fatalf("a chat went to a rep on a reserved call: %+v", got)
	}
	if err := s.Release(ctx, "call-1"); err != nil {
		t.Fatal(err)
	}
	if got := assignments(t, store, cust); len(got) != 1 {
		t.Fatalf("the waiting chat after the release: %+v", got)
	}
	if err := s.Release(ctx, "call-1"); err != nil {
		t.Fatalf("a second release: %v", err)
	}
}

// TestReservationLapsesWithNode: a reservation held by a node that stops
// renewing its lease (its Valkey connection is gone) is freed by another
// node, so the rep is not held forever.
func TestReservationLapsesWithNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr := testredis.Addr(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "rt" + hex.EncodeToString(b[:])
	store := sessions.NewMemoryStore()
	cfg := routing.Config{SyncInterval: 50 * time.Millisecond, NodeLease: 300 * time.Millisecond, ReconcileInterval: 100 * time.Millisecond}
	node := func(name string) (*routing.Service, valkey.Client) {
		client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(client.Close) // after the service's Close (cleanups run last first)
		st, err := router.NewValkeyNodeState(client, prefix, name)
		if err != nil {
			t.Fatal(err)
		}
		return start(t, cfg, routerConfig, routing.Options{Store: store, State: st, Logger: quiet}), client
	}
	a, aClient := node("a")
	b2, _ := node("b")
	if err := a.SetPresence(ctx, "a", router.PresenceAvailable); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve(ctx, routing.Reservation{ID: "call-1", Channel: sessions.ChannelVoice}); err != nil {
		t.Fatal(err)
	}
	used := func(s *routing.Service) int { st, _ := s.Rep("a"); return st.Used }
	waitFor(t, "node b to learn of the reservation", func() bool { return used(b2) == 100 })
	aClient.Close() // node a is cut off: no more heartbeats
	waitFor(t, "node b to free the lapsed reservation", func() bool { return used(b2) == 0 })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReassignWhenAssigneeLeaves: a chat stays with a rep who stepped away
// for less than reassign_after, and is taken back and given to another rep
// once they have been gone that long; the timeline says why.
func TestReassignWhenAssigneeLeaves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sessions.NewMemoryStore()
	clock := router.NewManualClock(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	rc := router.Config{Queues: routerConfig.Queues, Reps: []router.Rep{{ID: "a"}, {ID: "b"}}}
	s := start(t, routing.Config{ReassignAfter: 2 * time.Minute}, rc, routing.Options{Store: store, Logger: quiet, Clock: clock})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SetPresence(ctx, "a", router.PresenceAvailable))
	cust := newCustomer(t, store, "v1")
	cv := chat(t, store, s, cust, "m1")
	must(s.SetPresence(ctx, "b", router.PresenceAvailable))
	assignee := func() string {
		c, err := store.Conversation(ctx, cv.ID)
		must(err)
		return c.Assignee
	}
	if got := assignee(); got != "a" {
		t.Fatalf("assigned to %q, want a", got)
	}

	must(s.SetPresence(ctx, "a", router.PresenceAway))
	routing.ReassignAway(s) // a is seen gone now
	clock.Advance(time.Minute)
	routing.ReassignAway(s)
	if got := assignee(); got != "a" {
		t.Fatalf("after a minute away: assigned to %q, want still a", got)
	}
	clock.Advance(time.Minute)
	routing.ReassignAway(s)
	if got := assignee(); got != "b" {
		t.Fatalf("after two minutes away: assigned to %q, want b", got)
	}
	evs := assignments(t, store, cust)
	if len(evs) != 3 || evs[1].Author != sessions.AuthorRouter || !strings.Contains(string(evs[1].Payload), `"from":"a"`) {
		t.Fatalf("assignment events %+v, want a's, the router taking it back from a, b's", evs)
	}
	if st, _ := s.Rep("a"); st.Used != 0 {
		t.Fatalf("a still holds %d units", st.Used)
	}
	// A rep who comes back in time keeps their chats.
	must(s.SetPresence(ctx, "a", router.PresenceAvailable))
	must(s.SetPresence(ctx, "b", router.PresenceAway))
	routing.ReassignAway(s)
	clock.Advance(time.Minute)
	must(s.SetPresence(ctx, "b", router.PresenceAvailable))
	routing.ReassignAway(s)
	clock.Advance(2 * time.Minute)
	routing.ReassignAway(s)
	if got := assignee(); got != "b" {
		t.Fatalf("b came back within the grace: assigned to %q, want b", got)
	}
}
