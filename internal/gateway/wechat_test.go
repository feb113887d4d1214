package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/silenceper/wechat/v2/util"

	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/channels/wechat/wechattest"
	"github.com/omnigate/omnigate/internal/gateway"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

const (
	wxKey    = "brand-a"
	wxAppID  = "wx1111111111111111"
	wxSecret = "secret-a"
	wxToken  = "tokenA1"
	// wxEventsSecret signs the crm integration's /v1/events.
	wxEventsSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// TestWeChatEndToEnd follows WeChat messages through one gateway: a
// signed plain-mode message reaches the timeline and is routed to the
// available rep, whose reply reaches the fake WeChat API as a
// customer-service message with the customer's OpenID and the account's
// token; WeChat's retries land once; the rep's typing reaches WeChat; and
// a customer who started on webchat and went on on WeChat is answered on
// WeChat.
func TestWeChatEndToEnd(t *testing.T) {
	t.Parallel()
	fake := wechattest.New(t)
	fake.AddApp(wxAppID, wxSecret)
	base, store := wechatGateway(t, fake.URL)
	setPresence(t, base, "alice", aliceToken, "available")

	// A correctly signed plain XML text message lands on the timeline.
	const openID = "oA_wang"
	msg := wechatText(openID, time.Now(), 6054768590064713728, "我的包裹在哪里？")
	deliverWeChat(t, base, msg)
	oid := sessions.Identity{Kind: sessions.IdentityWeChatOpenID, Namespace: wxKey, Value: openID, Verified: true}
	cust, err := store.IdentityOwner(context.Background(), oid)
	if err != nil {
		t.Fatalf("no customer for the OpenID: %v", err)
	}
	if n := wechatIn(t, base, cust, "我的包裹在哪里？"); n != 1 {
		t.Fatalf("%d message_in events with the text, want 1", n)
	}

	// It is routed to alice, with the decision on the timeline.
	if d := assignment(t, base, cust, 1); d.Kind != router.KindAssign || d.RepID != "alice" || d.Why == "" {
		t.Fatalf("decision = %+v", d)
	}
	convs := conversationsOf(t, base, cust)
	if len(convs) != 1 || convs[0].Assignee != "alice" {
		t.Fatalf("conversations = %+v", convs)
	}

	// alice's reply reaches WeChat for that OpenID with the account's token.
	reply(t, base, convs[0].ID, "r1", "今天送到", "wechat")
	sent := fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("fake WeChat got %d sends, want 1", len(sent))
	}
	if s := sent[0]; s.AppID != wxAppID || !strings.HasPrefix(s.AccessToken, "ACCESS_TOKEN_"+wxAppID+"_") ||
		s.Body["touser"] != openID || s.Body["msgtype"] != "text" || fmt.Sprint(s.Body["text"]) != "map[content:今天送到]" {
		t.Fatalf("send = %+v", s)
	}

	// The same message delivered 3 more times lands once.
	for range 3 {
		deliverWeChat(t, base, msg)
	}
	if n := wechatIn(t, base, cust, "我的包裹在哪里？"); n != 1 {
		t.Fatalf("%d message_in events after 3 retries, want 1", n)
	}
	if n := countAssignments(t, base, cust); n != 1 {
		t.Fatalf("%d assignments after retries, want 1", n)
	}

	// alice types in the inbox: WeChat shows the customer she is typing.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/inbox/ws", http.Header{"Origin": {base}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteJSON(map[string]string{"type": "auth", "token": aliceToken}); err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteJSON(map[string]any{"type": "typing", "customer_id": cust, "on": true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "typing to reach WeChat", func() bool {
		typed := fake.Typed()
		return len(typed) == 1 && typed[0].Body["touser"] == openID && typed[0].Body["command"] == "Typing"
	})

	// A webchat customer goes on on WeChat (the OpenID is theirs): one
	// conversation, and the reply follows them to WeChat.
	v := newVisitor(t, base)
	v.say(t, "hello from the website")
	d := assignment(t, base, v.customer, 1)
	const openID2 = "oA_li"
	oid2 := sessions.Identity{Kind: sessions.IdentityWeChatOpenID, Namespace: wxKey, Value: openID2, Verified: true}
	if _, _, err := store.LinkIdentity(context.Background(), v.customer, oid2, "rep:alice"); err != nil {
		t.Fatal(err)
	}
	deliverWeChat(t, base, wechatText(openID2, time.Now(), 6054768590064713729, "continuing on WeChat"))
	if n := wechatIn(t, base, v.customer, "continuing on WeChat"); n != 1 {
		t.Fatalf("%d WeChat messages on the webchat customer's timeline, want 1", n)
	}
	convs = conversationsOf(t, base, v.customer)
	if len(convs) != 1 || convs[0].Assignee != d.RepID {
		t.Fatalf("conversations = %+v, want one, assigned to %s", convs, d.RepID)
	}
	token := map[string]string{"alice": aliceToken, "bob": bobToken}[d.RepID]
	replyAs(t, base, token, convs[0].ID, "r2", "answered where you are", "wechat")
	sent = fake.Sent()
	if len(sent) != 2 || sent[1].Body["touser"] != openID2 || sent[1].AppID != wxAppID {
		t.Fatalf("sends = %+v, want a second to %s", sent, openID2)
	}
}

// wechatGateway runs a gateway with one plain-mode official account whose
// API is apiURL, and alice and bob routed for webchat and WeChat.
func wechatGateway(t *testing.T, apiURL string) (string, sessions.Store) {
	t.Helper()
	g, _ := wechatGatewayIn(t, apiURL, t.TempDir())
	return g.BaseURL(), gateway.StoreOf(g)
}

// wechatGatewayIn is wechatGateway on data_dir dir, with the stop that
// ends it, so a test can start another on the same files.
func wechatGatewayIn(t *testing.T, apiURL, dir string) (*gateway.Gateway, func()) {
	t.Helper()
	y := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 5s
auth:
  admin_keys: [{name: test, key: %s}]
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
    - {name: chat, channels: [webchat, wechat], skills: {chat: 1}}
  reps:
    - {id: alice, skills: {chat: 5}, languages: [en, zh]}
    - {id: bob, skills: {chat: 5}, languages: [en, zh]}
`, dir, adminKey, aliceToken, bobToken, wxEventsSecret, wxKey, wxAppID, wxToken, apiURL)
	cfg := parseConfig(t, y, wechatEnv)
	return runGateway(t, cfg)
}

// TestWeChatReplayAfterRestart: a signed callback URL seen once can't
// carry another body after the gateway restarts within its freshness
// window (the used nonces are kept in data_dir, not only in memory),
// while WeChat's own retry of the same body is still answered "success"
// and lands once.
func TestWeChatReplayAfterRestart(t *testing.T) {
	t.Parallel()
	fake := wechattest.New(t)
	fake.AddApp(wxAppID, wxSecret)
	dir := t.TempDir()
	g, stop := wechatGatewayIn(t, fake.URL, dir)

	q := signedWeChatQuery(time.Now(), "424242")
	first := wechatText("oA_first", time.Now(), 7054768590064713728, "the real message")
	if code, body := postWeChat(t, g.BaseURL(), q, "text/xml", first); code != 200 || body != "success" {
		t.Fatalf("first delivery = %d %q", code, body)
	}
	stop()

	g, _ = wechatGatewayIn(t, fake.URL, dir)
	store := gateway.StoreOf(g)
	forged := wechatText("oA_forger", time.Now(), 7054768590064713729, "a forged message")
	if code, body := postWeChat(t, g.BaseURL(), q, "text/xml", forged); code != http.StatusForbidden {
		t.Fatalf("replay with another body after a restart = %d %q, want 403", code, body)
	}
	forger := sessions.Identity{Kind: sessions.IdentityWeChatOpenID, Namespace: wxKey, Value: "oA_forger", Verified: true}
	if c, err := store.IdentityOwner(context.Background(), forger); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("the refused replay left customer %q (%v)", c, err)
	}
	// WeChat retrying the first message (same URL, same body) is answered
	// and still lands once.
	if code, body := postWeChat(t, g.BaseURL(), q, "text/xml", first); code != 200 || body != "success" {
		t.Fatalf("retry after restart = %d %q", code, body)
	}
	oid := sessions.Identity{Kind: sessions.IdentityWeChatOpenID, Namespace: wxKey, Value: "oA_first", Verified: true}
	cust, err := store.IdentityOwner(context.Background(), oid)
	if err != nil {
		t.Fatal(err)
	}
	if n := wechatIn(t, g.BaseURL(), cust, "the real message"); n != 1 {
		t.Fatalf("%d copies of the first message, want 1", n)
	}
}

// TestEventsKnowTheAccountsAndSites: /v1/events takes a customer by the
// OpenID of a configured official account or a user of a configured site,
// and refuses any other account or site with 400, storing nothing.
func TestEventsKnowTheAccountsAndSites(t *testing.T) {
	t.Parallel()
	fake := wechattest.New(t)
	fake.AddApp(wxAppID, wxSecret)
	g, _ := wechatGatewayIn(t, fake.URL, t.TempDir())
	sec, err := signing.ParseSecret(wxEventsSecret)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		customer string
		id       sessions.Identity
		want     int
	}{
		{`{"wechat_openid":{"account":"` + wxKey + `","openid":"oEv1"}}`,
			sessions.Identity{Kind: sessions.IdentityWeChatOpenID, Namespace: wxKey, Value: "oEv1"}, 200},
		{`{"wechat_openid":{"account":"nope","openid":"oEv2"}}`,
			sessions.Identity{Kind: sessions.IdentityWeChatOpenID, Namespace: "nope", Value: "oEv2"}, 400},
		{`{"site_user":{"site":"demo","id":"u-1"}}`,
			sessions.Identity{Kind: sessions.IdentitySiteUser, Namespace: "demo", Value: "u-1"}, 200},
		{`{"site_user":{"site":"nope","id":"u-2"}}`,
			sessions.Identity{Kind: sessions.IdentitySiteUser, Namespace: "nope", Value: "u-2"}, 400},
	} {
		body := []byte(`{"customer":` + tc.customer + `,"type":"coupon.used"}`)
		req, _ := http.NewRequest("POST", g.BaseURL()+"/v1/events", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		sec.SetHeaders(req.Header, fmt.Sprintf("msg_ns%d", i), time.Now(), body)
		if code, b := send(t, req); code != tc.want {
			t.Fatalf("%s: %d %s, want %d", tc.customer, code, b, tc.want)
		}
		_, err = gateway.StoreOf(g).IdentityOwner(context.Background(), tc.id)
		if stored := err == nil; stored != (tc.want == 200) {
			t.Fatalf("%s: answered %d, stored %v (%v)", tc.customer, tc.want, stored, err)
		}
	}
}

// wechatEnv answers the WeChat account's app secret variable.
func wechatEnv(k string) (string, bool) { return wxSecret, k == "TEST_WECHAT_SECRET" }

// signedWeChatQuery is the query WeChat puts on a plain-mode callback URL.
func signedWeChatQuery(at time.Time, nonce string) url.Values {
	ts := strconv.FormatInt(at.Unix(), 10)
	return url.Values{"signature": {util.Signature(wxToken, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}, "openid": {"o-in-query"}}
}

// postWeChat posts a callback and returns the status and body.
func postWeChat(t *testing.T, base string, q url.Values, contentType, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/channels/wechat/"+wxKey+"?"+q.Encode(), strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	return send(t, req)
}

// send makes req and returns the status and body.
func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// wechatText is WeChat's documented text message.
func wechatText(openID string, created time.Time, msgID int64, content string) string {
	return fmt.Sprintf(`<xml>
  <ToUserName><![CDATA[gh_3f1ee5e6ac00]]></ToUserName>
  <FromUserName><![CDATA[%s]]></FromUserName>
  <CreateTime>%d</CreateTime>
  <MsgType><![CDATA[text]]></MsgType>
  <Content><![CDATA[%s]]></Content>
  <MsgId>%d</MsgId>
</xml>`, openID, created.Unix(), content, msgID)
}

var wxNonce struct {
	sync.Mutex
	n int
}

// deliverWeChat posts xmlMsg as WeChat does in plain mode, signed now
// with a fresh nonce, and fails unless the answer is "success".
func deliverWeChat(t *testing.T, base, xmlMsg string) {
	t.Helper()
	wxNonce.Lock()
	wxNonce.n++
	nonce := strconv.Itoa(1000000 + wxNonce.n)
	wxNonce.Unlock()
	if code, b := postWeChat(t, base, signedWeChatQuery(time.Now(), nonce), "text/xml", xmlMsg); code != 200 || b != "success" {
		t.Fatalf("callback = %d %q, want 200 success", code, b)
	}
}

// wechatIn counts the customer's WeChat message_in events carrying text.
func wechatIn(t *testing.T, base, customer, text string) int {
	t.Helper()
	var page struct {
		Data []struct {
			Kind    string          `json:"kind"`
			Channel string          `json:"channel"`
			Payload json.RawMessage `json:"payload"`
		} `json:"data"`
	}
	call(t, base, "GET", "/v1/customers/"+customer+"/timeline", adminKey, "", 200, &page)
	n := 0
	for _, ev := range page.Data {
		if ev.Kind == "message_in" && ev.Channel == "wechat" && strings.Contains(string(ev.Payload), text) {
			n++
		}
	}
	return n
}

func reply(t *testing.T, base, conv, clientID, text, wantChannel string) {
	t.Helper()
	replyAs(t, base, aliceToken, conv, clientID, text, wantChannel)
}

// replyAs posts a rep's reply and checks the channel recorded on it.
func replyAs(t *testing.T, base, token, conv, clientID, text, wantChannel string) {
	t.Helper()
	var out struct {
		Event struct {
			Channel string `json:"channel"`
		} `json:"event"`
	}
	body, _ := json.Marshal(map[string]string{"text": text, "client_id": clientID})
	call(t, base, "POST", "/v1/conversations/"+conv+"/messages", token, string(body), 201, &out)
	if out.Event.Channel != wantChannel {
		t.Fatalf("reply recorded on %q, want %q", out.Event.Channel, wantChannel)
	}
}
