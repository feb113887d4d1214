package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/internal/gateway"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// reachConfig is a single-node gateway with web chat, no WeChat or SMS, a
// chat queue (alice) and a callback queue on voice (bob), and an
// integrator key.
func reachConfig(t *testing.T) config.Config {
	t.Helper()
	y := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 5s
auth:
  admin_keys: [{name: test, key: %s}]
  integrator_keys: [{name: crm, key: %s}]
  reps:
    - {id: alice, token: %s}
    - {id: bob, token: %s}
webchat:
  sites: [{id: demo}]
routing:
  queues:
    - {name: chat, channels: [webchat], skills: {chat: 1}}
    - {name: callbacks, channels: [voice], skills: {phone: 1}}
  reps:
    - {id: alice, skills: {chat: 5}}
    - {id: bob, skills: {phone: 5}}
`, t.TempDir(), adminKey, crmKey, aliceToken, bobToken)
	cfg := parseConfig(t, y, nil)
	return cfg
}

type contactAnswer struct {
	Choice struct {
		Channel  string
		Callback bool
		Skipped  []struct{ Channel, Reason string }
	}
	Event        struct{ ID, Kind, Channel string }
	Conversation struct{ ID, Status, Topic string }
	Receipt      *struct{ ID string }
}

// TestReachThroughGateway: best-channel contact through the running
// gateway. A customer with the widget open gets the message in it at
// once; a customer with only a phone number gets a callback, which the
// routing service routes to the voice queue's rep.
func TestReachThroughGateway(t *testing.T) {
	t.Parallel()
	g, _ := runGateway(t, reachConfig(t))
	base := g.BaseURL()

	// Widget open: web chat, and the visitor sees the message.
	v := returningVisitor(t, g, base)
	var got contactAnswer
	call(t, base, "POST", "/v1/customers/"+v.customer+"/contact", crmKey,
		`{"text":"your parcel ships today","client_id":"r-1","topic":"order-7"}`, 201, &got)
	if got.Choice.Channel != "webchat" || len(got.Choice.Skipped) != 0 || got.Event.Kind != "message_out" ||
		got.Event.Channel != "webchat" || got.Conversation.ID != "" {
		t.Fatalf("widget open: %+v", got)
	}
	_ = v.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var f struct{ Type, Kind, Text, From string }
		if err := v.ws.ReadJSON(&f); err != nil {
			t.Fatalf("the visitor never saw the message: %v", err)
		}
		if f.Type == "event" && f.Kind == "message_out" {
			if f.Text != "your parcel ships today" {
				t.Errorf("visitor saw %+v", f)
			}
			break
		}
	}
	var choices int
	for _, ev := range timeline(t, base, v.customer) {
		if ev.Kind == string(sessions.KindChannelChoice) {
			choices++
		}
	}
	if choices != 1 {
		t.Errorf("%d channel_choice events on the timeline, want 1", choices)
	}

	// Only an unverified phone, no widget open: a callback, routed to bob
	// on the voice queue.
	cust, _, err := gateway.StoreOf(g).ResolveCustomer(context.Background(),
		sessions.Identity{Kind: sessions.IdentityPhone, Value: "+8613812345678"}, sessions.Customer{Name: "Li"})
	if err != nil {
		t.Fatal(err)
	}
	setPresence(t, base, "bob", bobToken, "available")
	got = contactAnswer{}
	call(t, base, "POST", "/v1/customers/"+cust.ID+"/contact", crmKey,
		`{"text":"about your complaint","client_id":"r-2","topic":"complaint-1","purpose":"service"}`, 201, &got)
	want := []struct{ Channel, Reason string }{{"webchat", "channel_unavailable"}, {"wechat", "not_connected"}, {"sms", "not_connected"}}
	if got.Choice.Channel != "voice" || !got.Choice.Callback || fmt.Sprint(got.Choice.Skipped) != fmt.Sprint(want) ||
		got.Event.Kind != "integrator" || got.Conversation.Status != "open" || got.Receipt != nil {
		t.Fatalf("callback: %+v", got)
	}
	d := assignment(t, base, cust.ID, 1)
	if d.Kind != router.KindAssign || d.RepID != "bob" || d.Queue != "callbacks" || d.ConversationID != got.Conversation.ID {
		t.Fatalf("callback decision = %+v", d)
	}
	// A retry asks for nothing again.
	var again struct{ Replay bool }
	call(t, base, "POST", "/v1/customers/"+cust.ID+"/contact", crmKey,
		`{"text":"about your complaint","client_id":"r-2","topic":"complaint-1","purpose":"service"}`, 200, &again)
	requests := 0
	for _, ev := range timeline(t, base, cust.ID) {
		var p struct{ Type string }
		if ev.Kind == "integrator" && json.Unmarshal(ev.Payload, &p) == nil && p.Type == "callback_requested" {
			requests++
		}
	}
	if !again.Replay || requests != 1 {
		t.Errorf("retry: replay %v, %d callback requests", again.Replay, requests)
	}
}
