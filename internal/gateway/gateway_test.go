package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/internal/gateway"
)

const adminKey = "test-admin-key-0123456789"

func testConfig(t *testing.T, store string) config.Config {
	t.Helper()
	y := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 5s
store:
  kind: %s
auth:
  admin_keys: [{name: test, key: %s}]
  reps: [{id: alice, token: test-alice-token-0123456789}]
`, t.TempDir(), store, adminKey)
	c := parseConfig(t, y, nil)
	return c
}

func TestGatewayServesAndStops(t *testing.T) {
	t.Parallel()
	stores := []string{"bolt"}
	if os.Getenv("OMNIGATE_VALKEY_ADDR") != "" {
		stores = append(stores, "valkey")
	}
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, kind)
			if kind == "valkey" {
				cfg.Store.Valkey.Addrs = []string{os.Getenv("OMNIGATE_VALKEY_ADDR")}
				cfg.Store.Valkey.KeyPrefix = fmt.Sprintf("gwtest%d", time.Now().UnixNano())
			}
			run(t, cfg)
		})
	}
}

func run(t *testing.T, cfg config.Config) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := gateway.New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()

	base := g.BaseURL()
	for _, u := range g.URLs() {
		if !strings.HasPrefix(u, base+"/") {
			t.Errorf("URL %q does not start with %s", u, base)
		}
	}
	tests := []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/metrics", "", 200},
		{"/v1/conversations", adminKey, 200},
		{"/v1/customers?name=x", "test-alice-token-0123456789", 200},
		{"/v1/conversations", "", 401},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", base+tt.path, nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s = %d %s, want %d", tt.path, resp.StatusCode, body, tt.want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
	if cfg.Store.Kind == "bolt" {
		// The store was closed: another gateway can open the same file.
		g2, err := gateway.New(context.Background(), cfg, log)
		if err != nil {
			t.Fatalf("reopen after shutdown: %v", err)
		}
		c2, cancel2 := context.WithCancel(context.Background())
		cancel2()
		if err := g2.Run(c2); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "omnigate.db")); err != nil {
			t.Error(err)
		}
	}
}

func TestNewFailsCleanly(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "bolt")
	log := slog.New(slog.DiscardHandler)
	g, err := gateway.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	// A second gateway on the same data_dir is refused before it opens
	// anything there, naming the process that holds it: with the same
	// store file, and with its store elsewhere but the webhooks outbox
	// (and the SMS do-not-contact list) in data_dir.
	want := fmt.Sprintf("data_dir is in use by process %d", os.Getpid())
	storeElsewhere := cfg
	storeElsewhere.Store.Bolt.Path = filepath.Join(t.TempDir(), "omnigate.db")
	for name, c := range map[string]config.Config{"same store": cfg, "store elsewhere": storeElsewhere} {
		if _, err := gateway.New(context.Background(), c, log); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: second gateway: %v; want an error saying %q", name, err, want)
		}
	}
	// A taken port fails after the store opened, and closes it again.
	other := testConfig(t, "bolt")
	other.Listen = g.Addr().String()
	if _, err := gateway.New(context.Background(), other, log); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("taken port: %v", err)
	}
	if g3, err := gateway.New(context.Background(), func() config.Config { c := other; c.Listen = "127.0.0.1:0"; return c }(), log); err != nil {
		t.Errorf("store left locked after a failed start: %v", err)
	} else {
		stop(t, g3)
	}
	stop(t, g)
	// Stopping released data_dir.
	g, err = gateway.New(context.Background(), storeElsewhere, log)
	if err != nil {
		t.Fatalf("data_dir still locked after the gateway stopped: %v", err)
	}
	stop(t, g)
}

func stop(t *testing.T, g *gateway.Gateway) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
