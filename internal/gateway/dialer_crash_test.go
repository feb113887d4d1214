package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/dialer"
)

// TestDialerCrashMidCampaign runs a campaign in a real gateway process on
// the simulated trunk, kills it with SIGKILL while calls are up, starts
// it again on the same data_dir and lets the campaign finish. The
// trunk's dial log (synced before each call is placed) must name no
// attempt twice, and the dialer's store must hold every customer's
// attempt concluded: the calls the kill cut as interrupted (never dialed
// again), none left behind.
func TestDialerCrashMidCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs gateway processes")
	}
	t.Parallel()
	const customers = 120
	bin := buildGateway(t)
	dir := t.TempDir()
	csv := strings.Join(numbers(0, customers), "\n          ")
	campaign := fmt.Sprintf(`  campaigns:
    - id: crash
      purpose: sales
      caller_id: "+8657112345678"
      skills: {sales: 1}
      attempts: 1
      audience:
        csv: |
          %s
`, csv)
	y := dialerConfig(t, dir, "")
	// Calls that last: a kill finds some up.
	y = strings.Replace(y, "ring: 50ms, talk: 150ms", "ring: 200ms, talk: 700ms", 1)
	cfgPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(y+campaign), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "dials.log")
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"first.log", "second.log"} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				t.Logf("%s (%v):\n%s", f, err, b)
				_ = os.WriteFile("/tmp/dialcrash-"+f, b, 0o600)
			}
		}
	})

	first := startGateway(t, bin, cfgPath, filepath.Join(dir, "first.log"))
	availableReps(t, first.url)
	call(t, first.url, "POST", "/v1/campaigns/crash/start", carolToken, "", 200, nil)
	waitFor(t, "a third of the campaign to be dialed", func() bool { return len(dialLog(t, logPath)) >= customers/3 })
	first.kill(t)
	atKill := len(dialLog(t, logPath))

	second := startGateway(t, bin, cfgPath, filepath.Join(dir, "second.log"))
	availableReps(t, second.url)
	p := waitCampaign(t, second.url, "crash", "the campaign to finish", func(p progressView) bool { return p.State == "done" })
	if p.Customers != customers || p.Remaining != 0 {
		t.Errorf("progress after the restart: %+v", p)
	}
	dialed := dialLog(t, logPath) // fails on an attempt dialed twice
	if len(dialed) <= atKill {
		t.Errorf("nothing was dialed after the restart (%d at the kill, %d in all)", atKill, len(dialed))
	}
	second.kill(t)

	// The store, read directly: one attempt per customer, each
	// concluded; each dialed one in the log; the cut calls interrupted.
	store, err := dialer.OpenBoltStore(filepath.Join(dir, "dialer.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	as, err := store.Attempts(context.Background(), "crash")
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]bool{}
	for _, id := range dialed {
		logged[id] = true
	}
	customersSeen := map[string]bool{}
	interrupted := 0
	for _, a := range as {
		customersSeen[a.CustomerID] = true
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
	if len(as) != customers || len(customersSeen) != customers {
		t.Errorf("%d attempts of %d customers, want one each of %d", len(as), len(customersSeen), customers)
	}
	if len(logged) != 0 {
		t.Errorf("the trunk dialed attempts the store does not have: %v", logged)
	}
	if interrupted == 0 {
		t.Error("no call was cut by the kill: the test did not crash mid-call")
	}
	t.Logf("%d customers, %d dialed before the kill, %d in all, %d calls cut by it", customers, atKill, len(dialed), interrupted)
}
