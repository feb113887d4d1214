package channels_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/channels/channelstest"
	"github.com/omnigate/omnigate/sessions"
)

// liveAdapter is a web chat double that knows whether the customer's
// widget is open (channels.Presence).
type liveAdapter struct {
	channelstest.Adapter
	online atomic.Bool
}

func (a *liveAdapter) Online(string) bool { return a.online.Load() }

// closedWindow is what WeChat's CanSend says outside the 48-hour window:
// an error that names the next channel.
type closedWindow struct{}

func (closedWindow) Error() string       { return "wechat: window closed; try sms" }
func (closedWindow) NextChannel() string { return sessions.ChannelSMS }

// reachFixture is a Sender over a MemoryStore with web chat (live or
// not), WeChat and SMS doubles, and a customer with a visitor, an OpenID
// and a phone number.
type reachFixture struct {
	t       *testing.T
	store   *sessions.MemoryStore
	webchat *liveAdapter
	wechat  *channelstest.Adapter
	sms     *channelstest.Adapter
	policy  *channelstest.Policy
	sender  *channels.Sender
	cust    string
}

func newReachFixture(t *testing.T, verifiedPhone bool) *reachFixture {
	t.Helper()
	f := &reachFixture{t: t, store: sessions.NewMemoryStore(),
		webchat: &liveAdapter{Adapter: channelstest.Adapter{Channel: sessions.ChannelWebchat}},
		wechat:  &channelstest.Adapter{Channel: sessions.ChannelWeChat},
		sms:     &channelstest.Adapter{Channel: sessions.ChannelSMS},
		policy:  &channelstest.Policy{}}
	t.Cleanup(func() { f.store.Close() })
	reg, err := channels.NewRegistry(f.webchat, f.wechat, f.sms)
	if err != nil {
		t.Fatal(err)
	}
	if f.sender, err = channels.NewSender(channels.SenderOptions{Store: f.store, Channels: reg, Policy: f.policy}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, _, err := f.store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "site1", Value: "v-1"}, sessions.Customer{})
	if err != nil {
		t.Fatal(err)
	}
	f.cust = c.ID
	for _, id := range []sessions.Identity{
		{Kind: sessions.IdentityWeChatOpenID, Namespace: "wx1", Value: "o-1"},
		{Kind: sessions.IdentityPhone, Value: "+8613812345678", Verified: verifiedPhone},
	} {
		if _, _, err := f.store.LinkIdentity(ctx, f.cust, id, "test"); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *reachFixture) reach(clientID string, edit func(*channels.ReachRequest)) (channels.Reached, error) {
	r := channels.ReachRequest{CustomerID: f.cust, Topic: "order-42", Purpose: channels.PurposeNotice,
		Message: sessions.Message{Text: "your order ships today", ClientID: clientID}, Author: "integrator:crm"}
	if edit != nil {
		edit(&r)
	}
	return f.sender.Reach(context.Background(), f.store, r)
}

func (f *reachFixture) events(kind sessions.EventKind) []sessions.Event {
	f.t.Helper()
	evs, err := f.store.Timeline(context.Background(), f.cust, 0, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	return slices.DeleteFunc(evs, func(ev sessions.Event) bool { return ev.Kind != kind })
}

func (f *reachFixture) sent() map[string]int {
	return map[string]int{"webchat": len(f.webchat.Sent()), "wechat": len(f.wechat.Sent()), "sms": len(f.sms.Sent())}
}

// TestReachPicksBestChannel: each situation picks its channel and reports
// every channel skipped, with its reason, on the answer and the timeline.
func TestReachPicksBestChannel(t *testing.T) {
	t.Parallel()
	noWidget := channels.Skip{Channel: "webchat", Reason: channels.ReasonNoLiveSession}
	windowClosed := channels.Skip{Channel: "wechat", Reason: channels.ReasonWindowClosed}
	tests := []struct {
		name     string
		verified bool
		setup    func(f *reachFixture)
		want     string
		skipped  []channels.Skip
	}{
		{"widget live", true, func(f *reachFixture) { f.webchat.online.Store(true) }, "webchat", nil},
		{"no widget, wechat window open", true, nil, "wechat", []channels.Skip{noWidget}},
		{"no widget, window closed, verified phone", true, func(f *reachFixture) { f.wechat.Refuse(closedWindow{}) },
			"sms", []channels.Skip{noWidget, windowClosed}},
		{"unverified phone: callback", false, func(f *reachFixture) { f.wechat.Refuse(closedWindow{}) },
			"voice", []channels.Skip{noWidget, windowClosed, {Channel: "sms", Reason: channels.ReasonUnverifiedPhone}}},
		{"no visitor, opted out of sms: callback", true, func(f *reachFixture) {
			f.webchat.online.Store(true)
			f.webchat.Refuse(channels.ErrNoAdapter)
			f.wechat.Refuse(channels.ErrRateLimited)
			f.sms.Refuse(channels.ErrOptedOut)
		}, "voice", []channels.Skip{{Channel: "webchat", Reason: channels.ReasonUnreachable},
			{Channel: "wechat", Reason: channels.ReasonRateLimited}, {Channel: "sms", Reason: channels.ReasonOptedOut}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newReachFixture(t, tt.verified)
			if tt.setup != nil {
				tt.setup(f)
			}
			got, err := f.reach("c-1", nil)
			if err != nil {
				t.Fatalf("Reach: %v", err)
			}
			if got.Choice.Channel != tt.want || !slices.Equal(got.Choice.Skipped, tt.skipped) {
				t.Errorf("chose %s skipping %v; want %s skipping %v", got.Choice.Channel, got.Choice.Skipped, tt.want, tt.skipped)
			}
			choices := f.events(sessions.KindChannelChoice)
			if len(choices) != 1 {
				t.Fatalf("%d channel_choice events, want 1", len(choices))
			}
			var recorded channels.Choice
			if err := json.Unmarshal(choices[0].Payload, &recorded); err != nil || recorded.Channel != tt.want ||
				!slices.Equal(recorded.Skipped, tt.skipped) || choices[0].Author != "integrator:crm" {
				t.Errorf("recorded choice %+v (%v) by %s", recorded, err, choices[0].Author)
			}
			sent := f.sent()
			conv := got.Conversation
			if tt.want == "voice" {
				if !got.Choice.Callback || got.Receipt != nil || got.Event.Kind != sessions.KindIntegrator ||
					got.Event.Channel != sessions.ChannelVoice || conv.Channel != sessions.ChannelVoice ||
					conv.Status != sessions.StatusOpen || conv.Topic != "order-42" {
					t.Errorf("callback: event %+v in %+v", got.Event, conv)
				}
				var p struct {
					Type string `json:"type"`
					Data struct{ Text string }
				}
				if err := json.Unmarshal(got.Event.Payload, &p); err != nil || p.Type != channels.CallbackRequested || p.Data.Text != "your order ships today" {
					t.Errorf("callback payload %s", got.Event.Payload)
				}
				if sent["webchat"]+sent["wechat"]+sent["sms"] != 0 || len(f.policy.Asked()) != 0 {
					t.Errorf("a callback sent %v and asked the policy %v", sent, f.policy.Asked())
				}
				return
			}
			if sent[tt.want] != 1 || sent["webchat"]+sent["wechat"]+sent["sms"] != 1 {
				t.Errorf("sent %v, want one on %s", sent, tt.want)
			}
			if got.Receipt == nil || got.Event.Kind != sessions.KindMessageOut || got.Event.Channel != tt.want {
				t.Errorf("event %+v receipt %v", got.Event, got.Receipt)
			}
			// No conversation was active on the topic: the message goes
			// outside any (one opened for it would be work for a rep).
			if conv.ID != "" || got.Event.ConversationID != "" {
				t.Errorf("conversation %+v, event in %q; want none", conv, got.Event.ConversationID)
			}
			if convs, _, _ := f.store.Conversations(context.Background(), sessions.ConversationQuery{CustomerID: f.cust}); len(convs) != 0 {
				t.Errorf("conversations %+v, want none opened", convs)
			}
			if asked := f.policy.Asked(); len(asked) != 1 || asked[0].Channel != tt.want || asked[0].Purpose != channels.PurposeNotice ||
				asked[0].Topic != "order-42" {
				t.Errorf("policy asked %+v", asked)
			}
		})
	}
}

// TestReachFollowsTopicConversation: a customer who wrote about the topic
// on WeChat is answered in that conversation on WeChat, even with a
// widget open; the widget is skipped as conversation_elsewhere.
func TestReachFollowsTopicConversation(t *testing.T) {
	t.Parallel()
	f := newReachFixture(t, true)
	f.webchat.online.Store(true)
	ctx := context.Background()
	p, _ := json.Marshal(sessions.Message{Text: "where is my order?"})
	conv, _, _, err := f.store.Intake(ctx, "order-42", sessions.Event{CustomerID: f.cust, Kind: sessions.KindMessageIn,
		Channel: sessions.ChannelWeChat, Author: "customer", Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.reach("c-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []channels.Skip{{Channel: "webchat", Reason: channels.ReasonConversationElsewhere}}
	if got.Choice.Channel != "wechat" || !slices.Equal(got.Choice.Skipped, want) || got.Event.ConversationID != conv.ID ||
		got.Conversation.Status != sessions.StatusOpen {
		t.Errorf("chose %s skipping %v into %+v", got.Choice.Channel, got.Choice.Skipped, got.Conversation)
	}
	// Window closed: the other channels can't answer that conversation; a
	// rep of it calls back.
	f.wechat.Refuse(closedWindow{})
	got, err = f.reach("c-2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Choice.Channel != "voice" || got.Event.ConversationID != conv.ID || len(got.Choice.Skipped) != 3 {
		t.Errorf("chose %s skipping %v into %s", got.Choice.Channel, got.Choice.Skipped, got.Event.ConversationID)
	}
}

// TestReachPolicyRefusalStops: a deny or defer ends the walk: nothing is
// sent on the next channel, the choice is recorded, and the conversation
// opened for the message is resolved.
func TestReachPolicyRefusalStops(t *testing.T) {
	t.Parallel()
	until := time.Date(2030, 1, 2, 8, 0, 0, 0, time.UTC)
	for _, v := range []channels.Verdict{
		{Decision: channels.Deny, Reasons: []string{"do_not_contact"}},
		{Decision: channels.Defer, Reasons: []string{"quiet_hours"}, Until: until},
	} {
		t.Run(string(v.Decision), func(t *testing.T) {
			t.Parallel()
			f := newReachFixture(t, true)
			f.webchat.online.Store(true)
			f.policy.Answer(v, nil)
			got, err := f.reach("c-1", nil)
			var refused *channels.RefusedError
			if !errors.As(err, &refused) || refused.Channel != "webchat" || refused.Verdict.Decision != v.Decision ||
				!refused.Verdict.Until.Equal(v.Until) {
				t.Fatalf("Reach = %v, want the policy's %s", err, v.Decision)
			}
			if got.Choice.Channel != "webchat" || got.Event.ID != "" {
				t.Errorf("answer %+v", got)
			}
			if sent := f.sent(); sent["webchat"]+sent["wechat"]+sent["sms"] != 0 || len(f.policy.Asked()) != 1 {
				t.Errorf("sent %v, asked %d times", sent, len(f.policy.Asked()))
			}
			if len(f.events(sessions.KindChannelChoice)) != 1 || len(f.events(sessions.KindMessageOut)) != 0 {
				t.Error("want the choice recorded and no message")
			}
			if convs, _, _ := f.store.Conversations(context.Background(), sessions.ConversationQuery{CustomerID: f.cust}); len(convs) != 0 {
				t.Errorf("conversations %+v, want none opened", convs)
			}
		})
	}
}

// TestReachReplay: a retry with the client id sends nothing twice and
// answers what was done, even when the channels changed meanwhile; a
// client id reused for another text is refused.
func TestReachReplay(t *testing.T) {
	t.Parallel()
	f := newReachFixture(t, false)
	f.webchat.online.Store(true)
	first, err := f.reach("c-1", nil)
	if err != nil || first.Choice.Channel != "webchat" {
		t.Fatalf("first: %+v, %v", first.Choice, err)
	}
	f.webchat.online.Store(false) // now WeChat would be chosen
	again, err := f.reach("c-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replay || again.Choice.Channel != "webchat" || again.Event.ID != first.Event.ID ||
		again.ChoiceEvent.ID != first.ChoiceEvent.ID || again.Receipt != nil {
		t.Errorf("replay %+v, want the first answer", again)
	}
	if sent := f.sent(); sent["webchat"] != 1 || sent["wechat"] != 0 {
		t.Errorf("sent %v", sent)
	}
	if len(f.events(sessions.KindChannelChoice)) != 1 {
		t.Error("the replay recorded a second choice")
	}
	if _, err := f.reach("c-1", func(r *channels.ReachRequest) { r.Message.Text = "something else" }); !errors.Is(err, channels.ErrClientIDReused) {
		t.Errorf("reused client id: %v", err)
	}

	// A callback, replayed, is asked for once.
	f.wechat.Refuse(closedWindow{})
	cb, err := f.reach("c-2", nil)
	if err != nil || !cb.Choice.Callback {
		t.Fatalf("callback: %+v, %v", cb.Choice, err)
	}
	cb2, err := f.reach("c-2", nil)
	if err != nil || !cb2.Replay || cb2.Event.ID != cb.Event.ID || cb2.Conversation.ID != cb.Conversation.ID {
		t.Errorf("callback replay %+v, %v", cb2, err)
	}
	if n := len(f.events(sessions.KindIntegrator)); n != 1 {
		t.Errorf("%d callback requests", n)
	}
}

// TestReachUnreachable: with no channel of the request able to take the
// message and no callback possible, nothing is recorded.
func TestReachUnreachable(t *testing.T) {
	t.Parallel()
	f := newReachFixture(t, true)
	f.sms.Refuse(channels.ErrOptedOut)
	_, err := f.reach("c-1", func(r *channels.ReachRequest) { r.Channels = []string{"sms", "webchat"} })
	var ue *channels.UnreachableError
	want := []channels.Skip{{Channel: "sms", Reason: channels.ReasonOptedOut}, {Channel: "webchat", Reason: channels.ReasonNoLiveSession}}
	if !errors.As(err, &ue) || !slices.Equal(ue.Skipped, want) {
		t.Fatalf("Reach = %v, want unreachable skipping %v", err, want)
	}
	// Not connected, and voice without a phone number.
	reg, _ := channels.NewRegistry()
	bare, _ := channels.NewSender(channels.SenderOptions{Store: f.store, Channels: reg, Policy: channels.AllowAll{}})
	c, _, _ := f.store.ResolveCustomer(context.Background(), sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "site1", Value: "v-2"}, sessions.Customer{})
	_, err = bare.Reach(context.Background(), f.store, channels.ReachRequest{CustomerID: c.ID, Purpose: "notice",
		Message: sessions.Message{Text: "hi", ClientID: "c-1"}, Author: "integrator:crm", Channels: []string{"wechat", "voice"}})
	want = []channels.Skip{{Channel: "wechat", Reason: channels.ReasonNotConnected}, {Channel: "voice", Reason: channels.ReasonUnreachable}}
	if !errors.As(err, &ue) || !slices.Equal(ue.Skipped, want) {
		t.Fatalf("Reach = %v, want unreachable skipping %v", err, want)
	}
	if evs, _ := f.store.Timeline(context.Background(), c.ID, 0, 10); len(evs) != 0 {
		t.Errorf("recorded %d events", len(evs))
	}
	if len(f.events(sessions.KindChannelChoice)) != 0 {
		t.Error("recorded a choice")
	}
}

// TestReachBadInput: each bad request is refused before anything is
// read or recorded.
func TestReachBadInput(t *testing.T) {
	t.Parallel()
	f := newReachFixture(t, true)
	for name, edit := range map[string]func(*channels.ReachRequest){
		"no client id":     func(r *channels.ReachRequest) { r.Message.ClientID = "" },
		"no text":          func(r *channels.ReachRequest) { r.Message.Text = "" },
		"bad purpose":      func(r *channels.ReachRequest) { r.Purpose = "Sales!" },
		"unknown channel":  func(r *channels.ReachRequest) { r.Channels = []string{"fax"} },
		"channel twice":    func(r *channels.ReachRequest) { r.Channels = []string{"sms", "sms"} },
		"no channels":      func(r *channels.ReachRequest) { r.Channels = []string{} },
		"topic with a bar": func(r *channels.ReachRequest) { r.Topic = "a|b" },
		"no author":        func(r *channels.ReachRequest) { r.Author = "" },
	} {
		if _, err := f.reach("c-1", edit); !errors.Is(err, sessions.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := f.reach("c-1", func(r *channels.ReachRequest) { r.CustomerID = "cus_nobody" }); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("unknown customer: %v", err)
	}
	if evs, _ := f.store.Timeline(context.Background(), f.cust, 2, 10); len(evs) != 0 {
		t.Errorf("recorded %v", evs)
	}
}
