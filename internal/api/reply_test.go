package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/sessions"
)

// windowClosed is an adapter's refusal naming the next best channel, as
// wechat.UnreachableError does.
type windowClosed struct{}

func (windowClosed) Error() string       { return "window closed; next best channel: sms" }
func (windowClosed) NextChannel() string { return sessions.ChannelSMS }

// write appends the customer's message to conv on channel.
func (f *fixture) write(conv sessions.Conversation, channel string) {
	f.t.Helper()
	p, _ := json.Marshal(sessions.Message{Text: "hello"})
	_, _, err := f.store.Append(context.Background(), sessions.Event{CustomerID: conv.CustomerID, ConversationID: conv.ID,
		Kind: sessions.KindMessageIn, Channel: channel, Author: "customer", Payload: p})
	must(f.t, err)
}

func TestReplyFollowsTheCustomer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.write(f.conv, sessions.ChannelWebchat)
	f.write(f.conv, sessions.ChannelWeChat)
	r := f.do("POST", "/v1/conversations/{conv}/messages", carolToken, `{"text":"hi","client_id":"w1"}`)
	if r.status != 201 {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	if ev := r.json(t)["event"].(map[string]any); ev["channel"] != "wechat" || len(f.wechat.Sent()) != 1 || len(f.webchat.Sent()) != 0 {
		t.Errorf("event = %v; %d on wechat, %d on webchat", ev, len(f.wechat.Sent()), len(f.webchat.Sent()))
	}
}

// TestSendRefusals: how the Sender's refusals answer, and which of them
// leave the timeline as it was (the contact policy's are recorded as a
// contact_refused event: TestRefusalIsRecorded).
func TestSendRefusals(t *testing.T) {
	t.Parallel()
	until := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		setup    func(f *fixture)
		status   int
		code     string
		message  string // a part of the message
		recorded bool   // the timeline changed: the message stays as failed, or the policy's refusal is recorded
	}{
		{"opted out", func(f *fixture) { f.webchat.Refuse(fmt.Errorf("sms: %w", channels.ErrOptedOut)) },
			409, "opted_out", "opted out of webchat; nothing was sent or recorded", false},
		{"window closed", func(f *fixture) { f.webchat.Refuse(fmt.Errorf("wechat: %w", windowClosed{})) },
			409, "window_closed", "next best channel: sms; nothing was sent or recorded", false},
		{"customer not reachable", func(f *fixture) { f.webchat.Refuse(fmt.Errorf("webchat: %w", channels.ErrNoAdapter)) },
			503, "channel_unavailable", `channel "webchat" can't reach the customer; nothing was sent or recorded`, false},
		{"policy deny", func(f *fixture) {
			f.policy.Answer(channels.Verdict{Decision: channels.Deny, Reasons: []string{"do_not_contact"}}, nil)
		}, 409, "contact_refused", "refused the message (do_not_contact); nothing was sent or recorded", true},
		{"policy defer", func(f *fixture) {
			f.policy.Answer(channels.Verdict{Decision: channels.Defer, Reasons: []string{"quiet_hours"}, Until: until}, nil)
		}, 409, "contact_refused", "deferred the message until 2026-03-01T08:00:00Z (quiet_hours)", true},
		{"rate limited by the network", func(f *fixture) { f.webchat.Fail(fmt.Errorf("wechat: %w", channels.ErrRateLimited)) },
			429, "rate_limited", "the message is recorded as failed", true},
		{"reachable no more at send", func(f *fixture) { f.webchat.Fail(fmt.Errorf("webchat: %w", channels.ErrNoAdapter)) },
			503, "channel_unavailable", "the message is recorded as failed", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			tt.setup(f)
			before := f.snapshot()
			r := f.do("POST", "/v1/conversations/{conv}/messages", carolToken, `{"text":"hi","client_id":"x1"}`)
			if r.status != tt.status || r.errorCode(t) != tt.code {
				t.Fatalf("send = %d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
			if msg := r.json(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, tt.message) {
				t.Errorf("message %q lacks %q", msg, tt.message)
			}
			if after := f.snapshot(); reflect.DeepEqual(before, after) == tt.recorded {
				t.Errorf("recorded = %v, want %v", !reflect.DeepEqual(before, after), tt.recorded)
			}
		})
	}
}

func TestContactRefusedLists(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	until := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	f.write(f.conv, sessions.ChannelWebchat)
	f.policy.Answer(channels.Verdict{Decision: channels.Defer, Reasons: []string{"quiet_hours", "frequency_cap"}, Until: until}, nil)
	r := f.do("POST", "/v1/customers/{cust}/messages", integratorToken, `{"text":"hi","client_id":"q1"}`)
	var body struct {
		Error struct {
			Code    string
			Reasons []string
			Until   time.Time
		}
	}
	if err := json.Unmarshal(r.body, &body); err != nil || r.status != 409 {
		t.Fatalf("send = %d %s", r.status, r.body)
	}
	if e := body.Error; e.Code != "contact_refused" || !reflect.DeepEqual(e.Reasons, []string{"quiet_hours", "frequency_cap"}) || !e.Until.Equal(until) {
		t.Errorf("error = %+v", e)
	}
}

func TestCustomerMessage(t *testing.T) {
	t.Parallel()
	t.Run("into the active conversation", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.write(f.convAlice, sessions.ChannelWeChat)
		r := f.do("POST", "/v1/customers/{cust}/messages", integratorToken, `{"text":"Your parcel ships today.","client_id":"n1","purpose":"shipping"}`)
		if r.status != 201 {
			t.Fatalf("send: %d %s", r.status, r.body)
		}
		m := r.json(t)
		ev := m["event"].(map[string]any)
		if ev["conversation_id"] != f.convAlice.ID || ev["channel"] != "wechat" || ev["author"] != "integrator:crm" ||
			m["receipt"].(map[string]any)["id"] != "receipt-"+ev["id"].(string) || len(f.wechat.Sent()) != 1 {
			t.Errorf("body = %s", r.body)
		}
		again := f.do("POST", "/v1/customers/{cust}/messages", integratorToken, `{"text":"Your parcel ships today.","client_id":"n1"}`)
		if again.status != 200 || again.json(t)["event"].(map[string]any)["id"] != ev["id"] || len(f.wechat.Sent()) != 1 {
			t.Errorf("retry = %d %s", again.status, again.body)
		}
		if r := f.do("POST", "/v1/customers/{cust}/messages", adminToken, `{"text":"other","client_id":"n1"}`); r.status != 409 || r.errorCode(t) != "conflict" {
			t.Errorf("reused client id = %d %s", r.status, r.body)
		}
	})
	t.Run("on the timeline alone", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		// other is a web visitor with no conversation, who wrote once.
		p, _ := json.Marshal(sessions.Message{Text: "hi"})
		_, _, err := f.store.Append(context.Background(), sessions.Event{CustomerID: f.other.ID, Kind: sessions.KindMessageIn,
			Channel: sessions.ChannelWebchat, Author: "customer", Payload: p})
		must(t, err)
		r := f.do("POST", "/v1/customers/{other}/messages", adminToken, `{"text":"We have news.","client_id":"n2"}`)
		if r.status != 201 {
			t.Fatalf("send: %d %s", r.status, r.body)
		}
		if ev := r.json(t)["event"].(map[string]any); ev["conversation_id"] != nil || ev["channel"] != "webchat" {
			t.Errorf("event = %v", ev)
		}
		if cs, _, err := f.store.Conversations(context.Background(), sessions.ConversationQuery{CustomerID: f.other.ID}); err != nil || len(cs) != 0 {
			t.Errorf("a notice opened conversations %v (%v)", cs, err)
		}
	})
}

func TestCustomerMessageWritesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, token, body string
		want                    int
		code                    string
	}{
		{"rep", "/v1/customers/{cust}/messages", aliceToken, `{"text":"hi","client_id":"a"}`, 403, "forbidden"},
		{"supervisor", "/v1/customers/{cust}/messages", carolToken, `{"text":"hi","client_id":"a"}`, 403, "forbidden"},
		{"no client id", "/v1/customers/{cust}/messages", integratorToken, `{"text":"hi"}`, 400, "invalid"},
		{"empty text", "/v1/customers/{cust}/messages", integratorToken, `{"text":" ","client_id":"a"}`, 400, "invalid"},
		{"bad purpose", "/v1/customers/{cust}/messages", integratorToken, `{"text":"hi","client_id":"a","purpose":"Sales Push"}`, 400, "invalid"},
		{"unknown field", "/v1/customers/{cust}/messages", integratorToken, `{"text":"hi","client_id":"a","channel":"sms"}`, 400, "malformed_json"},
		{"unknown customer", "/v1/customers/cus_nope/messages", integratorToken, `{"text":"hi","client_id":"a"}`, 404, "not_found"},
		// other has no message and no conversation: no channel to use.
		{"no channel known", "/v1/customers/{other}/messages", integratorToken, `{"text":"hi","client_id":"a"}`, 409, "conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			before := f.snapshot()
			r := f.do("POST", tt.path, tt.token, tt.body)
			if r.status != tt.want || r.errorCode(t) != tt.code {
				t.Fatalf("send = %d %s, want %d %s", r.status, r.body, tt.want, tt.code)
			}
			if after := f.snapshot(); !reflect.DeepEqual(before, after) {
				t.Error("a refused message changed the store")
			}
			if n := len(f.webchat.Sent()) + len(f.wechat.Sent()); n != 0 {
				t.Errorf("a refused message was sent %d times", n)
			}
		})
	}
	t.Run("merged customer", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		if r := f.do("POST", "/v1/customers/{cust}/merge", adminToken, `{"from":"{other}","evidence":"same visitor signed in"}`); r.status != 200 {
			t.Fatalf("merge: %d %s", r.status, r.body)
		}
		before := f.snapshot()
		r := f.do("POST", "/v1/customers/{other}/messages", integratorToken, `{"text":"hi","client_id":"m"}`)
		if r.status != 409 || r.errorCode(t) != "merged" {
			t.Fatalf("send = %d %s", r.status, r.body)
		}
		if after := f.snapshot(); !reflect.DeepEqual(before, after) {
			t.Error("a refused message changed the store")
		}
	})
}
