package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/internal/gateway"
	"github.com/omnigate/omnigate/sessions"
)

// limitsGateway runs a gateway with the http section given (YAML lines
// under "http:"), an integration for /v1/events and an SMS provider.
func limitsGateway(t *testing.T, httpSection string) (*gateway.Gateway, signing.Secret) {
	t.Helper()
	secret := signing.NewSecret()
	y := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 5s
http:
%s
auth:
  admin_keys: [{name: test, key: %s}]
  reps: [{id: alice, token: %s}]
webhooks:
  integrations: [{name: shop, secret: %s}]
  no_delivery: true
sms:
  opt_out_reply: "-"
  providers:
    - {name: twilio, kind: twilio, account_sid: AC0123, auth_token: test-twilio-token, from: "+15005550006",
       base_url: "http://127.0.0.1:9", public_url: "http://127.0.0.1/channels/sms/twilio"}
`, t.TempDir(), httpSection, adminKey, aliceToken, secret)
	cfg := parseConfig(t, y, nil)
	g, _ := runGateway(t, cfg)
	sec, err := signing.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return g, sec
}

// TestSlowBodyIsCut: a client that sends its body a byte at a time is cut
// off once the body deadline passes, on an API route and on a provider
// callback alike, and what it was sending is not stored. The margins are
// one-sided: the whole body would take minutes to send, the deadline is
// a fraction of a second, and the test only waits for the cut.
func TestSlowBodyIsCut(t *testing.T) {
	t.Parallel()
	g, sec := limitsGateway(t, "  body_timeout: 300ms")
	addr := g.Addr().String()

	event := `{"customer":{"email":"slow@example.com"},"type":"order.shipped","data":{"pad":"` + strings.Repeat("a", 4000) + `"}}`
	eventHeaders := http.Header{"Content-Type": {"application/json"}}
	sec.SetHeaders(eventHeaders, "msg_slow_1", time.Now(), []byte(event))
	sms := "From=%2B8613812345678&To=%2B15005550006&MessageSid=SM1&AccountSid=AC0123&Body=" + strings.Repeat("a", 4000)
	smsHeaders := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Twilio-Signature": {"unchecked"}}

	for _, tt := range []struct {
		name, path, body string
		header           http.Header
		want             string // in the answer, if one came before the close
	}{
		{"events", "/v1/events", event, eventHeaders, `"request_timeout"`},
		{"sms callback", "/channels/sms/twilio", sms, smsHeaders, `"request_timeout"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var head strings.Builder
			fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", tt.path, addr, len(tt.body))
			for k, vs := range tt.header {
				for _, v := range vs {
					fmt.Fprintf(&head, "%s: %s\r\n", k, v)
				}
			}
			head.WriteString("\r\n")
			if _, err := io.WriteString(c, head.String()); err != nil {
				t.Fatal(err)
			}
			// The server's answer, read until it closes the connection.
			answer := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(c)
				answer <- string(b)
			}()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			sent := 0
			var got string
		send:
			for {
				select {
				case got = <-answer:
					break send
				case <-tick.C:
					if sent == len(tt.body) {
						t.Fatalf("the whole body (%d bytes, one every 20ms) was sent and the server did not cut it off", sent)
					}
					if _, err := c.Write([]byte{tt.body[sent]}); err == nil {
						sent++
					}
				}
			}
			if sent == len(tt.body) {
				t.Fatalf("cut only after the whole body: %q", got)
			}
			if got != "" && (strings.HasPrefix(got, "HTTP/1.1 2") || !strings.Contains(got, tt.want)) {
				t.Fatalf("answer to a slow body: %q, want a refusal containing %s", got, tt.want)
			}
		})
	}
	// The server closed both connections, so both requests are over:
	// neither stored anything.
	store := gateway.StoreOf(g)
	for _, q := range []sessions.CustomerQuery{{Email: "slow@example.com"}, {Phone: "+8613812345678"}} {
		if found, err := store.FindCustomers(context.Background(), q); err != nil || len(found) != 0 {
			t.Errorf("a cut-off request stored %+v (%v)", found, err)
		}
	}
}

// TestSocketsOutliveBodyDeadline: the body deadline is for requests with
// a body; a WebSocket, hijacked from the server, is never cut by it.
func TestSocketsOutliveBodyDeadline(t *testing.T) {
	t.Parallel()
	g, _ := limitsGateway(t, "  body_timeout: 100ms")
	base := g.BaseURL()
	ws := inboxSocket(t, base)
	// Longer than the deadline; waiting longer only makes the check stronger.
	time.Sleep(500 * time.Millisecond)
	if err := ws.WriteJSON(map[string]string{"type": "ping"}); err != nil {
		t.Fatal(err)
	}
	var f struct{ Type string }
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.ReadJSON(&f); err != nil || f.Type != "pong" {
		t.Fatalf("after the body deadline: %+v %v", f, err)
	}
}

// inboxSocket opens a rep socket as alice and waits for ready.
func inboxSocket(t *testing.T, base string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/inbox/ws", http.Header{"Origin": {base}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if err := ws.WriteJSON(map[string]string{"type": "auth", "token": aliceToken}); err != nil {
		t.Fatal(err)
	}
	var f struct{ Type string }
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.ReadJSON(&f); err != nil || f.Type != "ready" {
		t.Fatalf("inbox socket: %+v %v", f, err)
	}
	return ws
}

// TestConnectionLimit: with max_connections 2 and two connections open
// (one a keep-alive HTTP connection, one a WebSocket), a third is closed
// without an answer; once the socket closes, new connections are served
// again; refusals are counted.
func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	g, _ := limitsGateway(t, "  max_connections: 2")
	addr, base := g.Addr().String(), g.BaseURL()

	// healthz asks on c and says whether an answer came.
	healthz := func(c net.Conn) (bool, error) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
			return false, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200, nil
	}
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if ok, err := healthz(first); !ok {
		t.Fatalf("first connection: %v", err)
	}
	ws := inboxSocket(t, base)

	// The kernel completes the handshake; the server resets the
	// connection, which the dial itself may already report.
	third, err := net.Dial("tcp", addr)
	switch {
	case errors.Is(err, syscall.ECONNRESET):
	case err != nil:
		t.Fatal(err)
	default:
		defer third.Close()
		if ok, err := healthz(third); ok || err == nil {
			t.Fatalf("third connection answered (ok %v, %v); want it closed unanswered", ok, err)
		}
	}

	ws.Close()
	// The server sees the socket close in its own time: retry until a slot
	// is free again, which must happen.
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			// A connection refused while the slot was still taken can be
			// reset during the dial itself: not served yet, try again.
			if !errors.Is(err, syscall.ECONNRESET) || time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		ok, _ := healthz(c)
		if ok {
			// The metrics show the refusal, asked on the connection that
			// got in.
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr)
			b, _ := io.ReadAll(c)
			c.Close()
			if !strings.Contains(string(b), "omnigate_http_connections_refused_total") ||
				strings.Contains(string(b), "omnigate_http_connections_refused_total 0") {
				t.Fatalf("metrics lack the refusal:\n%s", b)
			}
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("no connection was served after the socket closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, err := healthz(first); !ok {
		t.Fatalf("the first connection stopped being served: %v", err)
	}
}
