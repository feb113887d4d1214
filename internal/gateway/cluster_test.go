package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/internal/testredis"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// TestClusterRouting is the cluster proof of issue #4: three gateway
// processes (the real binary) share one redis-server; 50 reps, made
// available through the API of different nodes, take 2,000 chats that
// arrive over about eight seconds; the test resolves each chat through the
// API a second or so after it is assigned, so capacity is the bottleneck
// (50 reps × 4 chats = 200 at a time against ~250 arrivals a second) and
// chats queue. A third of the way in, one gateway is killed with SIGKILL:
// its waiting chats and its reps' capacity must be taken over by the
// others.
//
// Checked from the timelines, not from any counter: every conversation
// has exactly one assignment (the router's decision as payload), and
// replaying assignments and resolutions of each rep in time order, no rep
// ever holds more than its capacity (100 units, a chat costs 25). At the
// end no capacity is left claimed in Valkey.
func TestClusterRouting(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway and runs three of them")
	}
	t.Parallel()
	const (
		nodes    = 3
		nReps    = 50
		nTasks   = 2000
		arrivals = 8 * time.Second
		hold     = time.Second // mean time a rep keeps a chat
		capacity = 100
		chatCost = 25
	)
	addr := testredis.Addr(t)
	prefix := fmt.Sprintf("ogcluster%d", time.Now().UnixNano())
	bin := buildGateway(t)
	dir := t.TempDir()

	var b strings.Builder
	fmt.Fprintf(&b, `
listen: 127.0.0.1:0
shutdown_timeout: 3s
log: {format: json, level: warn}
store:
  kind: valkey
  valkey: {addrs: [%s], key_prefix: %s}
auth:
  admin_keys: [{name: test, key: %s}]
  reps:
`, addr, prefix, adminKey)
	for i := range nReps {
		fmt.Fprintf(&b, "    - {id: rep%02d, token: cluster-test-token-rep%02d}\n", i, i)
	}
	fmt.Fprintf(&b, `
routing:
  capacity: %d
  costs: {webchat: %d}
  queues:
    - {name: chat, channels: [webchat], skills: {chat: 1}}
  reps:
`, capacity, chatCost)
	for i := range nReps {
		fmt.Fprintf(&b, "    - {id: rep%02d, skills: {chat: %d}}\n", i, 1+i%10)
	}
	b.WriteString(`
  sync_interval: 200ms
  node_lease: 2s
  reconcile_interval: 500ms
  reconcile_after: 1s
`)
	cfgPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	gws := make([]*gatewayProc, nodes)
	for i := range gws {
		gws[i] = startGateway(t, bin, cfgPath, filepath.Join(dir, fmt.Sprintf("node%d.log", i)))
	}
	var live atomic.Int32 // gateways 0..live-1 take API calls
	live.Store(nodes)
	anyNode := func() string { return gws[rand.IntN(int(live.Load()))].url }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
	state, err := router.NewValkeyState(client, prefix)
	if err != nil {
		t.Fatal(err)
	}

	// Reps become available through the API, each on some node; every
	// node must see all of them.
	for i := range nReps {
		setPresence(t, gws[i%nodes].url, fmt.Sprintf("rep%02d", i), adminKey, "available")
	}
	for _, g := range gws {
		waitFor(t, "every node to see 50 available reps", func() bool {
			n := 0
			for _, r := range reps(t, g.url) {
				if r.Presence == "available" {
					n++
				}
			}
			return n == nReps
		})
	}

	// The test's own eye on the feed: resolve each chat through the API
	// about a second after it is assigned.
	sub, err := store.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		assigned  = map[string]bool{} // conversation -> seen assigned
		resolving sync.WaitGroup
		apiErrs   atomic.Int32
	)
	allAssigned := make(chan struct{})
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	resolve := func(conv string) {
		defer resolving.Done()
		for attempt := 0; ; attempt++ {
			req, _ := http.NewRequest("POST", anyNode()+"/v1/conversations/"+conv+"/resolve", nil)
			req.Header.Set("Authorization", "Bearer "+adminKey)
			resp, err := httpc.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
			}
			if attempt == 5 { // a node killed mid-request: try another
				apiErrs.Add(1)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	go func() {
		for ev := range sub.Events() {
			if ev.Kind != sessions.KindAssignment {
				continue
			}
			var d router.Decision
			if json.Unmarshal(ev.Payload, &d) != nil || !d.Assigns() {
				continue
			}
			mu.Lock()
			first := !assigned[ev.ConversationID]
			assigned[ev.ConversationID] = true
			n := len(assigned)
			mu.Unlock()
			if first {
				resolving.Add(1)
				conv := ev.ConversationID
				time.AfterFunc(hold/2+rand.N(hold), func() { resolve(conv) })
			}
			if n == nTasks && first {
				close(allAssigned)
			}
		}
	}()

	// 2,000 chats, spread evenly over the arrival window, straight into
	// the shared store as the web chat adapter writes them.
	start := time.Now()
	customers := make([]string, nTasks)
	var producers sync.WaitGroup
	const workers = 8
	for w := range workers {
		producers.Go(func() {
			for i := w; i < nTasks; i += workers {
				if d := time.Until(start.Add(arrivals * time.Duration(i) / nTasks)); d > 0 {
					time.Sleep(d)
				}
				c, _, err := store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "load",
					Value: fmt.Sprintf("visitor-%05d", i)}, sessions.Customer{})
				if err != nil {
					t.Error(err)
					return
				}
				customers[i] = c.ID
				cv, _, err := store.OpenConversation(ctx, c.ID, "", sessions.ChannelWebchat)
				if err != nil {
					t.Error(err)
					return
				}
				if _, _, err := store.Append(ctx, sessions.Event{CustomerID: c.ID, ConversationID: cv.ID,
					Kind: sessions.KindMessageIn, Channel: sessions.ChannelWebchat, ExternalID: "m1",
					Author: "customer", Payload: json.RawMessage(`{"text":"where is my parcel?"}`)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// A third of the way in, the last gateway dies without warning.
	time.Sleep(arrivals / 3)
	live.Store(nodes - 1)
	gws[nodes-1].kill(t)
	killedAt := time.Since(start)
	producers.Wait()
	if t.Failed() {
		return
	}

	defer func() {
		if t.Failed() || testing.Verbose() {
			for i := range gws {
				b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d.log", i)))
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("node %d log (%d lines, last 20):\n%s", i, len(lines), strings.Join(lines[max(0, len(lines)-20):], "\n"))
			}
		}
	}()
	select {
	case <-allAssigned:
	case <-time.After(60 * time.Second):
		mu.Lock()
		n := len(assigned)
		mu.Unlock()
		t.Fatalf("%d of %d chats assigned after 60s; node logs in %s", n, nTasks, dir)
	}
	assignedIn := time.Since(start)
	resolving.Wait()
	if n := apiErrs.Load(); n > 0 {
		t.Errorf("%d resolve calls failed", n)
	}
	// Every claim comes back: the live nodes release what they hold, and
	// take over and free what the dead one held.
	waitLoads := time.Now().Add(15 * time.Second)
	for {
		loads, err := state.Loads(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(loads) == 0 {
			break
		}
		if time.Now().After(waitLoads) {
			t.Fatalf("capacity still claimed after every chat was resolved: %v", loads)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The proof, from the timelines.
	type change struct {
		at    time.Time
		rep   string
		delta int
		conv  string
	}
	var changes []change
	perRep := map[string]int{}
	var waits, early []time.Duration // early: the first 100 chats, before capacity binds
	for i, cust := range customers {
		tl, err := store.Timeline(ctx, cust, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var rep string
		var asked time.Time
		n := 0
		for _, ev := range tl {
			switch ev.Kind {
			case sessions.KindMessageIn:
				if asked.IsZero() {
					asked = ev.Time
				}
			case sessions.KindAssignment:
				var d router.Decision
				if err := json.Unmarshal(ev.Payload, &d); err != nil || !d.Assigns() {
					t.Errorf("customer %d: assignment event that is not a router assignment: %s", i, ev.Payload)
					continue
				}
				if d.Why == "" || d.RepID == "" || d.Considered != nReps {
					t.Errorf("customer %d: decision without its why: %s", i, ev.Payload)
				}
				n++
				rep = d.RepID
				perRep[rep]++
				waits = append(waits, ev.Time.Sub(asked))
				if i < 100 {
					early = append(early, ev.Time.Sub(asked))
				}
				changes = append(changes, change{ev.Time, rep, chatCost, ev.ConversationID})
			case sessions.KindStatusChange:
				var p sessions.ConversationChange
				if json.Unmarshal(ev.Payload, &p) == nil && p.Status == sessions.StatusOpen && asked.IsZero() {
					asked = ev.Time // opened with the first message, which may come after the assignment
				}
				if json.Unmarshal(ev.Payload, &p) == nil && p.Status == sessions.StatusResolved {
					if rep == "" {
						t.Errorf("customer %d: resolved before it was assigned", i)
						continue
					}
					changes = append(changes, change{ev.Time, rep, -chatCost, ev.ConversationID})
				}
			}
		}
		if n != 1 {
			t.Errorf("customer %d (%s): %d assignment events, want exactly 1", i, cust, n)
		}
	}
	slices.SortStableFunc(changes, func(a, b change) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // a release and a claim at the same instant: the release first
	})
	load := map[string]int{}
	peak := map[string]int{}
	for _, c := range changes {
		load[c.rep] += c.delta
		if load[c.rep] > capacity {
			t.Errorf("%s holds %d units at %s (conversation %s), capacity %d", c.rep, load[c.rep], c.at.Format(time.RFC3339Nano), c.conv, capacity)
		}
		peak[c.rep] = max(peak[c.rep], load[c.rep])
	}
	full := 0
	for _, p := range peak {
		if p == capacity {
			full++
		}
	}
	slices.Sort(waits)
	slices.Sort(early)
	counts := slices.Collect(func(yield func(int) bool) {
		for _, n := range perRep {
			if !yield(n) {
				return
			}
		}
	})
	slices.Sort(counts)
	t.Logf("%d chats over %s, node %d killed at %s; all assigned after %s; %d reps used (%d to %d chats each), %d reached full capacity; wait p50 %s p99 %s max %s; first 100 chats (free reps): p50 %s max %s",
		nTasks, arrivals, nodes-1, killedAt.Round(time.Millisecond), assignedIn.Round(time.Millisecond), len(perRep), counts[0], counts[len(counts)-1], full,
		waits[len(waits)/2].Round(time.Millisecond), waits[len(waits)*99/100].Round(time.Millisecond), waits[len(waits)-1].Round(time.Millisecond),
		early[len(early)/2].Round(time.Microsecond), early[len(early)-1].Round(time.Microsecond))
	if len(perRep) != nReps {
		t.Errorf("only %d of %d reps got work", len(perRep), nReps)
	}
	if full == 0 {
		t.Error("no rep ever reached capacity: the test did not load the cluster")
	}
}
