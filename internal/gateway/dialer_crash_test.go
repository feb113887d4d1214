package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/dialer"
	"github.com/omnigate/omnigate/internal/testredis"
)

// Gateway processes running a campaign on the simulated trunk, killed
// with SIGKILL while calls are up: on one node restarted on the same
// data_dir, in a cluster taken over by the other node when the dead
// one's lease lapses. Each node's dial log (synced before each call is
// placed) must name no attempt twice, and the dialer's store must hold
// every customer's attempt concluded: the calls the kill cut as
// interrupted (never dialed again), none left behind.

const crashCustomers = 120

// crashConfig writes node's configuration into dir: the sim trunk's
// calls last (a kill finds some up), and campaign "crash" (progressive,
// one try per customer) is declared, not started. store and dialer are
// more YAML for those sections.
func crashConfig(t *testing.T, dir, store, dialerMore string) string {
	t.Helper()
	y := dialerConfig(t, dir, dialerMore+store)
	y = strings.Replace(y, "ring: 50ms, talk: 150ms", "ring: 200ms, talk: 700ms", 1)
	y = strings.Replace(y, "routing:\n", "routing:\n  node_lease: 3s\n", 1) // a dead node's reps freed soon
	csv := strings.Join(numbers(0, crashCustomers), "\n          ")
	y = strings.Replace(y, "\ndialer:\n", fmt.Sprintf(`
dialer:
  campaigns:
    - id: crash
      purpose: sales
      caller_id: "+8657112345678"
      skills: {sales: 1}
      attempts: 1
      audience:
        csv: |
          %s
`, csv), 1)
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// showLogs logs the processes' logs of a failed test.
func showLogs(t *testing.T, paths ...string) {
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range paths {
				b, err := os.ReadFile(p)
				t.Logf("%s (%v):\n%s", p, err, b)
			}
		}
	})
}

func TestDialerCrashMidCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs gateway processes")
	}
	t.Parallel()
	bin := buildGateway(t)
	dir := t.TempDir()
	cfgPath := crashConfig(t, dir, "", "")
	logPath := filepath.Join(dir, "dials.log")
	showLogs(t, filepath.Join(dir, "first.log"), filepath.Join(dir, "second.log"))

	first := startGateway(t, bin, cfgPath, filepath.Join(dir, "first.log"))
	availableReps(t, first.url)
	call(t, first.url, "POST", "/v1/campaigns/crash/start", carolToken, "", 200, nil)
	waitCampaign(t, first.url, "crash", "a third of it to be dialed", func(p progressView) bool { return p.Dialed >= crashCustomers/3 })
	first.kill(t)
	atKill := len(dialLog(t, logPath))

	second := startGateway(t, bin, cfgPath, filepath.Join(dir, "second.log"))
	availableReps(t, second.url)
	waitDone(t, second.url)
	dialed := dialLog(t, logPath) // fails on an attempt dialed twice
	second.kill(t)

	store, err := dialer.OpenBoltStore(filepath.Join(dir, "dialer.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	interrupted := checkConcluded(t, store, dialed)
	t.Logf("%d customers, %d dialed before the kill, %d in all, %d calls cut by it", crashCustomers, atKill, len(dialed), interrupted)
}

func TestDialerClusterTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs gateway processes")
	}
	t.Parallel()
	addr := testredis.Addr(t)
	prefix := fmt.Sprintf("dialtk%d", time.Now().UnixNano())
	store := fmt.Sprintf("store: {kind: valkey, valkey: {addrs: [%s], key_prefix: %s}}\n", addr, prefix)
	bin := buildGateway(t)
	var nodes [2]*gatewayProc
	var logs [2]string
	for i := range nodes {
		dir := t.TempDir()
		logs[i] = filepath.Join(dir, "dials.log")
		showLogs(t, filepath.Join(dir, "node.log"))
		nodes[i] = startGateway(t, bin, crashConfig(t, dir, store, "  lease: 2s\n"), filepath.Join(dir, "node.log"))
	}
	availableReps(t, nodes[0].url)
	call(t, nodes[0].url, "POST", "/v1/campaigns/crash/start", carolToken, "", 200, nil)
	waitCampaign(t, nodes[0].url, "crash", "a third of it to be dialed", func(p progressView) bool { return p.Dialed >= crashCustomers/3 })
	// One node runs the campaign, the other none of it.
	holder := 0
	if len(dialLog(t, logs[1])) > 0 {
		holder = 1
	}
	if len(dialLog(t, logs[1-holder])) > 0 {
		t.Fatal("both nodes dialed the campaign")
	}
	nodes[holder].kill(t)
	atKill := len(dialLog(t, logs[holder]))

	other := nodes[1-holder]
	waitDone(t, other.url)
	dialed := append(dialLog(t, logs[holder]), dialLog(t, logs[1-holder])...)
	seen := map[string]bool{}
	for _, id := range dialed {
		if seen[id] {
			t.Errorf("attempt %s was dialed by both nodes", id)
		}
		seen[id] = true
	}
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	vs, err := dialer.NewValkeyStore(client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	interrupted := checkConcluded(t, vs, dialed)
	t.Logf("%d customers, %d dialed by the node killed, %d by the one that took over, %d calls cut",
		crashCustomers, atKill, len(dialed)-atKill, interrupted)
}

// waitDone waits for campaign "crash" to finish, every customer
// concluded.
func waitDone(t *testing.T, base string) {
	t.Helper()
	p := waitCampaign(t, base, "crash", "the campaign to finish", func(p progressView) bool { return p.State == "done" })
	if p.Customers != crashCustomers || p.Remaining != 0 {
		t.Errorf("finished campaign: %+v", p)
	}
}

// checkConcluded reads campaign "crash" from the dialer's store: one
// attempt per customer, each concluded, each dialed one in dialed; it
// returns how many the kill cut (interrupted), failing if none.
func checkConcluded(t *testing.T, store dialer.Store, dialed []string) int {
	t.Helper()
	as, err := store.Attempts(context.Background(), "crash")
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]bool{}
	for _, id := range dialed {
		logged[id] = true
	}
	customers := map[string]bool{}
	interrupted := 0
	for _, a := range as {
		customers[a.CustomerID] = true
		switch {
		case a.State != dialer.AttemptDone:
			t.Errorf("attempt %s is %s, not concluded", a.ID, a.State)
		case a.Outcome == dialer.OutcomeInterrupted:
			interrupted++
		case !a.DialedAt.IsZero() && !logged[a.ID]:
			t.Errorf("attempt %s ended %s but the trunk never placed it", a.ID, a.Outcome)
		}
		delete(logged, a.ID)
	}
	if len(as) != crashCustomers || len(customers) != crashCustomers {
		t.Errorf("%d attempts of %d customers, want one each of %d", len(as), len(customers), crashCustomers)
	}
	if len(logged) != 0 {
		t.Errorf("the trunk dialed attempts the store does not have: %v", logged)
	}
	if interrupted == 0 {
		t.Error("no call was cut by the kill: the test did not crash mid-call")
	}
	return interrupted
}
