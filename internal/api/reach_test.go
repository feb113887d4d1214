package api_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/channels"
)

type contactResult struct {
	Choice       channels.Choice
	ChoiceEvent  struct{ ID, Kind string } `json:"choice_event"`
	Event        struct{ ID, Kind, Channel, ConversationID string }
	Conversation struct{ ID, Status, Channel, Topic string }
	Receipt      *channels.Receipt
	Replay       bool
}

func (r response) contact(t *testing.T) contactResult {
	t.Helper()
	var c contactResult
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return c
}

// TestContact: best-channel contact through the API: the channel chosen
// with what was skipped, a retry sending nothing, a callback, and the
// roles.
func TestContact(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.do("POST", "/v1/customers/{cust}/contact", integratorToken,
		`{"text":"your order ships today","client_id":"k1","topic":"order-9","purpose":"notice","channels":["sms","webchat"]}`)
	if r.status != 201 {
		t.Fatalf("contact: %d %s", r.status, r.body)
	}
	got := r.contact(t)
	wantSkip := []channels.Skip{{Channel: "sms", Reason: channels.ReasonNotConnected}}
	if got.Choice.Channel != "webchat" || !slices.Equal(got.Choice.Skipped, wantSkip) || got.ChoiceEvent.Kind != "channel_choice" ||
		got.Event.Kind != "message_out" || got.Receipt == nil || got.Conversation.ID != "" || got.Event.ConversationID != "" {
		t.Errorf("contact = %s", r.body)
	}
	again := f.do("POST", "/v1/customers/{cust}/contact", integratorToken,
		`{"text":"your order ships today","client_id":"k1","topic":"order-9","purpose":"notice","channels":["sms","webchat"]}`)
	if rep := again.contact(t); again.status != 200 || !rep.Replay || rep.Event.ID != got.Event.ID || len(f.webchat.Sent()) != 1 {
		t.Errorf("retry = %d %s; %d sent", again.status, again.body, len(f.webchat.Sent()))
	}

	// The customer has a verified phone: a callback when no channel of the
	// list can take the message.
	r = f.do("POST", "/v1/customers/{cust}/contact", adminToken, `{"text":"about your refund","client_id":"k2","topic":"refund-3","channels":["sms","voice"]}`)
	cb := r.contact(t)
	if r.status != 201 || !cb.Choice.Callback || cb.Event.Kind != "integrator" || cb.Event.Channel != "voice" ||
		cb.Conversation.Status != "open" || cb.Conversation.Channel != "voice" || cb.Receipt != nil || cb.Choice.Purpose != "notice" {
		t.Errorf("callback = %d %s", r.status, r.body)
	}

	if r := f.do("POST", "/v1/customers/{cust}/contact", aliceToken, `{"text":"hi","client_id":"k3"}`); r.status != 403 {
		t.Errorf("rep: %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/v1/customers/{cust}/contact", carolToken, `{"text":"hi","client_id":"k3","topic":"t3"}`); r.status != 201 {
		t.Errorf("supervisor: %d %s", r.status, r.body)
	}
}

// TestContactRefusals: unreachable, the policy's refusal and bad input
// answer from the catalogue; all but the policy's record nothing.
func TestContactRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		deny     bool
		status   int
		code     string
		message  string
		reasons  []string
		recorded bool
	}{
		{"unreachable", `{"text":"hi","client_id":"u1","channels":["sms"]}`, false, 409, "unreachable",
			"no channel can reach the customer", []string{"sms:not_connected"}, false},
		{"policy deny", `{"text":"hi","client_id":"u1","channels":["sms","webchat"]}`, true, 409, "contact_refused",
			"chose webchat (skipped sms not_connected): the contact policy refused", []string{"do_not_contact"}, true},
		{"unknown channel", `{"text":"hi","client_id":"u1","channels":["fax"]}`, false, 400, "invalid", `"fax" is not one of`, nil, false},
		{"no client id", `{"text":"hi"}`, false, 400, "invalid", "client_id is required", nil, false},
		{"bad purpose", `{"text":"hi","client_id":"u1","purpose":"Sales"}`, false, 400, "invalid", "purpose", nil, false},
		{"unknown field", `{"text":"hi","client_id":"u1","channel":"sms"}`, false, 400, "malformed_json", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if tt.deny {
				f.policy.Answer(channels.Verdict{Decision: channels.Deny, Reasons: []string{"do_not_contact"}}, nil)
			}
			before := f.snapshot()
			r := f.do("POST", "/v1/customers/{cust}/contact", integratorToken, tt.body)
			if r.status != tt.status || r.errorCode(t) != tt.code {
				t.Fatalf("contact = %d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
			var body struct {
				Error struct {
					Message string
					Reasons []string
				}
			}
			_ = json.Unmarshal(r.body, &body)
			if !strings.Contains(body.Error.Message, tt.message) || !slices.Equal(body.Error.Reasons, tt.reasons) {
				t.Errorf("error %+v, want %q and reasons %v", body.Error, tt.message, tt.reasons)
			}
			if after := f.snapshot(); reflect.DeepEqual(before, after) == tt.recorded {
				t.Errorf("recorded = %v, want %v", !reflect.DeepEqual(before, after), tt.recorded)
			}
			if len(f.webchat.Sent())+len(f.wechat.Sent()) != 0 {
				t.Error("sent a message")
			}
		})
	}
	f := newFixture(t)
	if r := f.do("POST", "/v1/customers/cus_nobody/contact", integratorToken, `{"text":"hi","client_id":"u1"}`); r.status != 404 {
		t.Errorf("unknown customer: %d %s", r.status, r.body)
	}
}
