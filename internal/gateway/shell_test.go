package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/channels/signing"
)

// TestEventsAndWebhooksInAPIMetrics: /v1/events and the webhook admin API are served by the
// API's shell like every /v1 route: refusals in the one error catalogue,
// the body capped, and every request, refused ones too, counted in
// omnigate_http_requests_total.
func TestEventsAndWebhooksInAPIMetrics(t *testing.T) {
	t.Parallel()
	const aliceToken = "test-alice-token-0123456789"
	secret := signing.NewSecret()
	y := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 5s
api:
  max_body_bytes: 2048
auth:
  admin_keys: [{name: test, key: %s}]
  reps: [{id: alice, token: %s}]
webhooks:
  integrations: [{name: shop, secret: %s}]
  max_body_bytes: 1024
  no_delivery: true
`, t.TempDir(), adminKey, aliceToken, secret)
	cfg := parseConfig(t, y, nil)
	g, _ := runGateway(t, cfg)
	base := g.BaseURL()

	sec, err := signing.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	event := `{"customer":{"email":"wang@example.com"},"type":"order.shipped"}`
	signed := func(h http.Header, body string) {
		h.Set("Content-Type", "application/json")
		sec.SetHeaders(h, "msg_shell_1", time.Now(), []byte(body))
	}
	tests := []struct {
		name, method, path, token, body string
		sign                            func(http.Header, string)
		status                          int
		want                            string
	}{
		{"signed event", "POST", "/v1/events", "", event, signed, 200, `"event_id"`},
		{"unsigned event", "POST", "/v1/events", "", event, nil, 401, `{"error":{"code":"unauthorized",`},
		{"event signed for another body", "POST", "/v1/events", "", event, func(h http.Header, _ string) { signed(h, "{}") }, 401,
			`{"error":{"code":"unauthorized","message":"webhook-signature does not match the body with any configured secret"}}`},
		{"event over the cap", "POST", "/v1/events", "", `{"x":"` + strings.Repeat("a", 2000) + `"}`, signed, 413,
			`{"error":{"code":"too_large","message":"request body is larger than 1024 bytes"}}`},
		{"endpoints as admin", "GET", "/v1/webhooks/endpoints", adminKey, "", nil, 200, `{"data":[],"next_cursor":""}`},
		{"endpoints as rep", "GET", "/v1/webhooks/endpoints", aliceToken, "", nil, 403,
			`{"error":{"code":"forbidden","message":"role rep may not GET /v1/webhooks/endpoints"}}`},
		{"endpoint over the cap", "POST", "/v1/webhooks/endpoints", adminKey, `{"description":"` + strings.Repeat("a", 3000) + `"}`, nil, 413,
			`{"error":{"code":"too_large","message":"request body is larger than 2048 bytes"}}`},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
			req.Header.Set("Content-Type", "application/json")
		}
		if tt.sign != nil {
			tt.sign(req.Header, tt.body)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
			t.Errorf("%s: %s %s = %d %s, want %d with %s", tt.name, tt.method, tt.path, resp.StatusCode, body, tt.status, tt.want)
		}
	}

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`omnigate_http_requests_total{code="2xx",route="POST /v1/events"} 1`,
		`omnigate_http_requests_total{code="4xx",route="POST /v1/events"} 3`,
		`omnigate_http_requests_total{code="2xx",route="GET /v1/webhooks/endpoints"} 1`,
		`omnigate_http_requests_total{code="4xx",route="GET /v1/webhooks/endpoints"} 1`,
		`omnigate_http_requests_total{code="4xx",route="POST /v1/webhooks/endpoints"} 1`,
		`omnigate_webhooks_events_in_total{result="appended"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
