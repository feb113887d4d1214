package gateway_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/internal/gateway"
	"github.com/omnigate/omnigate/internal/inbox"
)

// TestInboxServed checks the wiring: the page, its socket behind the
// rep's token, and the socket closed with the shutdown code on stop.
func TestInboxServed(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "bolt")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := gateway.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	base := g.BaseURL()

	for path, ctype := range map[string]string{"/inbox": "text/html", "/inbox/inbox.js": "text/javascript"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || len(body) == 0 {
			t.Errorf("GET %s = %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	// The API still answers everything else, with its JSON errors.
	if resp, err := http.Get(base + "/v1/nope"); err != nil || resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /v1/nope = %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	hdr := http.Header{"Origin": {base}}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/inbox/ws", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteJSON(map[string]string{"type": "auth", "token": "test-alice-token-0123456789"}); err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Type string `json:"type"`
		Rep  struct{ ID string }
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ws.ReadJSON(&ready); err != nil || ready.Type != "ready" || ready.Rep.ID != "alice" {
		t.Fatalf("ready = %+v, %v", ready, err)
	}

	cancel()
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != inbox.CloseShutdown {
		t.Errorf("socket ended with %v, want close %d", err, inbox.CloseShutdown)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}
