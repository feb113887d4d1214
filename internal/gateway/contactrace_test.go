package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/internal/testredis"
	"github.com/omnigate/omnigate/sessions"
)

// TestContactRaceAcrossNodes: two gateway processes (the real binary) on
// one redis-server each get a sales message for the same customer at the
// same moment, under a cap of one sales contact a week: in every one of
// 1,000 trials exactly one is sent and the other refused 409
// contact_refused, frequency_cap, and the shared ledger holds exactly one
// outbound touch.
func TestContactRaceAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway and runs two of them")
	}
	t.Parallel()
	const trials = 1000
	addr := testredis.Addr(t)
	prefix := fmt.Sprintf("ograce%d", time.Now().UnixNano())
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
listen: 127.0.0.1:0
shutdown_timeout: 3s
log: {format: json, level: warn}
store:
  kind: valkey
  valkey: {addrs: [%s], key_prefix: %s}
auth:
  admin_keys: [{name: test, key: %s}]
  integrator_keys: [{name: crm, key: %s}]
webchat:
  sites: [{id: demo}]
contact_policy:
  purposes:
    sales:
      quiet_hours: {allowed: "00:00-24:00"}
      open_work: {action: ignore}
      caps: [{window: 7d, max: 1}]
`, addr, prefix, adminKey, crmKey)
	cfgPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := buildGateway(t)
	nodes := []*gatewayProc{
		startGateway(t, bin, cfgPath, filepath.Join(dir, "a.log")),
		startGateway(t, bin, cfgPath, filepath.Join(dir, "b.log")),
	}

	ctx := context.Background()
	store, err := sessions.OpenValkey(ctx, sessions.ValkeyOptions{Addrs: []string{addr}, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ledger, err := contact.NewValkeyLedger(client, prefix, contact.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	post := func(base, customer, clientID string) (int, string) {
		body := `{"text":"spring sale","client_id":"` + clientID + `","purpose":"sales"}`
		req, _ := http.NewRequest("POST", base+"/v1/customers/"+customer+"/messages", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+crmKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := httpc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for i := range trials {
		// A customer who wrote in the web chat, so the message has a
		// conversation and a channel.
		c, _, err := store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "demo",
			Value: fmt.Sprintf("race-visitor-%06d-abcdefgh", i)}, sessions.Customer{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := store.Intake(ctx, "", sessions.Event{CustomerID: c.ID, Kind: sessions.KindMessageIn,
			Channel: sessions.ChannelWebchat, ExternalID: "m1", Author: "customer", Payload: json.RawMessage(`{"text":"hi"}`)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		codes := make([]int, len(nodes))
		bodies := make([]string, len(nodes))
		for n, node := range nodes {
			wg.Go(func() { codes[n], bodies[n] = post(node.url, c.ID, fmt.Sprintf("sale-%d", n)) })
		}
		wg.Wait()
		sent, refused := 0, 0
		for n := range nodes {
			switch {
			case codes[n] == 201:
				sent++
			case codes[n] == 409 && strings.Contains(bodies[n], "contact_refused") && strings.Contains(bodies[n], "frequency_cap"):
				refused++
			default:
				t.Fatalf("trial %d, node %d: %d %s", i, n, codes[n], bodies[n])
			}
		}
		if sent != 1 || refused != 1 {
			t.Fatalf("trial %d: %d sent, %d refused, want one of each", i, sent, refused)
		}
		touches, err := ledger.Touches(ctx, c.ID, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		out := 0
		for _, x := range touches {
			if x.Direction == contact.Outbound {
				out++
			}
		}
		if out != 1 {
			t.Fatalf("trial %d: %d outbound touches on the ledger, want 1: %+v", i, out, touches)
		}
	}
}
