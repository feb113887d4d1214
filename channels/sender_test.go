package channels_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/channels/channelstest"
	"github.com/omnigate/omnigate/sessions"
)

// events is a Timeline over a fixed slice, oldest first, one customer.
type events []sessions.Event

func (e events) LastSeq(context.Context, string) (uint64, error) { return uint64(len(e)), nil }
func (e events) Timeline(_ context.Context, _ string, after uint64, limit int) ([]sessions.Event, error) {
	return e[after:min(len(e), int(after)+limit)], nil
}

func TestReplyChannel(t *testing.T) {
	t.Parallel()
	in := func(conv, channel string) sessions.Event {
		return sessions.Event{Kind: sessions.KindMessageIn, ConversationID: conv, Channel: channel}
	}
	out := func(channel string) sessions.Event {
		return sessions.Event{Kind: sessions.KindMessageOut, ConversationID: "c1", Channel: channel}
	}
	note := sessions.Event{Kind: sessions.KindNote, ConversationID: "c1", Channel: sessions.ChannelSystem}
	// The customer wrote on wechat, then 200 events of no message_in.
	buried := append(events{in("c1", sessions.ChannelWeChat)}, make(events, 200)...)
	for i := 1; i < len(buried); i++ {
		buried[i] = note
	}
	tests := []struct {
		name         string
		evs          events
		conversation string
		fallback     string
		want         string
	}{
		{"empty timeline", nil, "c1", "webchat", "webchat"},
		{"only the conversation's channel", events{in("c1", "webchat")}, "c1", "webchat", "webchat"},
		{"customer moved from webchat to wechat", events{in("c1", "webchat"), out("webchat"), in("c1", "wechat")}, "c1", "webchat", "wechat"},
		{"customer came back to webchat", events{in("c1", "wechat"), in("c1", "webchat")}, "c1", "wechat", "webchat"},
		{"replies are not the customer", events{in("c1", "wechat"), out("sms")}, "c1", "webchat", "wechat"},
		{"another conversation's message", events{in("c1", "wechat"), in("c2", "sms")}, "c1", "webchat", "wechat"},
		{"no message in the conversation", events{in("c2", "sms"), note}, "c1", "webchat", "webchat"},
		{"any conversation", events{in("c1", "wechat"), in("c2", "sms"), out("webchat")}, "", "", "sms"},
		{"any conversation, none", events{note}, "", "", ""},
		{"older than the tail", buried, "c1", "webchat", "webchat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := channels.ReplyChannel(context.Background(), tt.evs, "cus", tt.conversation, tt.fallback)
			if err != nil || got != tt.want {
				t.Errorf("ReplyChannel = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// senderFixture is a Sender over a MemoryStore with webchat and wechat
// adapters (no sms), and customer cust (a web visitor) with conversation
// conv opened on webchat, in which the customer wrote on webchat.
type senderFixture struct {
	t       *testing.T
	store   *sessions.MemoryStore
	reg     *prometheus.Registry
	webchat *channelstest.Adapter
	wechat  *channelstest.Adapter
	policy  *channelstest.Policy
	sender  *channels.Sender
	cust    string
	conv    sessions.Conversation
}

func newSenderFixture(t *testing.T) *senderFixture {
	t.Helper()
	f := &senderFixture{t: t, store: sessions.NewMemoryStore(), reg: prometheus.NewRegistry(),
		webchat: &channelstest.Adapter{Channel: sessions.ChannelWebchat}, wechat: &channelstest.Adapter{Channel: sessions.ChannelWeChat},
		policy: &channelstest.Policy{}}
	t.Cleanup(func() { f.store.Close() })
	reg, err := channels.NewRegistry(f.webchat, f.wechat)
	if err != nil {
		t.Fatal(err)
	}
	f.sender, err = channels.NewSender(channels.SenderOptions{Store: f.store, Channels: reg, Policy: f.policy, Metrics: f.reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, _, err := f.store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "site1", Value: "v-1"}, sessions.Customer{})
	if err != nil {
		t.Fatal(err)
	}
	f.cust = c.ID
	f.conv = f.open("")
	f.write(f.conv.ID, sessions.ChannelWebchat, "hello")
	return f
}

func (f *senderFixture) open(topic string) sessions.Conversation {
	f.t.Helper()
	c, _, err := f.store.OpenConversation(context.Background(), f.cust, topic, sessions.ChannelWebchat)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// write appends the customer's message on channel.
func (f *senderFixture) write(conversationID, channel, text string) {
	f.t.Helper()
	p, _ := json.Marshal(sessions.Message{Text: text})
	if _, _, err := f.store.Append(context.Background(), sessions.Event{CustomerID: f.cust, ConversationID: conversationID,
		Kind: sessions.KindMessageIn, Channel: channel, Author: "customer", Payload: p}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *senderFixture) events() []sessions.Event {
	f.t.Helper()
	evs, err := f.store.Timeline(context.Background(), f.cust, 0, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

// counted reads the send counter as "channel/result=n" pairs, sorted; the
// name is the one dashboards use.
func (f *senderFixture) counted() string {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "omnigate_api_outbound_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			out = append(out, fmt.Sprintf("%s/%s=%g", l["channel"], l["result"], m.GetCounter().GetValue()))
		}
	}
	return strings.Join(out, " ")
}

// reply is a rep's reply on conv.
func (f *senderFixture) reply(text, clientID string) (channels.Result, error) {
	return f.sender.Send(context.Background(), channels.Request{CustomerID: f.cust, Conversation: &f.conv,
		Message: sessions.Message{Text: text, ClientID: clientID}, Author: "rep:alice", Purpose: channels.PurposeReply})
}

func TestSenderSends(t *testing.T) {
	t.Parallel()
	f := newSenderFixture(t)
	f.write(f.conv.ID, sessions.ChannelWeChat, "on my phone now")
	res, err := f.reply("Your parcel ships today.", "c-1")
	if err != nil {
		t.Fatal(err)
	}
	sent := f.wechat.Sent()
	if len(sent) != 1 || len(f.webchat.Sent()) != 0 || sent[0].EventID != res.Event.ID || sent[0].ConversationID != f.conv.ID ||
		sent[0].Message.Text != "Your parcel ships today." || len(sent[0].Identities) != 1 {
		t.Fatalf("sent = %+v on wechat, %d on webchat", sent, len(f.webchat.Sent()))
	}
	if res.Receipt == nil || res.Receipt.ID != "receipt-"+res.Event.ID {
		t.Errorf("receipt = %+v", res.Receipt)
	}
	evs := f.events()
	out, ds := evs[len(evs)-2], evs[len(evs)-1]
	if out.ID != res.Event.ID || out.Kind != sessions.KindMessageOut || out.Channel != sessions.ChannelWeChat ||
		out.ExternalID != "c-1" || out.Author != "rep:alice" || out.ConversationID != f.conv.ID {
		t.Errorf("message_out = %+v", out)
	}
	if ds.Kind != sessions.KindDelivery || ds.Channel != sessions.ChannelWeChat || ds.Author != sessions.ChannelSystem ||
		string(ds.Payload) != `{"event_id":"`+out.ID+`","status":"sent","provider_id":"receipt-`+out.ID+`"}` {
		t.Errorf("delivery_status = %+v %s", ds, ds.Payload)
	}
	want := channels.Contact{CustomerID: f.cust, ConversationID: f.conv.ID, Channel: sessions.ChannelWeChat,
		Purpose: channels.PurposeReply, Author: "rep:alice", ID: "c-1"}
	if asked := f.policy.Asked(); len(asked) != 1 || asked[0] != want {
		t.Errorf("policy asked %+v, want %+v", asked, want)
	}
	if got := f.counted(); got != "wechat/sent=1" {
		t.Errorf("omnigate_api_outbound_messages_total: %s", got)
	}
}

// TestSenderRefusesWithNothingRecorded: every refusal before the append
// leaves the timeline as it was and sends nothing.
func TestSenderRefusesWithNothingRecorded(t *testing.T) {
	t.Parallel()
	until := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		setup func(f *senderFixture)
		check func(t *testing.T, err error)
	}{
		{"policy deny", func(f *senderFixture) {
			f.policy.Answer(channels.Verdict{Decision: channels.Deny, Reasons: []string{"do_not_contact"}}, nil)
		}, func(t *testing.T, err error) {
			re, ok := errors.AsType[*channels.RefusedError](err)
			if !ok || re.Verdict.Decision != channels.Deny || re.Channel != sessions.ChannelWebchat ||
				len(re.Verdict.Reasons) != 1 || re.Verdict.Reasons[0] != "do_not_contact" {
				t.Fatalf("err = %v, want a deny", err)
			}
		}},
		{"policy defer", func(f *senderFixture) {
			f.policy.Answer(channels.Verdict{Decision: channels.Defer, Reasons: []string{"quiet_hours"}, Until: until}, nil)
		}, func(t *testing.T, err error) {
			re, ok := errors.AsType[*channels.RefusedError](err)
			if !ok || re.Verdict.Decision != channels.Defer || !re.Verdict.Until.Equal(until) ||
				!strings.Contains(err.Error(), "2026-03-01T08:00:00Z") || !strings.Contains(err.Error(), "quiet_hours") {
				t.Fatalf("err = %v, want a deferral until %v", err, until)
			}
		}},
		{"policy fails", func(f *senderFixture) {
			f.policy.Answer(channels.Verdict{}, errors.New("ledger unreachable"))
		}, func(t *testing.T, err error) {
			if _, refused := errors.AsType[*channels.RefusedError](err); refused || err == nil || !strings.Contains(err.Error(), "ledger unreachable") {
				t.Fatalf("err = %v, want the policy's failure, not a refusal", err)
			}
		}},
		{"policy defers without a time", func(f *senderFixture) {
			f.policy.Answer(channels.Verdict{Decision: channels.Defer}, nil)
		}, func(t *testing.T, err error) {
			if _, refused := errors.AsType[*channels.RefusedError](err); refused || err == nil {
				t.Fatalf("err = %v, want an error for the policy's mistake", err)
			}
		}},
		{"CanSend refuses", func(f *senderFixture) {
			f.webchat.Refuse(channels.ErrOptedOut)
		}, func(t *testing.T, err error) {
			se, ok := errors.AsType[*channels.SendError](err)
			if !ok || se.Event != nil || se.Reason != channels.ReasonOptedOut || !errors.Is(err, channels.ErrOptedOut) {
				t.Fatalf("err = %v, want an unrecorded opt-out", err)
			}
		}},
		{"CanSend refuses before the policy", func(f *senderFixture) {
			// A policy that allows records the contact in its ledger: a
			// message the channel refuses must not reach it.
			f.webchat.Refuse(channels.ErrOptedOut)
			f.policy.Answer(channels.Verdict{Decision: channels.Deny, Reasons: []string{"do_not_contact"}}, nil)
		}, func(t *testing.T, err error) {
			if se, ok := errors.AsType[*channels.SendError](err); !ok || se.Reason != channels.ReasonOptedOut {
				t.Fatalf("err = %v, want the channel's opt-out", err)
			}
		}},
		{"channel not connected", func(f *senderFixture) {
			f.write(f.conv.ID, sessions.ChannelSMS, "texting now")
		}, func(t *testing.T, err error) {
			se, ok := errors.AsType[*channels.SendError](err)
			if !ok || se.Event != nil || se.Reason != channels.ReasonNotConnected || se.Channel != sessions.ChannelSMS ||
				!errors.Is(err, channels.ErrNoAdapter) {
				t.Fatalf("err = %v, want sms not connected", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSenderFixture(t)
			tt.setup(f)
			before := f.events()
			_, err := f.reply("hi", "r-1")
			tt.check(t, err)
			if after := f.events(); len(after) != len(before) {
				t.Errorf("a refusal recorded %d events", len(after)-len(before))
			}
			if n := len(f.webchat.Sent()) + len(f.wechat.Sent()); n != 0 {
				t.Errorf("a refusal sent %d messages", n)
			}
		})
	}
}

func TestSenderRefusesBadRequests(t *testing.T) {
	t.Parallel()
	f := newSenderFixture(t)
	ok := channels.Request{CustomerID: f.cust, Conversation: &f.conv, Message: sessions.Message{Text: "hi", ClientID: "b-1"},
		Author: "rep:alice", Purpose: channels.PurposeReply}
	other := f.conv
	other.CustomerID = "cus_other"
	tests := []struct {
		name   string
		change func(r *channels.Request)
	}{
		{"no customer", func(r *channels.Request) { r.CustomerID = "" }},
		{"another customer's conversation", func(r *channels.Request) { r.Conversation = &other }},
		{"empty message", func(r *channels.Request) { r.Message.Text = "" }},
		{"no client id", func(r *channels.Request) { r.Message.ClientID = "" }},
		{"no author", func(r *channels.Request) { r.Author = "" }},
		{"no purpose", func(r *channels.Request) { r.Purpose = "" }},
		{"purpose not a word", func(r *channels.Request) { r.Purpose = "Sales Push" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.change(&r)
			before := len(f.events())
			if _, err := f.sender.Send(context.Background(), r); !errors.Is(err, sessions.ErrInvalid) {
				t.Fatalf("Send = %v, want ErrInvalid", err)
			}
			if n := len(f.events()) - before; n != 0 {
				t.Errorf("a bad request recorded %d events", n)
			}
		})
	}
	if len(f.policy.Asked()) != 0 || len(f.webchat.Sent()) != 0 {
		t.Error("a bad request reached the policy or the adapter")
	}
}

func TestSenderRecordsFailure(t *testing.T) {
	t.Parallel()
	f := newSenderFixture(t)
	res, err := f.reply("fail", "f-1")
	se, ok := errors.AsType[*channels.SendError](err)
	if !ok || se.Event == nil || se.Event.ID != res.Event.ID || se.Reason != channels.ReasonRejected {
		t.Fatalf("err = %v, want a recorded failure", err)
	}
	evs := f.events()
	out, ds := evs[len(evs)-2], evs[len(evs)-1]
	if out.Kind != sessions.KindMessageOut || out.ID != res.Event.ID || ds.Kind != sessions.KindDelivery ||
		string(ds.Payload) != `{"event_id":"`+out.ID+`","status":"failed","error":"rejected"}` {
		t.Errorf("timeline tail = %+v / %s", out, ds.Payload)
	}
	if got := f.counted(); got != "webchat/failed=1" {
		t.Errorf("omnigate_api_outbound_messages_total: %s", got)
	}
}

func TestSenderReplay(t *testing.T) {
	t.Parallel()
	f := newSenderFixture(t)
	first, err := f.reply("hello", "k-1")
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.events())
	again, err := f.reply("hello", "k-1")
	if err != nil || again.Event.ID != first.Event.ID || again.Receipt != nil {
		t.Fatalf("replay = %+v, %v; want the first event and no receipt", again, err)
	}
	if _, err := f.reply("other text", "k-1"); !errors.Is(err, channels.ErrClientIDReused) {
		t.Fatalf("reuse = %v, want ErrClientIDReused", err)
	}
	if n := len(f.webchat.Sent()); n != 1 {
		t.Errorf("sent %d times", n)
	}
	if n := len(f.events()) - before; n != 0 {
		t.Errorf("replay and reuse recorded %d events", n)
	}
}

func TestSenderConcurrentClientID(t *testing.T) {
	t.Parallel()
	f := newSenderFixture(t)
	const n = 8
	start := make(chan struct{})
	results := make([]channels.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = f.reply("only once", "same")
		})
	}
	close(start)
	wg.Wait()
	receipts := 0
	for i := range n {
		if errs[i] != nil || results[i].Event.ID != results[0].Event.ID {
			t.Fatalf("send %d = %+v, %v", i, results[i], errs[i])
		}
		if results[i].Receipt != nil {
			receipts++
		}
	}
	if sent := len(f.webchat.Sent()); sent != 1 || receipts != 1 {
		t.Errorf("sent %d times, %d receipts; want 1", sent, receipts)
	}
}

// TestSenderNotice: a message without a conversation goes into the
// customer's most recently active conversation, else onto the timeline
// alone, on the channel the customer last wrote on anywhere.
func TestSenderNotice(t *testing.T) {
	t.Parallel()
	notice := func(f *senderFixture, clientID string) (channels.Result, error) {
		return f.sender.Send(context.Background(), channels.Request{CustomerID: f.cust,
			Message: sessions.Message{Text: "Your parcel ships today.", ClientID: clientID}, Author: "integrator:crm", Purpose: channels.PurposeNotice})
	}
	t.Run("into the active conversation", func(t *testing.T) {
		t.Parallel()
		f := newSenderFixture(t)
		order := f.open("order-1")
		f.write(order.ID, sessions.ChannelWeChat, "where is it?")
		res, err := notice(f, "n-1")
		if err != nil {
			t.Fatal(err)
		}
		if res.Event.ConversationID != order.ID || res.Event.Channel != sessions.ChannelWeChat || len(f.wechat.Sent()) != 1 {
			t.Errorf("message_out = %+v", res.Event)
		}
		// The conversation's topic and the message's id go to the policy:
		// its duplicate rule and its count of a retry depend on them.
		if got := f.policy.Asked()[0]; got.Purpose != channels.PurposeNotice || got.ConversationID != order.ID ||
			got.Topic != "order-1" || got.ID != "n-1" {
			t.Errorf("policy asked %+v", got)
		}
	})
	t.Run("on the timeline alone", func(t *testing.T) {
		t.Parallel()
		f := newSenderFixture(t)
		resolved := sessions.StatusResolved
		if _, _, err := f.store.UpdateConversation(context.Background(), f.conv.ID, sessions.ConversationUpdate{Status: &resolved,
			Event: sessions.Event{Kind: sessions.KindStatusChange, Author: "rep:alice"}}); err != nil {
			t.Fatal(err)
		}
		res, err := notice(f, "n-1")
		if err != nil {
			t.Fatal(err)
		}
		if res.Event.ConversationID != "" || res.Event.Channel != sessions.ChannelWebchat || len(f.webchat.Sent()) != 1 {
			t.Errorf("message_out = %+v", res.Event)
		}
		// A retry after the customer answered (and a conversation
		// opened) is still a retry.
		f.open("")
		again, err := notice(f, "n-1")
		if err != nil || again.Event.ID != res.Event.ID || len(f.webchat.Sent()) != 1 {
			t.Errorf("retry = %+v, %v", again, err)
		}
	})
	t.Run("no channel known", func(t *testing.T) {
		t.Parallel()
		f := newSenderFixture(t)
		c, _, err := f.store.ResolveCustomer(context.Background(), sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "site1", Value: "v-2"}, sessions.Customer{})
		if err != nil {
			t.Fatal(err)
		}
		f.cust = c.ID
		_, err = notice(f, "n-1")
		if se, ok := errors.AsType[*channels.SendError](err); !ok || se.Reason != channels.ReasonNoChannel || se.Event != nil {
			t.Fatalf("err = %v, want no channel", err)
		}
		if len(f.events()) != 0 {
			t.Error("a refused notice was recorded")
		}
	})
}
