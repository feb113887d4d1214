package inbox_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/internal/inbox"
	"github.com/omnigate/omnigate/sessions"
)

// manual is a harness whose list views go out only on Flush.
var manual = harnessOpts{cfg: inbox.Config{ListFlushInterval: time.Hour}}

// assigned creates a customer with a conversation assigned to rep ("" for
// none) and a message in it, and returns the conversation as it is then.
func (h *harness) assigned(t *testing.T, rep, text string) sessions.Conversation {
	t.Helper()
	_, cv := h.customer(t)
	if rep != "" {
		var err error
		if cv, _, err = h.store.UpdateConversation(context.Background(), cv.ID,
			sessions.ConversationUpdate{Assignee: &rep, Event: sessions.Event{Author: "system"}}); err != nil {
			t.Fatal(err)
		}
	}
	ev := h.appendIn(t, cv, text)
	cv.LastSeq = ev.Seq
	return cv
}

// settle waits until the hub has dispatched each conversation's events so
// far, then flushes the list views.
func (h *harness) settle(t *testing.T, cvs ...sessions.Conversation) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, cv := range cvs {
		last, err := h.store.LastSeq(ctx, cv.CustomerID)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.hub.WaitHandled(ctx, cv.CustomerID, last); err != nil {
			t.Fatal(err)
		}
	}
	h.hub.Flush()
}

// drain returns every frame queued for ws before a ping it sends now.
func drain(t *testing.T, ws *websocket.Conn) []frame {
	t.Helper()
	send(t, ws, map[string]string{"type": "ping"})
	var got []frame
	for {
		f, err := read(t, ws, 5*time.Second)
		if err != nil {
			t.Fatalf("waiting for pong: %v", err)
		}
		if f.Type == "pong" {
			return got
		}
		got = append(got, f)
	}
}

// mentions lists the frames' raw text that names any of ids.
func mentions(fs []frame, ids ...string) []string {
	var out []string
	for _, f := range fs {
		for _, id := range ids {
			if strings.Contains(f.raw, id) {
				out = append(out, f.raw)
				break
			}
		}
	}
	return out
}

// follow sends a view frame and waits for its acknowledgement.
func follow(t *testing.T, ws *websocket.Conn, views ...string) {
	t.Helper()
	send(t, ws, map[string]any{"type": "view", "views": views})
	if f := next(t, ws, "views"); !strings.Contains(f.raw, strings.Join(views, `","`)) {
		t.Fatalf("views answer %s, want %v", f.raw, views)
	}
}

// conversationsIn returns the ids in the frames' conversations frames of
// view, with how often each came.
func conversationsIn(t *testing.T, fs []frame, view string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, f := range fs {
		if f.Type != "conversations" {
			continue
		}
		var lf struct {
			View          string
			Conversations []sessions.Conversation
		}
		mustUnmarshal(t, f.raw, &lf)
		if lf.View == view {
			for _, c := range lf.Conversations {
				out[c.ID]++
			}
		}
	}
	return out
}

// TestRepSocketCarriesOnlyItsConversations: with conversations of alice,
// bob and nobody, alice's socket gets her own conversation's events and,
// following the unassigned view, the unassigned one in a conversations
// frame; nothing of bob's. The supervisor following "all" gets all three,
// each once however many events it had.
func TestRepSocketCarriesOnlyItsConversations(t *testing.T) {
	t.Parallel()
	h := newHarness(t, manual)
	alice, ready := h.connect(t, aliceToken)
	if !slices.Equal(readyViews(t, ready), []string{"unassigned"}) {
		t.Errorf("rep's ready %s, want views [unassigned]", ready.raw)
	}
	follow(t, alice, "unassigned")
	carol, _ := h.connect(t, carolToken)
	follow(t, carol, "all")

	bobs := h.assigned(t, "bob", "for bob")
	h.appendIn(t, bobs, "again for bob")
	mine := h.assigned(t, "alice", "for alice")
	free := h.assigned(t, "", "for anyone")
	h.settle(t, bobs, mine, free)

	got := drain(t, alice)
	if leak := mentions(got, bobs.ID, bobs.CustomerID); len(leak) > 0 {
		t.Errorf("alice's socket carries bob's conversation:\n%s", strings.Join(leak, "\n"))
	}
	if len(mentions(got, "for alice")) == 0 {
		t.Error("alice's socket lacks her own conversation's message")
	}
	if len(mentions(got, "for anyone")) > 0 {
		t.Error("alice's socket carries an unassigned conversation's message, not only the list entry")
	}
	if n := conversationsIn(t, got, "unassigned"); n[free.ID] != 1 || len(n) != 1 {
		t.Errorf("alice's unassigned view = %v, want %s once", n, free.ID)
	}
	sup := drain(t, carol)
	if n := conversationsIn(t, sup, "all"); n[bobs.ID] != 1 || n[mine.ID] != 1 || n[free.ID] != 1 || len(n) != 3 {
		t.Errorf("supervisor's all view = %v, want each of the three once", n)
	}
	if len(mentions(sup, "for bob")) > 0 {
		t.Error("the all view carries messages; it is a list")
	}

	// Bob takes the free one: it leaves alice's unassigned view, as an
	// entry with its assignee, and from then on she hears nothing of it.
	to := "bob"
	if _, _, err := h.store.UpdateConversation(context.Background(), free.ID,
		sessions.ConversationUpdate{Assignee: &to, Event: sessions.Event{Author: "rep:bob"}}); err != nil {
		t.Fatal(err)
	}
	h.appendIn(t, free, "now bob's")
	h.settle(t, free)
	got = drain(t, alice)
	var left bool
	for _, f := range got {
		if f.Type == "conversations" && strings.Contains(f.raw, `"assignee":"bob"`) {
			left = true
		}
	}
	if !left || len(mentions(got, "now bob's")) > 0 {
		t.Errorf("after bob took it, alice got:\n%s", strings.Join(mentions(got, free.ID), "\n"))
	}
}

// TestWatchAndUnwatch: a rep opening another rep's customer (reps may read
// any timeline) gets its events while watching, and none after watch "".
func TestWatchAndUnwatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, manual)
	alice, _ := h.connect(t, aliceToken)
	bobs := h.assigned(t, "bob", "first")
	h.settle(t, bobs) // "first" went nowhere near alice
	h.watch(t, alice, bobs.CustomerID)
	h.appendIn(t, bobs, "while watching")
	if ev := nextEvent(t, alice, sessions.KindMessageIn); !strings.Contains(string(ev.Payload), "while watching") {
		t.Fatalf("watching, got %s", ev.Payload)
	}
	h.watch(t, alice, "")
	h.appendIn(t, bobs, "after unwatch")
	h.settle(t, bobs)
	if leak := mentions(drain(t, alice), "after unwatch"); len(leak) > 0 {
		t.Errorf("after unwatch alice got %s", leak)
	}
}

// TestOfferReachesTheRep: the router's offer, an assignment event naming
// the rep, goes to that rep's socket though the conversation is nobody's.
func TestOfferReachesTheRep(t *testing.T) {
	t.Parallel()
	h := newHarness(t, manual)
	alice, _ := h.connect(t, aliceToken)
	bob, _ := h.connect(t, bobToken)
	free := h.assigned(t, "", "hello")
	if _, _, err := h.store.Append(context.Background(), sessions.Event{CustomerID: free.CustomerID, ConversationID: free.ID,
		Kind: sessions.KindAssignment, Channel: sessions.ChannelSystem, Author: "system",
		Payload: []byte(`{"kind":"offer","rep_id":"alice","ring":"skills","why":"longest idle"}`)}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, alice, sessions.KindAssignment); !strings.Contains(string(ev.Payload), `"offer"`) {
		t.Fatalf("alice got %s, want the offer", ev.Payload)
	}
	h.settle(t, free)
	if leak := mentions(drain(t, bob), free.ID); len(leak) > 0 {
		t.Errorf("bob got alice's offer: %s", leak)
	}
}

// TestListViewResyncsAfterABurst: more changes in one interval than
// MaxListBatch send resync, not a huge frame and not a close.
func TestListViewResyncsAfterABurst(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{cfg: inbox.Config{ListFlushInterval: time.Hour, MaxListBatch: 2}})
	alice, _ := h.connect(t, aliceToken)
	follow(t, alice, "unassigned")
	var cvs []sessions.Conversation
	for range 3 {
		cvs = append(cvs, h.assigned(t, "", "burst"))
	}
	h.settle(t, cvs...)
	f := next(t, alice, "resync")
	if !strings.Contains(f.raw, `"view":"unassigned"`) {
		t.Errorf("resync frame %s", f.raw)
	}
}

// TestViewsByRole: a rep may not follow all or events; a supervisor may.
func TestViewsByRole(t *testing.T) {
	t.Parallel()
	h := newHarness(t, manual)
	carol, ready := h.connect(t, carolToken)
	if !slices.Equal(readyViews(t, ready), []string{"unassigned", "all", "events"}) {
		t.Errorf("supervisor's ready %s", ready.raw)
	}
	follow(t, carol, "unassigned", "all", "events")
	for _, v := range []string{"all", "events"} {
		alice, _ := h.connect(t, aliceToken)
		send(t, alice, map[string]any{"type": "view", "views": []string{v}})
		expectClose(t, alice, inbox.CloseForbidden)
	}
	// The events view is every event, for monitoring tools.
	h.assigned(t, "bob", "seen by the events view")
	if ev := nextEvent(t, carol, sessions.KindMessageIn); !strings.Contains(string(ev.Payload), "seen by the events view") {
		t.Fatalf("events view got %s", ev.Payload)
	}
}

func mustUnmarshal(t *testing.T, raw string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		t.Fatalf("frame %s: %v", raw, err)
	}
}

func readyViews(t *testing.T, f frame) []string {
	t.Helper()
	var r struct{ Views []string }
	mustUnmarshal(t, f.raw, &r)
	return r.Views
}
