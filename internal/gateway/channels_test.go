package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/channels/sms"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/internal/gateway"
)

// TestChannelsWired drives the channels of issues #5 and #6 through a
// whole gateway: signed integrator events, Twilio SMS in and out, opt-out.
func TestChannelsWired(t *testing.T) {
	t.Parallel()
	const authToken = "twilio-test-auth-token"
	var mu sync.Mutex
	var sent []url.Values // what reached the fake Twilio
	twilio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		sent = append(sent, r.PostForm)
		n := len(sent)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sid":"SM%032d"}`, n)
	}))
	defer twilio.Close()
	sentCount := func() int { mu.Lock(); defer mu.Unlock(); return len(sent) }

	secret := signing.NewSecret()
	// Twilio signs the URL it calls, and status callbacks go to the public
	// URL, so the gateway's address is fixed before it starts.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const aliceToken = "test-alice-token-0123456789"
	y := fmt.Sprintf(`
listen: %s
data_dir: %s
shutdown_timeout: 5s
auth:
  admin_keys: [{name: test, key: %s}]
  reps: [{id: alice, token: %s}]
webhooks:
  integrations: [{name: crm, secret: %s}]
sms:
  opt_out_reply: "-"
  providers:
    - {name: twilio, kind: twilio, account_sid: AC0123, auth_token: %s, from: "+15005550006", base_url: %s,
       public_url: "http://%s/channels/sms/twilio"}
routing:
  queues:
    - {name: messaging, channels: [sms, api], skills: {chat: 1}}
  reps:
    - {id: alice, skills: {chat: 5}}
`, addr, t.TempDir(), adminKey, aliceToken, secret, authToken, twilio.URL, addr)
	cfg := parseConfig(t, y, nil)
	g, _ := runGateway(t, cfg)
	base := g.BaseURL()
	setPresence(t, base, "alice", aliceToken, "available")

	call := func(method, path string, body []byte, h http.Header) (int, http.Header, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		raw, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(raw, &out)
		return resp.StatusCode, resp.Header, out
	}
	asAdmin := http.Header{"Authorization": {"Bearer " + adminKey}, "Content-Type": {"application/json"}}
	conversations := func(channel string) []map[string]any {
		t.Helper()
		_, _, page := call("GET", "/v1/conversations", nil, asAdmin)
		var out []map[string]any
		for _, c := range page["data"].([]any) {
			if c := c.(map[string]any); c["channel"] == channel {
				out = append(out, c)
			}
		}
		return out
	}

	// An integrator event on a topic opens one conversation; its replay
	// changes nothing.
	sec, _ := signing.ParseSecret(secret)
	event := []byte(`{"customer":{"email":"wang@example.com"},"type":"order.shipped","data":{"order":"42"},"conversation":{"topic":"order-42","open":true}}`)
	h := http.Header{"Content-Type": {"application/json"}}
	sec.SetHeaders(h, "msg_order42", time.Now(), event)
	status, _, first := call("POST", "/v1/events", event, h)
	if status != 200 || first["conversation_id"] == "" {
		t.Fatalf("POST /v1/events = %d %v", status, first)
	}
	status, hdr, again := call("POST", "/v1/events", event, h)
	if status != 200 || hdr.Get("Omnigate-Duplicate") != "true" || again["event_id"] != first["event_id"] {
		t.Fatalf("replay = %d %v %v, want the first answer", status, hdr, again)
	}
	if n := len(conversations("api")); n != 1 {
		t.Errorf("%d api conversations, want 1", n)
	}

	// A Twilio-signed SMS reaches a timeline; a reply reaches Twilio.
	inbound := func(sid, text string) {
		t.Helper()
		form := url.Values{"MessageSid": {sid}, "AccountSid": {"AC0123"}, "From": {"+14155550100"}, "To": {"+15005550006"}, "Body": {text}}
		u := base + "/channels/sms/twilio"
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"},
			"X-Twilio-Signature": {sms.TwilioSignature(authToken, u, form)}}
		if status, _, body := call("POST", "/channels/sms/twilio", []byte(form.Encode()), h); status != 200 {
			t.Fatalf("inbound %q = %d %v", text, status, body)
		}
	}
	inbound("SM1", "Where is my order?")
	smsConvs := conversations("sms")
	if len(smsConvs) != 1 {
		t.Fatalf("sms conversations = %v", smsConvs)
	}
	convID := smsConvs[0]["id"].(string)
	// The router gives it to the one available rep, who replies.
	waitFor(t, "the SMS conversation to be assigned to alice", func() bool {
		_, _, c := call("GET", "/v1/conversations/"+convID, nil, asAdmin)
		return c["assignee"] == "alice"
	})
	asAlice := http.Header{"Authorization": {"Bearer " + aliceToken}, "Content-Type": {"application/json"}}
	status, _, body := call("POST", "/v1/conversations/"+convID+"/messages", []byte(`{"text":"On its way","client_id":"r1"}`), asAlice)
	if status != 201 || sentCount() != 1 {
		t.Fatalf("reply = %d %v, %d sent", status, body, sentCount())
	}
	mu.Lock()
	reply := sent[0]
	mu.Unlock()
	if to, text := reply.Get("To"), reply.Get("Body"); to != "+14155550100" || text != "On its way" {
		t.Errorf("Twilio got To=%q Body=%q", to, text)
	}
	// Twilio reports delivery to the callback it was given: the report
	// lands on the timeline.
	cb := reply.Get("StatusCallback")
	if !strings.HasPrefix(cb, "http://"+addr+"/channels/sms/twilio") {
		t.Fatalf("StatusCallback = %q", cb)
	}
	report := url.Values{"MessageSid": {fmt.Sprintf("SM%032d", 1)}, "MessageStatus": {"delivered"}, "AccountSid": {"AC0123"},
		"From": {"+15005550006"}, "To": {"+14155550100"}}
	req, _ := http.NewRequest("POST", cb, strings.NewReader(report.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", sms.TwilioSignature(authToken, cb, report))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status callback = %d", resp.StatusCode)
	}
	customerID := smsConvs[0]["customer_id"].(string)
	waitFor(t, "the delivery report on the timeline", func() bool {
		_, _, tl := call("GET", "/v1/customers/"+customerID+"/timeline", nil, asAdmin)
		for _, e := range tl["data"].([]any) {
			e := e.(map[string]any)
			if e["kind"] == "delivery_status" && strings.Contains(fmt.Sprint(e["payload"]), "delivered") {
				return true
			}
		}
		return false
	})

	// STOP, then a reply is refused with nothing sent or recorded.
	inbound("SM2", "STOP")
	status, _, body = call("POST", "/v1/conversations/"+convID+"/messages", []byte(`{"text":"Still there?","client_id":"r2"}`), asAdmin)
	if code := body["error"].(map[string]any)["code"]; status != 409 || code != "opted_out" {
		t.Fatalf("reply after STOP = %d %v, want 409 opted_out", status, body)
	}
	if sentCount() != 1 {
		t.Errorf("%d sent after STOP, want still 1", sentCount())
	}
	// The opt-out is on the contact policy's do-not-contact list.
	_, sups := gateway.ContactOf(g)
	listed, _, err := sups.List(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Kind != contact.KindPhone || listed[0].Value != "+14155550100" ||
		listed[0].Channel != "sms" || listed[0].Source != sms.SourceStop {
		t.Errorf("do-not-contact list after STOP = %+v", listed)
	}
	_, _, conv := call("GET", "/v1/customers/"+smsConvs[0]["customer_id"].(string)+"/timeline", nil, asAdmin)
	if tl := fmt.Sprint(conv); !strings.Contains(tl, "On its way") || strings.Contains(tl, "Still there?") {
		t.Errorf("timeline should hold the sent reply and not the refused one: %v", tl)
	}
}
