package kpi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/kpi"
	"github.com/omnigate/omnigate/sessions"
)

// TestContactCounts: contacts per channel, a repeat within 24 h, a
// contact merged into a conversation open on another channel, contacts
// the policy refused, and the dialer's attempts by outcome (events
// without an outcome are not attempts).
func TestContactCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	day := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	feed := sessions.NewMemoryStore()
	t.Cleanup(func() { _ = feed.Close() })
	e, err := kpi.New(kpi.Config{}, kpi.Options{Store: kpi.NewMemoryStore(), Feed: feed, Router: dayRouter,
		Now: func() time.Time { return day.Add(time.Hour) }})
	must(t, err)
	must(t, e.Start())
	t.Cleanup(e.Close)
	c, _, err := feed.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "demo", Value: "v"}, sessions.Customer{})
	must(t, err)
	var last uint64
	at := func(min int) time.Time { return day.Add(time.Duration(min) * time.Minute) }
	in := func(min int, channel string) sessions.Conversation {
		cv, ev, _, err := feed.Intake(ctx, "", sessions.Event{CustomerID: c.ID, Kind: sessions.KindMessageIn, Channel: channel,
			Author: "customer", Time: at(min), Payload: json.RawMessage(`{"text":"hi"}`)})
		must(t, err)
		last = ev.Seq
		return cv
	}
	appendEv := func(ev sessions.Event) {
		ev.CustomerID = c.ID
		stored, _, err := feed.Append(ctx, ev)
		must(t, err)
		last = stored.Seq
	}
	first := in(0, "webchat") // a contact on webchat
	in(1, "webchat")          // the same contact
	in(2, "sms")              // merged: sms joins the open webchat conversation
	resolved := sessions.StatusResolved
	_, ev, err := feed.UpdateConversation(ctx, first.ID, sessions.ConversationUpdate{Status: &resolved,
		Event: sessions.Event{Author: "rep:alice", Time: at(5)}})
	must(t, err)
	last = ev.Seq
	in(10, "wechat") // a new conversation: a repeat within 24 h
	refusal, _ := json.Marshal(sessions.ContactRefusal{Decision: "deny", Reasons: []string{"duplicate"}, Channel: "sms"})
	appendEv(sessions.Event{Kind: sessions.KindContactRefused, Channel: sessions.ChannelSystem, Author: "system", Time: at(11), Payload: refusal})
	for i, outcome := range []string{"answered", "answered", "abandoned", "no_answer", "busy", ""} {
		p := json.RawMessage(`{"outcome":"` + outcome + `"}`)
		if outcome == "" {
			p = json.RawMessage(`{"state":"ringing"}`)
		}
		appendEv(sessions.Event{Kind: sessions.KindCall, Channel: "voice", Author: "dialer", Time: at(20 + i), Payload: p})
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	must(t, e.WaitHandled(wctx, c.ID, last))

	rows, err := e.Report(ctx, kpi.Query{Interval: time.Hour, From: day, To: day.Add(time.Hour), By: "channel"})
	must(t, err)
	got := map[string]kpi.Row{}
	for _, r := range rows {
		got[r.Key] = r
	}
	for _, c := range []struct {
		channel                                   string
		contacts, repeat, merged, suppressed, att int64
	}{{"webchat", 1, 0, 0, 0, 0}, {"sms", 1, 0, 1, 1, 0}, {"wechat", 1, 1, 0, 0, 0}, {"voice", 0, 0, 0, 0, 5}} {
		r := got[c.channel]
		if r.Contacts != c.contacts || r.Repeat != c.repeat || r.Merged != c.merged || r.Suppressed != c.suppressed || r.Calls != c.att {
			t.Errorf("%s: contacts %d repeat %d merged %d suppressed %d calls %d; want %d %d %d %d %d", c.channel,
				r.Contacts, r.Repeat, r.Merged, r.Suppressed, r.Calls, c.contacts, c.repeat, c.merged, c.suppressed, c.att)
		}
	}
	// Dialer: 5 attempts, 3 connects (2 answered, 1 abandoned): connect
	// rate 3/5 = 0.6, abandon rate 1/3 = 0.3333.
	if v := got["voice"]; v.CallsConnected != 3 || v.CallsAbandoned != 1 || *v.ConnectRate != 0.6 || *v.CallAbandonRate != 0.3333 {
		t.Errorf("voice: %+v", v)
	}
	// The first conversation was resolved after nobody answered it: one
	// abandoned, on webchat, where it started.
	if w := got["webchat"]; w.Abandoned != 1 || w.Offered != 1 {
		t.Errorf("webchat: offered %d abandoned %d, want 1 and 1", w.Offered, w.Abandoned)
	}
}
