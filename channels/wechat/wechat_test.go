package wechat_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/util"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/channels/wechat"
	"github.com/omnigate/omnigate/channels/wechat/wechattest"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/sessions"
)

// Two accounts of one matrix, bound to one Open Platform.
var (
	acctA = wechat.Account{Key: "brand-a", AppID: "wx1111111111111111", AppSecret: "secret-a", Token: "tokenA1",
		EncodingAESKey: testAESKey(1), Mode: wechat.ModeSafe}
	acctB = wechat.Account{Key: "brand-b", AppID: "wx2222222222222222", AppSecret: "secret-b", Token: "tokenB2",
		Mode: wechat.ModePlain}
)

// testAESKey is a valid 43-character EncodingAESKey.
func testAESKey(seed byte) string {
	return strings.TrimSuffix(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{seed, seed + 1, seed + 2, seed + 3}, 8)), "=")
}

// clock is a settable clock; zero means the real time.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time {
	if ns := c.ns.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Now()
}

func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

type env struct {
	t     testing.TB
	store *sessions.MemoryStore
	fake  *wechattest.Server
	a     *wechat.Adapter
	mux   *http.ServeMux
	clock *clock
	accts map[string]wechat.Account
}

func newEnv(t testing.TB, accounts []wechat.Account, edit func(*wechat.Config, *wechat.Options)) *env {
	t.Helper()
	e := &env{t: t, store: sessions.NewMemoryStore(), fake: wechattest.New(t), clock: &clock{}, accts: map[string]wechat.Account{}}
	cfg := wechat.Config{}
	for _, acct := range accounts {
		acct.APIBaseURL = e.fake.URL
		cfg.Accounts = append(cfg.Accounts, acct)
		e.fake.AddApp(acct.AppID, acct.AppSecret)
		e.accts[acct.Key] = acct
	}
	opts := wechat.Options{Store: e.store, Now: e.clock.now,
		Logger: slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&cfg, &opts)
	}
	a, err := wechat.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.a = a
	e.mux = http.NewServeMux()
	e.mux.Handle("/channels/wechat/{key}", a)
	t.Cleanup(func() {
		_ = a.Close()
		_ = e.store.Close()
	})
	return e
}

// testWriter logs through t until the test ends, then drops lines.
type testWriter struct {
	t    testing.TB
	mu   *sync.Mutex
	done *bool
}

func newTestWriter(t testing.TB) testWriter {
	w := testWriter{t: t, mu: new(sync.Mutex), done: new(bool)}
	t.Cleanup(func() { w.mu.Lock(); *w.done = true; w.mu.Unlock() })
	return w
}

func (w testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !*w.done {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

func nonce() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatUint(uint64(b[0])<<40|uint64(b[1])<<32|uint64(b[2])<<24|uint64(b[3])<<16|uint64(b[4])<<8|uint64(b[5]), 10)
}

// signedQuery is the query WeChat puts on a callback URL.
func signedQuery(token string, ts time.Time, nonce string) url.Values {
	t := strconv.FormatInt(ts.Unix(), 10)
	return url.Values{"signature": {util.Signature(token, t, nonce)}, "timestamp": {t}, "nonce": {nonce}, "openid": {"o-in-query"}}
}

func (e *env) do(method, key string, q url.Values, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(method, "/channels/wechat/"+key+"?"+q.Encode(), strings.NewReader(body))
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "text/xml")
	}
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	return w
}

// deliver posts a message the way WeChat does for the account's mode,
// signed now with a fresh nonce, and returns the response.
func (e *env) deliver(key, xmlMsg string) *httptest.ResponseRecorder {
	e.t.Helper()
	acct := e.accts[key]
	q := signedQuery(acct.Token, e.clock.now(), nonce())
	body := xmlMsg
	if acct.Mode == wechat.ModeSafe || acct.Mode == wechat.ModeCompatible {
		body, q = encrypt(e.t, acct, q, xmlMsg, "")
	}
	return e.do(http.MethodPost, key, q, body)
}

// encrypt turns a plain message into WeChat's safe-mode envelope (or, with
// plainFields, compatible mode's, which keeps the plain fields beside the
// ciphertext), and adds encrypt_type and msg_signature to q.
func encrypt(t testing.TB, acct wechat.Account, q url.Values, xmlMsg, plainFields string) (string, url.Values) {
	t.Helper()
	random := make([]byte, 16)
	_, _ = rand.Read(random)
	enc, err := util.EncryptMsg(random, []byte(xmlMsg), acct.AppID, acct.EncodingAESKey)
	if err != nil {
		t.Fatal(err)
	}
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", util.Signature(acct.Token, q.Get("timestamp"), q.Get("nonce"), string(enc)))
	return "<xml><ToUserName><![CDATA[gh_3f1ee5e6ac00]]></ToUserName>" + plainFields + "<Encrypt><![CDATA[" + string(enc) + "]]></Encrypt></xml>", q
}

func mustSuccess(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != http.StatusOK || w.Body.String() != "success" {
		t.Fatalf("answer %d %q, want 200 success", w.Code, w.Body.String())
	}
}

// textXML is WeChat's documented text message, with the sender, time and
// MsgId given.
func textXML(openID string, created time.Time, msgID int64, content string) string {
	return fmt.Sprintf(`<xml>
  <ToUserName><![CDATA[gh_3f1ee5e6ac00]]></ToUserName>
  <FromUserName><![CDATA[%s]]></FromUserName>
  <CreateTime>%d</CreateTime>
  <MsgType><![CDATA[text]]></MsgType>
  <Content><![CDATA[%s]]></Content>
  <MsgId>%d</MsgId>
  <MsgDataId>xxxx</MsgDataId>
  <Idx>xxxx</Idx>
</xml>`, openID, created.Unix(), content, msgID)
}

// The text message exactly as WeChat's documentation shows it
// (接收普通消息 / 文本消息).
const docTextSample = `<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[fromUser]]></FromUserName>
  <CreateTime>1348831860</CreateTime>
  <MsgType><![CDATA[text]]></MsgType>
  <Content><![CDATA[this is a test]]></Content>
  <MsgId>1234567890123456</MsgId>
</xml>`

func (e *env) owner(id sessions.Identity) string {
	e.t.Helper()
	c, err := e.store.IdentityOwner(context.Background(), id)
	if errors.Is(err, sessions.ErrNotFound) {
		return ""
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func openID(key, v string) sessions.Identity {
	return sessions.Identity{Kind: sessions.IdentityWeChatOpenID, Namespace: key, Value: v}
}

func unionID(v string) sessions.Identity {
	return sessions.Identity{Kind: sessions.IdentityWeChatUnionID, Value: v}
}

func (e *env) timeline(customerID string) []sessions.Event {
	e.t.Helper()
	evs, err := e.store.Timeline(context.Background(), customerID, 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func messagesIn(evs []sessions.Event) []sessions.Event {
	var out []sessions.Event
	for _, ev := range evs {
		if ev.Kind == sessions.KindMessageIn {
			out = append(out, ev)
		}
	}
	return out
}

func payloadOf(t *testing.T, ev sessions.Event) wechat.Payload {
	t.Helper()
	var p wechat.Payload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *env) activeConversations() []sessions.Conversation {
	e.t.Helper()
	var out []sessions.Conversation
	for _, st := range []sessions.ConversationStatus{sessions.StatusOpen, sessions.StatusPending} {
		page, _, err := e.store.Conversations(context.Background(), sessions.ConversationQuery{Status: st, Limit: 500})
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, page...)
	}
	return out
}

// known makes the OpenID's customer exist before its first message, so no
// background UnionID lookup runs and API call counts are exact.
func (e *env) known(key, open string) string {
	e.t.Helper()
	id := openID(key, open)
	id.Verified = true
	c, _, err := e.store.ResolveCustomer(context.Background(), id, sessions.Customer{})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.ID
}

func (e *env) outbound(customerID, text string) channels.Outbound {
	e.t.Helper()
	ids, err := e.store.Identities(context.Background(), customerID)
	if err != nil {
		e.t.Fatal(err)
	}
	return channels.Outbound{CustomerID: customerID, EventID: sessions.NewID("evt"), Identities: ids, Message: sessions.Message{Text: text}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHandshake(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctA}, nil)
	now := time.Now()
	good := signedQuery(acctA.Token, now, "1514711492")
	good.Set("echostr", "5838479218127813673")
	tests := []struct {
		name   string
		q      func() url.Values
		status int
		body   string
	}{
		{"signed", func() url.Values { return good }, 200, "5838479218127813673"},
		{"bad signature", func() url.Values {
			q := signedQuery("wrongtoken", now, "1514711492")
			q.Set("echostr", "x")
			return q
		}, 403, ""},
		{"stale", func() url.Values {
			q := signedQuery(acctA.Token, now.Add(-6*time.Minute), "1514711492")
			q.Set("echostr", "x")
			return q
		}, 403, ""},
		{"no echostr", func() url.Values { return signedQuery(acctA.Token, now, "1514711492") }, 400, ""},
		{"no signature", func() url.Values { return url.Values{"echostr": {"x"}} }, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(http.MethodGet, acctA.Key, tc.q(), "")
			if w.Code != tc.status || (tc.body != "" && w.Body.String() != tc.body) {
				t.Fatalf("got %d %q, want %d %q", w.Code, w.Body.String(), tc.status, tc.body)
			}
		})
	}
	if w := e.do(http.MethodGet, "nope", good, ""); w.Code != http.StatusNotFound {
		t.Fatalf("unknown account: %d", w.Code)
	}
}

// The documented text message, correctly signed, lands on the timeline
// in the customer's open wechat conversation.
func TestPlainMessageReachesTimeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctB}, nil)
	mustSuccess(t, e.deliver(acctB.Key, docTextSample))

	cust := e.owner(openID(acctB.Key, "fromUser"))
	if cust == "" {
		t.Fatal("no customer for the OpenID")
	}
	ids, _ := e.store.Identities(context.Background(), cust)
	if len(ids) != 1 || ids[0].Kind != sessions.IdentityWeChatOpenID || ids[0].Namespace != acctB.Key || !ids[0].Verified {
		t.Fatalf("identities %+v", ids)
	}
	evs := e.timeline(cust)
	if len(evs) != 2 || evs[0].Kind != sessions.KindStatusChange || evs[1].Kind != sessions.KindMessageIn {
		t.Fatalf("timeline %+v", evs)
	}
	msg := evs[1]
	p := payloadOf(t, msg)
	if p.Text != "this is a test" || p.WeChat.Account != acctB.Key || p.WeChat.MsgID != "1234567890123456" ||
		p.WeChat.CreateTime != 1348831860 || msg.Author != "customer" || msg.Channel != sessions.ChannelWeChat ||
		msg.ExternalID != "brand-b:msg:1234567890123456" {
		t.Fatalf("message %+v payload %+v", msg, p)
	}
	conv, err := e.store.Conversation(context.Background(), msg.ConversationID)
	if err != nil || conv.Status != sessions.StatusOpen || conv.Channel != sessions.ChannelWeChat || conv.CustomerID != cust {
		t.Fatalf("conversation %+v %v", conv, err)
	}
}

// WeChat's documented safe-mode sample (the WXBizMsgCrypt sample: AppID
// wx5823bf96d3bd56c7, Token QDG6eK): signature, msg_signature, timestamp,
// nonce and body exactly as published, decrypted to the text "hello" from
// "mycreate". Only the clock is set to the sample's time.
func TestSafeModeDocumentedSample(t *testing.T) {
	t.Parallel()
	sample := wechat.Account{Key: "sample", AppID: "wx5823bf96d3bd56c7", AppSecret: "sample-secret", Token: "QDG6eK",
		EncodingAESKey: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", Mode: wechat.ModeSafe}
	e := newEnv(t, []wechat.Account{sample}, nil)
	e.clock.set(time.Unix(1409659813, 0).Add(20 * time.Second))
	const body = `<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>`
	q := url.Values{
		"msg_signature": {"477715d11cdb4164915debcba66cb864d751f3e6"},
		"timestamp":     {"1409659813"},
		"nonce":         {"1372623149"},
		"encrypt_type":  {"aes"},
		// Official accounts also sign the URL; the sample (from the
		// enterprise edition) has only msg_signature, so this is computed.
		"signature": {util.Signature("QDG6eK", "1409659813", "1372623149")},
	}
	mustSuccess(t, e.do(http.MethodPost, "sample", q, body))
	cust := e.owner(openID("sample", "mycreate"))
	if cust == "" {
		t.Fatal("no customer for mycreate")
	}
	msgs := messagesIn(e.timeline(cust))
	if len(msgs) != 1 {
		t.Fatalf("messages %+v", msgs)
	}
	if p := payloadOf(t, msgs[0]); p.Text != "hello" || p.WeChat.MsgID != "4561255354251345929" || msgs[0].ConversationID == "" {
		t.Fatalf("payload %+v", p)
	}

	// The same body with a msg_signature that does not match is refused.
	q.Set("msg_signature", strings.Repeat("0", 40))
	q.Set("nonce", "1372623150")
	q.Set("signature", util.Signature("QDG6eK", "1409659813", "1372623150"))
	if w := e.do(http.MethodPost, "sample", q, body); w.Code != http.StatusForbidden {
		t.Fatalf("bad msg_signature: %d %s", w.Code, w.Body)
	}
}

// WeChat retries a message it got no answer for: the same message
// delivered 3 more times lands once, each delivery answered "success".
func TestRetriesLandOnce(t *testing.T) {
	t.Parallel()
	for _, acct := range []wechat.Account{acctA, acctB} {
		t.Run(string(acct.Mode), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, []wechat.Account{acct}, nil)
			msg := textXML("oRetry", time.Now(), 6178273614234567890, "my parcel is late")
			for range 4 {
				mustSuccess(t, e.deliver(acct.Key, msg))
			}
			// An exact replay of one request (same timestamp, nonce and
			// body) is harmless and also lands once.
			q := signedQuery(acct.Token, time.Now(), "777000111")
			body := msg
			if acct.Mode == wechat.ModeSafe {
				body, q = encrypt(t, acct, q, msg, "")
			}
			mustSuccess(t, e.do(http.MethodPost, acct.Key, q, body))
			mustSuccess(t, e.do(http.MethodPost, acct.Key, q, body))

			cust := e.owner(openID(acct.Key, "oRetry"))
			if n := len(messagesIn(e.timeline(cust))); n != 1 {
				t.Fatalf("%d messages, want 1", n)
			}
			if n := len(e.activeConversations()); n != 1 {
				t.Fatalf("%d conversations, want 1", n)
			}
		})
	}
}

// Every refused callback gets a 4xx and stores nothing.
func TestRefusedStoresNothing(t *testing.T) {
	t.Parallel()
	now := time.Now()
	msg := textXML("oIntruder", now, 42, "hi")
	plainQ := func(ts time.Time) url.Values { return signedQuery(acctB.Token, ts, nonce()) }
	tests := []struct {
		name   string
		key    string
		method string
		q      func() url.Values
		body   string
		status int
	}{
		{"bad signature", acctB.Key, "POST", func() url.Values { return signedQuery("wrong", now, nonce()) }, msg, 403},
		{"signature of another nonce", acctB.Key, "POST", func() url.Values {
			q := plainQ(now)
			q.Set("nonce", "123")
			return q
		}, msg, 403},
		{"stale timestamp", acctB.Key, "POST", func() url.Values { return plainQ(now.Add(-5*time.Minute - 30*time.Second)) }, msg, 403},
		{"future timestamp", acctB.Key, "POST", func() url.Values { return plainQ(now.Add(6 * time.Minute)) }, msg, 403},
		{"no signature", acctB.Key, "POST", func() url.Values {
			q := plainQ(now)
			q.Del("signature")
			return q
		}, msg, 400},
		{"too large", acctB.Key, "POST", func() url.Values { return plainQ(now) }, "<xml>" + strings.Repeat("<Content>a</Content>", 2000) + "</xml>", 413},
		{"not xml", acctB.Key, "POST", func() url.Values { return plainQ(now) }, `{"ToUserName":"x"}`, 400},
		{"wrong root", acctB.Key, "POST", func() url.Values { return plainQ(now) }, strings.ReplaceAll(msg, "xml>", "doc>"), 400},
		{"two roots", acctB.Key, "POST", func() url.Values { return plainQ(now) }, msg + msg, 400},
		{"trailing text", acctB.Key, "POST", func() url.Values { return plainQ(now) }, msg + "junk", 400},
		{"doctype", acctB.Key, "POST", func() url.Values { return plainQ(now) }, `<!DOCTYPE xml [<!ENTITY x "y">]>` + msg, 400},
		{"unclosed", acctB.Key, "POST", func() url.Values { return plainQ(now) }, strings.TrimSuffix(msg, "</xml>"), 400},
		{"no sender", acctB.Key, "POST", func() url.Values { return plainQ(now) }, strings.Replace(msg, "oIntruder", "", 1), 400},
		{"bad number", acctB.Key, "POST", func() url.Values { return plainQ(now) }, strings.Replace(msg, "<MsgId>42", "<MsgId>4x2", 1), 400},
		{"encrypted to a plain account", acctB.Key, "POST", func() url.Values {
			q := plainQ(now)
			q.Set("encrypt_type", "aes")
			return q
		}, msg, 400},
		{"plain to a safe account", acctA.Key, "POST", func() url.Values { return signedQuery(acctA.Token, now, nonce()) }, msg, 400},
		{"unknown account", "brand-z", "POST", func() url.Values { return plainQ(now) }, msg, 404},
		{"PUT", acctB.Key, "PUT", func() url.Values { return plainQ(now) }, msg, 405},
	}
	e := newEnv(t, []wechat.Account{acctA, acctB}, func(c *wechat.Config, _ *wechat.Options) { c.MaxBodyBytes = 16 << 10 })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(tc.method, tc.key, tc.q(), tc.body)
			if w.Code != tc.status {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tc.status)
			}
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code == "" {
				t.Fatalf("error body %q", w.Body)
			}
		})
	}
	// Safe mode: a ciphertext signed wrongly, or for another AppID.
	t.Run("safe mode forgeries", func(t *testing.T) {
		q := signedQuery(acctA.Token, now, nonce())
		body, q := encrypt(t, acctA, q, msg, "")
		q.Set("msg_signature", util.Signature("wrong", q.Get("timestamp"), q.Get("nonce"), "x"))
		if w := e.do("POST", acctA.Key, q, body); w.Code != 403 {
			t.Fatalf("bad msg_signature: %d", w.Code)
		}
		other := acctA
		other.AppID = "wx9999999999999999"
		q = signedQuery(acctA.Token, now, nonce())
		body, q = encrypt(t, other, q, msg, "")
		if w := e.do("POST", acctA.Key, q, body); w.Code != 400 {
			t.Fatalf("other AppID: %d", w.Code)
		}
	})
	// A signature seen once can't carry another body.
	t.Run("replayed nonce", func(t *testing.T) {
		q := plainQ(now)
		mustSuccess(t, e.do("POST", acctB.Key, q, textXML("oFirst", now, 1001, "real")))
		if w := e.do("POST", acctB.Key, q, msg); w.Code != 403 {
			t.Fatalf("replay with another body: %d", w.Code)
		}
		if c := e.owner(openID(acctB.Key, "oFirst")); c == "" {
			t.Fatal("the first message was not stored")
		}
	})
	for _, key := range []string{acctA.Key, acctB.Key} {
		if c := e.owner(openID(key, "oIntruder")); c != "" {
			t.Fatalf("a refused message created customer %s", c)
		}
	}
	if n := len(e.activeConversations()); n != 1 { // oFirst's
		t.Fatalf("%d conversations", n)
	}
}

// WeChat posts every callback as text/xml. A body declared as anything
// else (JSON, a form, or no type at all) is not WeChat's: refused with
// 415, nothing stored, even when correctly signed.
func TestCallbackContentType(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctB}, nil)
	for i, tc := range []struct {
		contentType string // "-" sends no header
		status      int
	}{
		{"text/xml", 200},
		{"text/xml; charset=utf-8", 200},
		{"application/xml", 200},
		{"TEXT/XML", 200},
		{"application/json", 415},
		{"application/x-www-form-urlencoded", 415},
		{"text/plain", 415},
		{"text/xml-ish", 415},
		{"text/xml; charset", 415},
		{"-", 415},
	} {
		t.Run(tc.contentType, func(t *testing.T) {
			open := fmt.Sprintf("oType%d", i)
			q := signedQuery(acctB.Token, time.Now(), nonce())
			r := httptest.NewRequest(http.MethodPost, "/channels/wechat/"+acctB.Key+"?"+q.Encode(),
				strings.NewReader(textXML(open, time.Now(), int64(9000+i), "hello")))
			if tc.contentType != "-" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			w := httptest.NewRecorder()
			e.mux.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tc.status)
			}
			stored := e.owner(openID(acctB.Key, open)) != ""
			if stored != (tc.status == 200) {
				t.Fatalf("answered %d, stored %v", w.Code, stored)
			}
		})
	}
}

// Compatible mode carries the message twice; the encrypted copy is the one
// checked and used.
func TestCompatibleModeUsesCiphertext(t *testing.T) {
	t.Parallel()
	acct := acctA
	acct.Mode = wechat.ModeCompatible
	e := newEnv(t, []wechat.Account{acct}, nil)
	now := time.Now()
	q := signedQuery(acct.Token, now, nonce())
	body, q := encrypt(t, acct, q, textXML("oCompat", now, 5, "the real text"),
		"<FromUserName><![CDATA[oCompat]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[forged]]></Content><MsgId>5</MsgId>")
	mustSuccess(t, e.do("POST", acct.Key, q, body))
	msgs := messagesIn(e.timeline(e.owner(openID(acct.Key, "oCompat"))))
	if len(msgs) != 1 || payloadOf(t, msgs[0]).Text != "the real text" {
		t.Fatalf("messages %+v", msgs)
	}
	// Without encryption (the console switched back to plain) the plain
	// body is accepted.
	mustSuccess(t, e.do("POST", acct.Key, signedQuery(acct.Token, now, nonce()), textXML("oCompat", now, 6, "plain again")))
}

// Every message type and event WeChat documents, as documented.
func TestMessageTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctB}, nil)
	head := func(from, typ string) string {
		return fmt.Sprintf("<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[%s]]></MsgType>", from, typ)
	}
	tests := []struct {
		name  string
		xml   string
		conv  bool
		check func(p wechat.Payload) bool
	}{
		{"image", head("oImage", "image") + "<PicUrl><![CDATA[http://mmbiz.qpic.cn/this-is-a-url]]></PicUrl><MediaId><![CDATA[media_id]]></MediaId><MsgId>1234567890123456</MsgId></xml>", true,
			func(p wechat.Payload) bool {
				return len(p.Media) == 1 && p.Media[0].Type == "image" && p.Media[0].URL == "http://mmbiz.qpic.cn/this-is-a-url" && p.WeChat.MediaID == "media_id"
			}},
		{"voice with recognition", head("oVoice", "voice") + "<MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[amr]]></Format><Recognition><![CDATA[腾讯微信团队]]></Recognition><MsgId>1234567890123456</MsgId></xml>", true,
			func(p wechat.Payload) bool {
				return len(p.Media) == 1 && p.Media[0].Type == "voice" && p.Media[0].Text == "腾讯微信团队" && p.WeChat.Format == "amr"
			}},
		{"video", head("oVideo", "video") + "<MediaId><![CDATA[media_id]]></MediaId><ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId><MsgId>1234567890123456</MsgId></xml>", true,
			func(p wechat.Payload) bool {
				return len(p.Media) == 1 && p.Media[0].Type == "video" && p.WeChat.ThumbMediaID == "thumb_media_id"
			}},
		{"short video", head("oShort", "shortvideo") + "<MediaId><![CDATA[media_id]]></MediaId><ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId><MsgId>1234567890123456</MsgId></xml>", true,
			func(p wechat.Payload) bool { return len(p.Media) == 1 && p.Media[0].Type == "video" }},
		{"location", head("oLoc", "location") + "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[位置信息]]></Label><MsgId>1234567890123456</MsgId></xml>", true,
			func(p wechat.Payload) bool {
				return len(p.Media) == 1 && p.Media[0].URL == "geo:23.134521,113.358803" && p.Media[0].Text == "位置信息" && p.WeChat.Scale == 20
			}},
		{"link", head("oLink", "link") + "<Title><![CDATA[公众平台官网链接]]></Title><Description><![CDATA[公众平台官网链接]]></Description><Url><![CDATA[https://mp.weixin.qq.com]]></Url><MsgId>1234567890123456</MsgId></xml>", true,
			func(p wechat.Payload) bool {
				return len(p.Media) == 1 && p.Media[0].Type == "link" && p.Media[0].URL == "https://mp.weixin.qq.com" && p.Media[0].Name == "公众平台官网链接"
			}},
		{"subscribe", head("oSub", "event") + "<Event><![CDATA[subscribe]]></Event></xml>", false,
			func(p wechat.Payload) bool { return p.WeChat.Event == "subscribe" && p.WeChat.Scene == "" }},
		{"subscribe by QR code", head("oQR", "event") + "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>", false,
			func(p wechat.Payload) bool {
				return p.WeChat.Scene == "123123" && p.WeChat.EventKey == "qrscene_123123" && p.WeChat.Ticket == "TICKET"
			}},
		{"unsubscribe", head("oUnsub", "event") + "<Event><![CDATA[unsubscribe]]></Event></xml>", false,
			func(p wechat.Payload) bool { return p.WeChat.Event == "unsubscribe" }},
		{"scan", head("oScan", "event") + "<Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[SCENE_VALUE]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>", false,
			func(p wechat.Payload) bool { return p.WeChat.Event == "SCAN" && p.WeChat.Scene == "SCENE_VALUE" }},
		{"click", head("oClick", "event") + "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[EVENTKEY]]></EventKey></xml>", false,
			func(p wechat.Payload) bool { return p.WeChat.Event == "CLICK" && p.WeChat.EventKey == "EVENTKEY" }},
		{"view", head("oView", "event") + "<Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[www.qq.com]]></EventKey></xml>", false,
			func(p wechat.Payload) bool { return p.WeChat.Event == "VIEW" && p.WeChat.EventKey == "www.qq.com" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustSuccess(t, e.deliver(acctB.Key, tc.xml))
			mustSuccess(t, e.deliver(acctB.Key, tc.xml)) // WeChat's retry
			start := strings.Index(tc.xml, "<FromUserName><![CDATA[") + len("<FromUserName><![CDATA[")
			from := tc.xml[start : start+strings.Index(tc.xml[start:], "]")]
			cust := e.owner(openID(acctB.Key, from))
			msgs := messagesIn(e.timeline(cust))
			if len(msgs) != 1 {
				t.Fatalf("%d events, want 1", len(msgs))
			}
			p := payloadOf(t, msgs[0])
			if !tc.check(p) || p.WeChat.Account != acctB.Key {
				t.Fatalf("payload %s", msgs[0].Payload)
			}
			if (msgs[0].ConversationID != "") != tc.conv {
				t.Fatalf("conversation %q, want one: %v", msgs[0].ConversationID, tc.conv)
			}
		})
	}
	t.Run("location report is not recorded", func(t *testing.T) {
		mustSuccess(t, e.deliver(acctB.Key, head("oGPS", "event")+"<Event><![CDATA[LOCATION]]></Event><Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision></xml>"))
		if c := e.owner(openID(acctB.Key, "oGPS")); c != "" {
			t.Fatal("a LOCATION report created a customer")
		}
	})
}

// Matrix: one person (one UnionID) writes to two accounts; WeChat's user
// info gives the UnionID; they are one customer with one open
// conversation, and the reply goes out from the account written to last,
// to that account's OpenID, with that account's token.
func TestMatrixOneCustomerOneConversation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctA, acctB}, nil)
	e.fake.Follower(acctA.AppID, "oA_alice", "uAlice")
	e.fake.Follower(acctB.AppID, "oB_alice", "uAlice")
	now := time.Now()

	mustSuccess(t, e.deliver(acctA.Key, textXML("oA_alice", now, 1, "我的快递还没到")))
	c1 := e.owner(openID(acctA.Key, "oA_alice"))
	waitFor(t, "UnionID linked to the first customer", func() bool { return e.owner(unionID("uAlice")) == c1 })

	mustSuccess(t, e.deliver(acctB.Key, textXML("oB_alice", now.Add(time.Second), 2, "also asking here")))
	waitFor(t, "second OpenID merged into the first customer", func() bool { return e.owner(openID(acctB.Key, "oB_alice")) == c1 })

	if conv := e.activeConversations(); len(conv) != 1 || conv[0].CustomerID != c1 {
		t.Fatalf("active conversations %+v, want one of %s", conv, c1)
	}
	evs := e.timeline(c1)
	var merged bool
	for _, ev := range evs {
		if ev.Kind == sessions.KindMerged {
			var m sessions.Merge
			_ = json.Unmarshal(ev.Payload, &m)
			merged = m.Evidence == "wechat_unionid" && m.Into == c1
		}
	}
	if !merged || len(messagesIn(evs)) != 2 {
		t.Fatalf("timeline %+v", evs)
	}
	reaches, err := e.a.Windows(context.Background(), c1)
	if err != nil || len(reaches) != 2 || reaches[0].Account != acctB.Key || !reaches[0].Open || !reaches[1].Open {
		t.Fatalf("windows %+v %v", reaches, err)
	}

	receipt, err := e.a.Send(context.Background(), e.outbound(c1, "您好，我们正在查询"))
	if err != nil {
		t.Fatal(err)
	}
	_ = receipt
	sent := e.fake.Sent()
	if len(sent) != 1 || sent[0].AppID != acctB.AppID || sent[0].Body["touser"] != "oB_alice" || sent[0].Body["msgtype"] != "text" ||
		sent[0].Body["text"].(map[string]any)["content"] != "您好，我们正在查询" {
		t.Fatalf("sent %+v", sent)
	}
	// A message that arrives on A again moves replies back to A.
	mustSuccess(t, e.deliver(acctA.Key, textXML("oA_alice", now.Add(2*time.Second), 3, "back on A")))
	if _, err := e.a.Send(context.Background(), e.outbound(c1, "ok")); err != nil {
		t.Fatal(err)
	}
	if sent := e.fake.Sent(); len(sent) != 2 || sent[1].AppID != acctA.AppID || sent[1].Body["touser"] != "oA_alice" {
		t.Fatalf("sent %+v", sent)
	}
	if n := len(e.activeConversations()); n != 1 {
		t.Fatalf("%d active conversations", n)
	}
}

// A UnionID carried in the message itself is linked at once, before the
// answer.
func TestUnionIDInMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctA, acctB}, nil)
	c1 := e.known(acctA.Key, "oA_bob")
	e.known(acctB.Key, "oB_bob")
	now := time.Now()
	withUnion := func(open string, id int64) string {
		return strings.Replace(textXML(open, now, id, "hi"), "</xml>", "<UnionId><![CDATA[uBob]]></UnionId></xml>", 1)
	}
	mustSuccess(t, e.deliver(acctA.Key, withUnion("oA_bob", 10)))
	if e.owner(unionID("uBob")) != c1 {
		t.Fatal("UnionID not linked")
	}
	mustSuccess(t, e.deliver(acctB.Key, withUnion("oB_bob", 11)))
	if e.owner(openID(acctB.Key, "oB_bob")) != c1 {
		t.Fatal("not merged")
	}
	if n := len(e.activeConversations()); n != 1 {
		t.Fatalf("%d active conversations", n)
	}
}

// Outside the 48-hour window a reply is refused before any API call, with
// the next best channel; inside it, it goes out.
func TestWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctB}, nil)
	t0 := time.Now()
	e.clock.set(t0)
	cust := e.known(acctB.Key, "oCarol")
	mustSuccess(t, e.deliver(acctB.Key, textXML("oCarol", t0, 77, "hello?")))
	if _, _, err := e.store.LinkIdentity(context.Background(), cust,
		sessions.Identity{Kind: sessions.IdentityPhone, Value: "+8613812345678", Verified: true}, "system"); err != nil {
		t.Fatal(err)
	}

	e.clock.set(t0.Add(47 * time.Hour))
	r, err := e.a.Reachable(context.Background(), cust, acctB.Key)
	if err != nil || !r.Open || !r.LastInbound.Equal(time.Unix(t0.Unix(), 0)) || !r.Closes.Equal(r.LastInbound.Add(48*time.Hour)) {
		t.Fatalf("reach %+v %v", r, err)
	}
	if _, err := e.a.Send(context.Background(), e.outbound(cust, "still within")); err != nil {
		t.Fatal(err)
	}

	e.clock.set(t0.Add(49 * time.Hour))
	calls, fetches := e.fake.APICalls(), e.fake.TokensIssued(acctB.AppID)
	if err := e.a.CanSend(context.Background(), cust, e.outbound(cust, "").Identities); !errors.Is(err, wechat.ErrWindowClosed) {
		t.Fatalf("CanSend: %v", err)
	}
	_, err = e.a.Send(context.Background(), e.outbound(cust, "too late"))
	if !errors.Is(err, wechat.ErrWindowClosed) || !errors.Is(err, channels.ErrNoAdapter) {
		t.Fatalf("err %v, want ErrWindowClosed", err)
	}
	var ue *wechat.UnreachableError
	if !errors.As(err, &ue) || ue.Next != sessions.ChannelSMS || ue.Account != acctB.Key || !ue.LastInbound.Equal(time.Unix(t0.Unix(), 0)) ||
		!strings.Contains(err.Error(), "next best channel: sms") {
		t.Fatalf("err %#v", err)
	}
	if e.fake.APICalls() != calls || e.fake.TokensIssued(acctB.AppID) != fetches || len(e.fake.Sent()) != 1 {
		t.Fatal("the API was called for a reply outside the window")
	}
	if r, _ := e.a.Reachable(context.Background(), cust, acctB.Key); r.Open {
		t.Fatalf("reach %+v", r)
	}
	if strings.Contains(err.Error(), "oCarol") {
		t.Fatalf("error quotes the OpenID: %v", err)
	}
}

// Unfollowing closes the account and lists the OpenID on the
// do-not-contact list; following again (or scanning) reopens it, and
// following takes it off the list.
func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	sups := contact.NewMemorySuppressions()
	e := newEnv(t, []wechat.Account{acctB}, func(_ *wechat.Config, o *wechat.Options) { o.Suppressions = sups })
	cust := e.known(acctB.Key, "oDan")
	listed := func() []contact.Suppression {
		t.Helper()
		got, _, err := sups.List(context.Background(), "", 0)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	now := time.Now()
	ev := func(event string, at time.Time) string {
		return fmt.Sprintf("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oDan]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[%s]]></Event><EventKey><![CDATA[qrscene_spring]]></EventKey></xml>", at.Unix(), event)
	}
	mustSuccess(t, e.deliver(acctB.Key, ev("subscribe", now.Add(-time.Minute))))
	if r, _ := e.a.Reachable(context.Background(), cust, acctB.Key); !r.Open {
		t.Fatalf("after subscribe: %+v", r)
	}
	mustSuccess(t, e.deliver(acctB.Key, ev("unsubscribe", now)))
	if r, _ := e.a.Reachable(context.Background(), cust, acctB.Key); r.Open || !r.Unsubscribed {
		t.Fatalf("after unsubscribe: %+v", r)
	}
	if _, err := e.a.Send(context.Background(), e.outbound(cust, "hello?")); !errors.Is(err, wechat.ErrUnsubscribed) {
		t.Fatalf("err %v, want ErrUnsubscribed", err)
	}
	if got := listed(); len(got) != 1 || got[0].Kind != contact.KindWeChatOpenID || got[0].Value != acctB.Key+":oDan" ||
		got[0].Channel != sessions.ChannelWeChat || got[0].Purpose != "" || got[0].Source != wechat.SourceUnsubscribe {
		t.Fatalf("do-not-contact list after unsubscribe = %+v", got)
	}
	mustSuccess(t, e.deliver(acctB.Key, ev("subscribe", now.Add(time.Second))))
	if r, _ := e.a.Reachable(context.Background(), cust, acctB.Key); !r.Open || r.Unsubscribed {
		t.Fatalf("after following again: %+v", r)
	}
	if got := listed(); len(got) != 0 {
		t.Fatalf("still listed after following again: %+v", got)
	}
}

// WeChat's errcodes: 40001 refreshes the token once and retries once;
// 45015 is the closed window; 45047 too many messages; 43004 unfollowed.
func TestAPIErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctB}, nil)
	cust := e.known(acctB.Key, "oErin")
	mustSuccess(t, e.deliver(acctB.Key, textXML("oErin", time.Now(), 99, "hi")))
	send := func() error {
		_, err := e.a.Send(context.Background(), e.outbound(cust, "reply"))
		return err
	}
	if err := send(); err != nil || e.fake.TokensIssued(acctB.AppID) != 1 {
		t.Fatalf("first send: %v, %d tokens", err, e.fake.TokensIssued(acctB.AppID))
	}

	// Another holder of the AppSecret fetched a token: ours is refused.
	e.fake.Revoke(acctB.AppID)
	if err := send(); err != nil {
		t.Fatalf("after 40001: %v", err)
	}
	if n := e.fake.TokensIssued(acctB.AppID); n != 2 {
		t.Fatalf("%d tokens fetched, want 2 (one refresh)", n)
	}
	if n := len(e.fake.Sent()); n != 2 {
		t.Fatalf("%d delivered, want 2", n)
	}

	// Refused twice in a row: one refresh, one retry, then the error.
	e.fake.Fail("/cgi-bin/message/custom/send", 40001, 40001)
	err := send()
	var apiErr *wechat.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 40001 || e.fake.TokensIssued(acctB.AppID) != 3 {
		t.Fatalf("err %v, %d tokens", err, e.fake.TokensIssued(acctB.AppID))
	}

	for _, tc := range []struct {
		code int
		want error
	}{{45015, wechat.ErrWindowClosed}, {45047, wechat.ErrTooManyMessages}, {43004, wechat.ErrUnsubscribed}} {
		e.fake.Fail("/cgi-bin/message/custom/send", tc.code)
		if err := send(); !errors.Is(err, tc.want) {
			t.Fatalf("errcode %d: %v, want %v", tc.code, err, tc.want)
		}
	}
	// 45015 names the next channel like the local check does.
	e.fake.Fail("/cgi-bin/message/custom/send", 45015)
	var ue *wechat.UnreachableError
	if err := send(); !errors.As(err, &ue) || ue.Account != acctB.Key {
		t.Fatalf("45015: %#v", err)
	}
	if n := len(e.fake.Sent()); n != 2 {
		t.Fatalf("%d delivered, want still 2", n)
	}
}

func TestNoOpenIDIsNoAdapter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctB}, nil)
	_, err := e.a.Send(context.Background(), channels.Outbound{CustomerID: "cus_x", Message: sessions.Message{Text: "hi"},
		Identities: []sessions.Identity{{Kind: sessions.IdentityWeChatOpenID, Namespace: "not-configured", Value: "o1"}}})
	if !errors.Is(err, channels.ErrNoAdapter) || errors.Is(err, wechat.ErrWindowClosed) {
		t.Fatalf("err %v", err)
	}
}

func TestTyping(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctB}, nil)
	cust := e.known(acctB.Key, "oFay")
	mustSuccess(t, e.deliver(acctB.Key, textXML("oFay", time.Now(), 5, "hi")))
	ids := e.outbound(cust, "").Identities
	for _, on := range []bool{true, true, false, false} {
		if err := e.a.SetTyping(context.Background(), cust, ids, on); err != nil {
			t.Fatal(err)
		}
	}
	got := e.fake.Typed()
	if len(got) != 2 || got[0].Body["command"] != "Typing" || got[1].Body["command"] != "CancelTyping" ||
		got[0].Body["touser"] != "oFay" || got[0].AppID != acctB.AppID {
		t.Fatalf("typing commands %+v", got)
	}
}

func TestImageReply(t *testing.T) {
	t.Parallel()
	png := bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 100)
	e := newEnv(t, []wechat.Account{acctB}, func(_ *wechat.Config, o *wechat.Options) {
		o.Media = func(_ context.Context, m sessions.Media) (io.ReadCloser, error) {
			if m.URL != "https://files.example.com/receipt.png" {
				return nil, errors.New("unknown media")
			}
			return io.NopCloser(bytes.NewReader(png)), nil
		}
	})
	cust := e.known(acctB.Key, "oGus")
	mustSuccess(t, e.deliver(acctB.Key, textXML("oGus", time.Now(), 5, "send me the receipt")))
	o := e.outbound(cust, "here it is")
	o.Message.Media = []sessions.Media{{Type: "image", URL: "https://files.example.com/receipt.png"}}
	if _, err := e.a.Send(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	sent := e.fake.Sent()
	if len(sent) != 2 || sent[1].Body["msgtype"] != "image" ||
		sent[1].Body["image"].(map[string]any)["media_id"] != fmt.Sprintf("MEDIA_1_%d", len(png)) {
		t.Fatalf("sent %+v", sent)
	}
	o.Message.Media = []sessions.Media{{Type: "file", URL: "x"}}
	if _, err := e.a.Send(context.Background(), o); !errors.Is(err, wechat.ErrNoMedia) {
		t.Fatalf("file: %v", err)
	}
}

// The body of a refused or accepted callback never echoes the OpenID, and
// the error strings hide secrets from the token URL.
func TestTokenErrorHidesSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctB}, nil)
	cust := e.known(acctB.Key, "oHal")
	mustSuccess(t, e.deliver(acctB.Key, textXML("oHal", time.Now(), 5, "hi")))
	e.fake.AddApp(acctB.AppID, "rotated")
	_, err := e.a.Send(context.Background(), e.outbound(cust, "x"))
	if !errors.Is(err, wechat.ErrTokenUnavailable) || strings.Contains(err.Error(), acctB.AppSecret) {
		t.Fatalf("err %v", err)
	}
	var apiErr *wechat.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 40125 {
		t.Fatalf("err %v, want errcode 40125", err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	ok := wechat.Account{Key: "k", AppID: "wx1234567890abcdef", AppSecret: "s", Token: "tok", Mode: wechat.ModePlain}
	tests := []struct {
		name string
		edit func(*wechat.Config)
		want string
	}{
		{"valid", func(*wechat.Config) {}, ""},
		{"bad key", func(c *wechat.Config) { c.Accounts[0].Key = "a/b" }, "key"},
		{"bad app id", func(c *wechat.Config) { c.Accounts[0].AppID = "123" }, "app_id"},
		{"no secret", func(c *wechat.Config) { c.Accounts[0].AppSecret = "" }, "app_secret"},
		{"short token", func(c *wechat.Config) { c.Accounts[0].Token = "ab" }, "token"},
		{"safe without key", func(c *wechat.Config) { c.Accounts[0].Mode = wechat.ModeSafe }, "encoding_aes_key"},
		{"bad mode", func(c *wechat.Config) { c.Accounts[0].Mode = "secret" }, "mode"},
		{"bad base URL", func(c *wechat.Config) { c.Accounts[0].APIBaseURL = "ftp://x" }, "api_base_url"},
		{"duplicate key", func(c *wechat.Config) { c.Accounts = append(c.Accounts, c.Accounts[0]) }, "key"},
		{"store timeout too long", func(c *wechat.Config) { c.StoreTimeout = 6 * time.Second }, "store_timeout"},
		{"window too long", func(c *wechat.Config) { c.Window = 72 * time.Hour }, "window"},
		{"body too big", func(c *wechat.Config) { c.MaxBodyBytes = 1 << 20 }, "max_body_bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := wechat.Config{Accounts: []wechat.Account{ok}}
			tc.edit(&c)
			err := c.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("env", func(t *testing.T) {
		c := wechat.Config{Accounts: []wechat.Account{{Key: "k", AppID: "wx1234567890abcdef", AppSecretEnv: "WX_SECRET",
			TokenEnv: "WX_TOKEN", EncodingAESKeyEnv: "WX_AES", Mode: wechat.ModeSafe}}}
		env := map[string]string{"WX_SECRET": "s3", "WX_TOKEN": "tok123", "WX_AES": testAESKey(7)}
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		if err := c.ResolveEnv(lookup); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil || c.Accounts[0].AppSecret != "s3" {
			t.Fatalf("%v %+v", err, c.Accounts[0])
		}
		c.Accounts[0].AppSecretEnv = "WX_MISSING"
		c.Accounts[0].AppSecret = ""
		if err := c.ResolveEnv(lookup); err == nil || !strings.Contains(err.Error(), "WX_MISSING") {
			t.Fatalf("missing env: %v", err)
		}
	})
}

// A token close to expiry is replaced before it expires, by the first send
// that notices, without a failed call.
func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctB}, nil)
	t0 := time.Now()
	e.clock.set(t0)
	cust := e.known(acctB.Key, "oIvy")
	mustSuccess(t, e.deliver(acctB.Key, textXML("oIvy", t0, 5, "hi")))
	if _, err := e.a.Send(context.Background(), e.outbound(cust, "1")); err != nil {
		t.Fatal(err)
	}
	e.clock.set(t0.Add(time.Hour))
	if _, err := e.a.Send(context.Background(), e.outbound(cust, "2")); err != nil || e.fake.TokensIssued(acctB.AppID) != 1 {
		t.Fatalf("mid-life: %v, %d tokens", err, e.fake.TokensIssued(acctB.AppID))
	}
	e.clock.set(t0.Add(2*time.Hour - 4*time.Minute)) // within TokenRefreshBefore (5m) of expiry
	calls := e.fake.APICalls()
	if _, err := e.a.Send(context.Background(), e.outbound(cust, "3")); err != nil || e.fake.TokensIssued(acctB.AppID) != 2 {
		t.Fatalf("near expiry: %v, %d tokens", err, e.fake.TokensIssued(acctB.AppID))
	}
	if e.fake.APICalls() != calls+1 {
		t.Fatal("a call failed on the old token")
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []wechat.Account{acctB}, nil)
	cust := e.known(acctB.Key, "oJoe")
	mustSuccess(t, e.deliver(acctB.Key, textXML("oJoe", time.Now(), 5, "hi")))
	if err := e.a.Close(); err != nil {
		t.Fatal(err)
	}
	if w := e.deliver(acctB.Key, textXML("oJoe", time.Now(), 6, "again")); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %d", w.Code)
	}
	if _, err := e.a.Send(context.Background(), e.outbound(cust, "x")); !errors.Is(err, wechat.ErrClosed) {
		t.Fatalf("send after Close: %v", err)
	}
}
