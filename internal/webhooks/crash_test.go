package webhooks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/sessions"
)

// crashChildEnv, when set, makes TestKill9 the child: it holds the data
// directory, the receiver's URL and the endpoint secret, tab-separated.
const crashChildEnv = "OMNIGATE_WEBHOOKS_CRASH_CHILD"

func crashConfig(url, secret string) Config {
	cfg := fastConfig()
	cfg.Endpoints = []EndpointConfig{{ID: "crm", URL: url, Secret: secret}}
	return cfg
}

// TestKill9 kills a gateway-like process (bbolt store, bbolt outbox,
// dispatcher and sender running) with SIGKILL while its receiver is down
// and appends are streaming, so deliveries are pending and some appended
// events are not yet in the outbox. Reopened, with the receiver back, every
// event whose append the child acknowledged is delivered, under its own
// webhook-id, acknowledged once.
//
// The child's customers are the ones the design covers (see the package
// doc): customers the outbox already knew before the kill, and customers
// with a conversation, including ones created during the run.
func TestKill9(t *testing.T) {
	if env := os.Getenv(crashChildEnv); env != "" {
		crashChild(t, env)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	secret := signing.NewSecret()
	rcv := newReceiver(t, secret, 1<<30) // down while the child runs
	dir := t.TempDir()

	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir+"\t"+rcv.srv.URL+"\t"+secret)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		id, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			continue
		}
		acked = append(acked, id)
		if len(acked) == 400 && !killed {
			if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before the kill after %d acks", len(acked))
	}
	_, seen, _ := rcv.snapshot()
	t.Logf("child killed after %d acknowledged appends; %d deliveries had been attempted", len(acked), len(seen))

	store, err := sessions.OpenBolt(filepath.Join(dir, "omnigate.db"), sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ob, err := OpenBoltOutbox(filepath.Join(dir, "webhooks.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	pending, _ := ob.Due(context.Background(), time.Now().Add(time.Hour), 10000)
	t.Logf("after the kill the outbox holds %d pending deliveries", len(pending))

	rcv.mu.Lock()
	rcv.failFor = 0
	rcv.seen = map[string]int{}
	rcv.mu.Unlock()
	startService(t, crashConfig(rcv.srv.URL, secret), store, ob, Options{})
	want := map[string]string{}
	for _, id := range acked {
		want[DeliveryID("crm", id)] = id
	}
	waitFor(t, "every acknowledged event delivered", func() bool {
		ok, _, _ := rcv.snapshot()
		for d := range want {
			if _, got := ok[d]; !got {
				return false
			}
		}
		return true
	})
	ok, _, bad := rcv.snapshot()
	if len(bad) > 0 {
		t.Fatalf("receiver problems: %v", bad[:min(len(bad), 5)])
	}
	for d, evID := range want {
		if ok[d].Data.ID != evID {
			t.Fatalf("delivery %s carries event %s, want %s", d, ok[d].Data.ID, evID)
		}
	}
}

// crashChild runs the service and appends until killed (or 30 seconds, so
// a lost parent leaves nothing running).
func crashChild(t *testing.T, env string) {
	parts := strings.Split(env, "\t")
	dir, url, secret := parts[0], parts[1], parts[2]
	store, err := sessions.OpenBolt(filepath.Join(dir, "omnigate.db"), sessions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := OpenBoltOutbox(filepath.Join(dir, "webhooks.db"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(crashConfig(url, secret), Options{Store: store, Outbox: ob})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var customers []sessions.Customer
	var convs []string
	for i := range 4 {
		c, _, err := store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityEmail, Value: fmt.Sprintf("c%d@x.y", i)}, sessions.Customer{})
		if err != nil {
			t.Fatal(err)
		}
		conv := ""
		if i%2 == 0 { // half in a conversation, half known to the outbox first
			cv, _, err := store.OpenConversation(ctx, c.ID, "", "sms")
			if err != nil {
				t.Fatal(err)
			}
			conv = cv.ID
		} else {
			if _, _, err := store.Append(ctx, note(c.ID, "", "warm-up")); err != nil {
				t.Fatal(err)
			}
			for {
				if _, known, _ := ob.Cursor(ctx, c.ID); known {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		customers = append(customers, c)
		convs = append(convs, conv)
	}
	deadline := time.Now().Add(30 * time.Second)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				cust, conv := customers[w], convs[w]
				if w == 0 && i%10 == 0 {
					// A brand-new customer, reaching us with a conversation.
					c, _, err := store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityEmail, Value: fmt.Sprintf("new%d@x.y", i)}, sessions.Customer{})
					if err != nil {
						t.Error(err)
						return
					}
					cv, _, err := store.OpenConversation(ctx, c.ID, "", "sms")
					if err != nil {
						t.Error(err)
						return
					}
					cust, conv = c, cv.ID
				}
				ev, _, err := store.Append(ctx, note(cust.ID, conv, fmt.Sprintf("w%d-%d", w, i)))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				_, err = fmt.Fprintf(os.Stdout, "ack %s\n", ev.ID)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func note(customerID, conv, text string) sessions.Event {
	b, _ := json.Marshal(sessions.Message{Text: text})
	return sessions.Event{CustomerID: customerID, ConversationID: conv, Kind: sessions.KindNote, Channel: "api", Payload: b}
}
