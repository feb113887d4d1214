package webhooks

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/sessions"
)

// FuzzParseEvent feeds arbitrary bodies to the /v1/events decoder: it must
// never panic, and what it accepts must be an identity a store accepts and
// a type, update and topic within their limits.
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`{"customer":{"phone":"+8613812345678"},"type":"order.shipped","data":{"order":"1001"}}`,
		`{"customer":{"phone":"138 1234 5678"},"type":"order.shipped","update":{"tier":"A","vip":true,"owner":"alice","tags":["x"]},"conversation":{"topic":"order-1001","open":true}}`,
		`{"customer":{"email":"Li.Lei@Example.COM"},"type":"ticket.created"}`,
		`{"customer":{"site_user":{"site":"shop","id":"u-42"}},"type":"cart.abandoned","data":{}}`,
		`{"customer":{"wechat_openid":{"account":"gh_1","openid":"oAbc123"}},"type":"coupon.used"}`,
		`{"customer":{"email":"a@b.c","phone":"+1"},"type":"x"}`,
		`{"customer":{},"type":""}`,
		`{"customer":{"email":"a@b.c"},"type":"x","data":"str"}`,
		`{"customer":{"email":"a@b.c"},"type":"x","conversation":{"topic":"a|b","open":true}}`,
		`{"customer":{"email":"a@b.c"},"type":"x"} {}`,
		`null`,
		`{"type":"order.shipped","timestamp":"2026-05-01T10:00:00Z","data":{"customer":{"email":"a@b.c"},"order":"1001"}}`,
		`{"type":"x","timestamp":"2026-05-01T10:00:00+08:00","data":{"customer":{"phone":"138 1234 5678"},"update":{"vip":true},"conversation":{"topic":"t","open":true}}}`,
		`{"type":"x","timestamp":"2026-05-01T10:00:00Z","customer":{"email":"a@b.c"},"data":{}}`,
		`{"type":"x","timestamp":"2026-05-01T10:00:00Z","data":[]}`,
		`{"type":"x","data":{"customer":{"email":"a@b.c"}}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, id, err := ParseEvent([]byte(body), "CN")
		if err != nil {
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("accepted identity %+v: %v", id, err)
		}
		if !typeRe.MatchString(req.Type) {
			t.Fatalf("accepted type %q", req.Type)
		}
		if len(req.Data) > 0 && (!json.Valid(req.Data) || req.Data[0] != '{') {
			t.Fatal("accepted data that is not a JSON object")
		}
		if c := req.Conversation; c != nil {
			if c.Topic == "" || sessions.ValidateTopic(c.Topic, "api") != nil {
				t.Fatalf("accepted topic %q", c.Topic)
			}
		}
		if u := req.Update; u != nil && u.Tier != nil && !u.Tier.Valid() {
			t.Fatalf("accepted tier %q", *u.Tier)
		}
	})
}

// TestIntegratorEventGoesOut: an event posted in is on the timeline and,
// through the outbox, at an endpoint subscribed to integrator events.
func TestIntegratorEventGoesOut(t *testing.T) {
	t.Parallel()
	in, out := signing.NewSecret(), signing.NewSecret()
	rcv := newReceiver(t, out, 0)
	cfg := fastConfig()
	cfg.Integrations = []Integration{{Name: "shop", Secret: in}}
	cfg.Endpoints = []EndpointConfig{{ID: "bi", URL: rcv.srv.URL, Secret: out, EventTypes: []string{"integrator"}}}
	store := sessions.NewMemoryStore()
	defer store.Close()
	ob := NewMemoryOutbox()
	s := startService(t, cfg, store, ob, Options{})
	body := `{"customer":{"email":"a@b.c"},"type":"order.paid","data":{"total":"99.00"},"conversation":{"topic":"order-7","open":true}}`
	req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sec, _ := signing.ParseSecret(in)
	sec.SetHeaders(req.Header, "wh_paid_7", time.Now(), []byte(body))
	w := httptest.NewRecorder()
	shell(t, s, store, nil).ServeHTTP(w, req)
	resp := decodeResp(t, w)
	waitFor(t, "the integrator event delivered", func() bool { ok, _, _ := rcv.snapshot(); return len(ok) == 1 })
	ok, _, _ := rcv.snapshot()
	b := ok[DeliveryID("bi", resp.EventID)]
	var p IntegratorPayload
	_ = json.Unmarshal(b.Data.Payload, &p)
	if b.Type != "integrator" || p.Type != "order.paid" || p.Integration != "shop" || b.Data.ConversationID != resp.ConversationID {
		t.Fatalf("delivered %+v / %+v", b, p)
	}
	// The intake marked the customer for recovery.
	if _, known, _ := ob.Cursor(context.Background(), resp.CustomerID); !known {
		t.Fatal("customer not known to the outbox")
	}
}
