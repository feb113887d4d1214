package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/channels/wechat/wechattest"
	"github.com/omnigate/omnigate/internal/gateway"
	"github.com/omnigate/omnigate/sessions"
)

// scenarioGateway is one node with web chat, a WeChat account (on the
// fake WeChat API at apiURL), the crm integration and API key, a voice
// queue for callbacks, and a contact policy in which a sales contact
// waits for open work and for a week after a resolved conversation.
func scenarioGateway(t *testing.T, apiURL string) *gateway.Gateway {
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
webhooks:
  integrations: [{name: crm, secret: %s}]
wechat:
  accounts:
    - {key: %s, app_id: %s, app_secret_env: TEST_WECHAT_SECRET, token: %s, mode: plain, api_base_url: %s}
routing:
  queues:
    - {name: chat, channels: [webchat, wechat, api], skills: {chat: 1}}
    - {name: voice, channels: [voice]}
  reps:
    - {id: alice, skills: {chat: 5}}
    - {id: bob, skills: {chat: 5}}
contact_policy:
  default_time_zone: Asia/Shanghai
  purposes:
    sales:
      open_work: {action: defer, recheck: 1h}
      min_gap_after_resolved: 7d
`, t.TempDir(), adminKey, crmKey, aliceToken, bobToken, wxEventsSecret, wxKey, wxAppID, wxToken, apiURL)
	cfg := parseConfig(t, y, wechatEnv)
	g, _ := runGateway(t, cfg)
	return g
}

// TestOneComplaintOneConversation is the story Omnigate exists for, end to
// end through the running gateway: a customer complains about one late
// order by phone, then in the web chat, then on WeChat, within minutes;
// that is one customer with one open conversation and one rep. Two
// people asking for a callback about the order make one callback task. A
// sales campaign's contact the same afternoon is deferred for the open
// work; once the complaint is resolved it is deferred for the week's gap,
// and allowed a week after.
func TestOneComplaintOneConversation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := wechattest.New(t)
	fake.AddApp(wxAppID, wxSecret)
	g := scenarioGateway(t, fake.URL)
	base, store := g.BaseURL(), gateway.StoreOf(g)
	setPresence(t, base, "bob", bobToken, "available")

	// By phone: the phone system reports the call through /v1/events.
	const phone = "+8613800138000"
	sec, err := signing.ParseSecret(wxEventsSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"customer":{"phone":"` + phone + `"},"type":"call.inbound","data":{"about":"order 42 is late"}}`)
	req, _ := http.NewRequest("POST", base+"/v1/events", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	sec.SetHeaders(req.Header, "msg_call_1", time.Now(), body)
	if code, b := send(t, req); code != 200 {
		t.Fatalf("call event: %d %s", code, b)
	}
	cust, err := store.IdentityOwner(ctx, sessions.Identity{Kind: sessions.IdentityPhone, Value: phone})
	if err != nil {
		t.Fatal(err)
	}

	// In the web chat, from a browser known to be hers (as a signed-in
	// site user's would be), then on WeChat from her OpenID.
	const vid, openID = "k3Jx9QeP2m_T8wVb-4LzScen", "oScenario1"
	for _, id := range []sessions.Identity{
		{Kind: sessions.IdentityVisitor, Namespace: "demo", Value: vid, Verified: true},
		{Kind: sessions.IdentityWeChatOpenID, Namespace: wxKey, Value: openID, Verified: true},
	} {
		if _, _, err := store.LinkIdentity(ctx, cust, id, "system"); err != nil {
			t.Fatal(err)
		}
	}
	v := dialVisitor(t, base, vid)
	v.say(t, "order 42 is still not here")
	deliverWeChat(t, base, wechatText(openID, time.Now(), 7054768590064713729, "订单42还没到"))
	if n := wechatIn(t, base, cust, "订单42还没到"); n != 1 {
		t.Fatalf("%d WeChat messages on her timeline, want 1", n)
	}
	d := assignment(t, base, cust, 1)
	convs := conversationsOf(t, base, cust)
	if len(convs) != 1 || convs[0].Status != "open" || convs[0].Assignee != d.RepID {
		t.Fatalf("conversations = %+v, want one open, with %s", convs, d.RepID)
	}
	complaint := convs[0].ID
	for _, ev := range timeline(t, base, cust) {
		if ev.Kind == "message_in" && ev.ConversationID != complaint {
			t.Fatalf("a message outside the one conversation: %+v", ev)
		}
	}

	// Two people ask for a callback about the order: one callback task.
	var first, second struct {
		Conversation sessions.Conversation `json:"conversation"`
	}
	callback := func(clientID string, out any) {
		call(t, base, "POST", "/v1/customers/"+cust+"/contact", adminKey,
			`{"text":"we will call you about order 42","client_id":"`+clientID+`","topic":"order-42","purpose":"service","channels":["voice"]}`,
			201, out)
	}
	callback("cb-alice", &first)
	callback("cb-bob", &second)
	if first.Conversation.ID == "" || first.Conversation.ID != second.Conversation.ID || first.Conversation.Channel != sessions.ChannelVoice {
		t.Fatalf("callbacks went to %+v and %+v, want one voice conversation", first.Conversation, second.Conversation)
	}

	// A sales campaign the same afternoon (15:00 in Shanghai): deferred for
	// the open work.
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Now().In(shanghai)
	afternoon := time.Date(now.Year(), now.Month(), now.Day(), 15, 0, 0, 0, shanghai)
	check := func(at time.Time) (decision string, codes []string) {
		var res struct {
			Decision string `json:"decision"`
			Reasons  []struct {
				Code string `json:"code"`
			} `json:"reasons"`
		}
		call(t, base, "POST", "/v1/contact-policy/check", adminKey,
			`{"customer_id":"`+cust+`","channel":"voice","purpose":"sales","campaign":"spring","at":"`+at.Format(time.RFC3339)+`"}`,
			200, &res)
		for _, r := range res.Reasons {
			codes = append(codes, r.Code)
		}
		return res.Decision, codes
	}
	if dec, codes := check(afternoon); dec != "defer" || !slices.Contains(codes, "open_work") {
		t.Fatalf("sales contact with open work: %s %v, want defer with open_work", dec, codes)
	}

	// The complaint and the callback are resolved: a sales contact waits
	// a week, then may go.
	for _, c := range conversationsOf(t, base, cust) {
		if c.Status != "resolved" {
			call(t, base, "POST", "/v1/conversations/"+c.ID+"/resolve", adminKey, "{}", 200, nil)
		}
	}
	resolved := time.Now().In(shanghai)
	day := func(n int) time.Time {
		return time.Date(resolved.Year(), resolved.Month(), resolved.Day()+n, 15, 0, 0, 0, shanghai)
	}
	if dec, codes := check(day(3)); dec != "defer" || !slices.Contains(codes, "min_gap") || slices.Contains(codes, "open_work") {
		t.Fatalf("three days after the resolution: %s %v, want defer with min_gap only", dec, codes)
	}
	if dec, codes := check(day(8)); dec != "allow" {
		t.Fatalf("a week after the resolution: %s %v, want allow", dec, codes)
	}
}
