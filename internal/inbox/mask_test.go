package inbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/sessions"
	"github.com/omnigate/omnigate/sessions/redact/redacttest"
)

// TestRepSocketSeesNoPhoneInFreeText writes numbers the ways people write
// them into a customer's name and tags, a conversation's topic and a
// message's text; every frame a rep's socket gets (events and the
// conversation frame alike) has them masked, while a supervisor's has them
// as written.
func TestRepSocketSeesNoPhoneInFreeText(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	rep, _ := h.connect(t, aliceToken)
	sup, _ := h.connect(t, carolToken)
	cn := redacttest.Number{CC: "86", National: "13795468213"}
	us := redacttest.Number{CC: "1", National: "4155550137"}
	ctx := context.Background()

	c, _ := h.customer(t)
	h.watch(t, rep, c.ID)
	h.watch(t, sup, c.ID)
	name, tags := "Wang "+cn.Formats()[1], []string{"vip", us.Formats()[13]}
	if _, err := h.store.UpdateCustomer(ctx, c.ID, sessions.CustomerUpdate{Name: &name, Tags: &tags, Author: "system"}); err != nil {
		t.Fatal(err)
	}
	cv, _, err := h.store.OpenConversation(ctx, c.ID, "callback "+cn.Formats()[19], sessions.ChannelWebchat)
	if err != nil {
		t.Fatal(err)
	}
	h.appendIn(t, cv, "call me on "+us.Formats()[10]+" or 电话"+cn.National)
	to := "alice"
	if _, _, err := h.store.UpdateConversation(ctx, cv.ID, sessions.ConversationUpdate{Assignee: &to,
		Event: sessions.Event{Author: "system"}}); err != nil {
		t.Fatal(err)
	}

	// Everything up to the assignment, the last of the changes above.
	frames := func(ws *websocket.Conn) string {
		var all []string
		for {
			f, err := read(t, ws, 5*time.Second)
			if err != nil {
				t.Fatalf("waiting for the conversation frame: %v; got:\n%s", err, strings.Join(all, "\n"))
			}
			all = append(all, f.raw)
			if f.Type == "event" && f.Event.Kind == sessions.KindAssignment {
				return strings.Join(all, "\n")
			}
		}
	}
	got := frames(rep)
	for _, n := range []redacttest.Number{cn, us} {
		if w := redacttest.Leaked(got, n, 6); w != "" {
			t.Errorf("rep's socket shows %q of %s:\n%s", w, n.E164(), got)
		}
	}
	for _, kind := range []string{`"kind":"profile_changed"`, `"kind":"message_in"`, `"topic":"callback`} {
		if !strings.Contains(got, kind) {
			t.Errorf("rep's socket lacks %s:\n%s", kind, got)
		}
	}
	if all := frames(sup); !strings.Contains(all, cn.Formats()[19]) || !strings.Contains(all, cn.National) {
		t.Errorf("supervisor's socket lacks the numbers as written:\n%s", all)
	}
}
