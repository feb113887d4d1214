package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/internal/testredis"
)

// TestTypingAcrossNodes: two gateways on one Valkey. A visitor typing on
// one node shows on a rep's inbox on the other, and the rep's typing
// reaches the visitor back, with the rep's name.
func TestTypingAcrossNodes(t *testing.T) {
	t.Parallel()
	addr := testredis.Addr(t)
	prefix := fmt.Sprintf("typing%d", time.Now().UnixNano())
	node := func() string {
		y := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 5s
store: {kind: valkey, valkey: {addrs: [%q], key_prefix: %s}}
auth:
  reps: [{id: alice, name: Alice, token: test-alice-token-0123456789}]
webchat:
  sites: [{id: demo}]
`, t.TempDir(), addr, prefix)
		cfg := parseConfig(t, y, nil)
		g, _ := runGateway(t, cfg)
		return g.BaseURL()
	}
	a, b := node(), node()
	dial := func(base, path string) *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+path, http.Header{"Origin": {base}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		return ws
	}
	// readUntil reads frames until one of type typ, and returns it.
	readUntil := func(ws *websocket.Conn, typ string) map[string]any {
		t.Helper()
		for {
			var f map[string]any
			if err := ws.ReadJSON(&f); err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			if f["type"] == typ {
				return f
			}
		}
	}

	visitor := dial(a, "/channels/webchat/ws?site=demo&visitor=typing-visitor-0001")
	if err := visitor.WriteJSON(map[string]any{"type": "hello", "after": 0}); err != nil {
		t.Fatal(err)
	}
	readUntil(visitor, "welcome")
	// The first message makes the visitor's customer; its ack names it.
	if err := visitor.WriteJSON(map[string]any{"type": "message", "client_id": "m-1", "text": "hello"}); err != nil {
		t.Fatal(err)
	}
	customer, _ := readUntil(visitor, "ack")["customer_id"].(string)
	if customer == "" {
		t.Fatal("no customer in ack")
	}

	rep := dial(b, "/inbox/ws")
	if err := rep.WriteJSON(map[string]string{"type": "auth", "token": "test-alice-token-0123456789"}); err != nil {
		t.Fatal(err)
	}
	readUntil(rep, "ready")
	if err := rep.WriteJSON(map[string]string{"type": "watch", "customer_id": customer}); err != nil {
		t.Fatal(err)
	}
	// The visitor repeats "on" while typing, as the widget does, until
	// the rep on the other node sees it.
	seen := make(chan map[string]any, 1)
	go func() {
		for {
			var f map[string]any
			if rep.ReadJSON(&f) != nil {
				return
			}
			if f["type"] == "typing" && f["customer_id"] == customer && f["from"] == "customer" {
				seen <- f
				return
			}
		}
	}()
	deadline := time.After(15 * time.Second)
wait:
	for {
		if err := visitor.WriteJSON(map[string]any{"type": "typing", "on": true}); err != nil {
			t.Fatal(err)
		}
		select {
		case f := <-seen:
			if f["on"] != true {
				t.Fatalf("rep saw %v", f)
			}
			break wait
		case <-deadline:
			t.Fatal("the rep on the other node never saw the visitor type")
		case <-time.After(200 * time.Millisecond):
		}
	}

	if err := rep.WriteJSON(map[string]any{"type": "typing", "customer_id": customer, "on": true}); err != nil {
		t.Fatal(err)
	}
	f := readUntil(visitor, "typing")
	if f["on"] != true || f["rep_name"] != "Alice" {
		t.Fatalf("visitor saw %v", f)
	}
	if _, leaked := f["rep_id"]; leaked {
		t.Fatalf("rep id reached the visitor: %v", f)
	}
}
