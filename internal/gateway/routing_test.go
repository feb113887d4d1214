package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/router"
)

const (
	aliceToken = "test-alice-token-0123456789"
	bobToken   = "test-bob-token-0123456789"
	crmKey     = "test-crm-key-0123456789abcdef" // an integrator's API key
)

// routedGatewayIn runs a single-node gateway on the data directory dir
// with three reps: alice and bob take chats, carol (a supervisor) has no
// chat skill. stop ends it (and is called at cleanup if not before).
func routedGatewayIn(t *testing.T, dir string) (base string, stop func()) {
	t.Helper()
	g, stop := runGateway(t, routedConfig(t, dir))
	return g.BaseURL(), stop
}

// routedConfig is routedGateway's configuration on the data directory dir.
func routedConfig(t *testing.T, dir string) config.Config {
	t.Helper()
	y := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 5s
auth:
  admin_keys: [{name: test, key: %s}]
  reps:
    - {id: alice, token: %s}
    - {id: bob, token: %s}
    - {id: carol, role: supervisor, token: test-carol-token-0123456789}
webchat:
  sites: [{id: demo}]
  availability_interval: 50ms
routing:
  queues:
    - {name: chat, channels: [webchat], skills: {chat: 1}}
  reps:
    - {id: alice, skills: {chat: 5}, languages: [en]}
    - {id: bob, skills: {chat: 5}, languages: [en]}
  presence_grace: 200ms
  owner_on_resolve: true
`, dir, adminKey, aliceToken, bobToken)
	cfg := parseConfig(t, y, nil)
	return cfg
}

// TestRoutingWiring follows visitors' chats through one gateway: a chat
// waits while nobody is available, goes to the first rep who becomes
// available, with the decision on the timeline; the owner comes first;
// an offline owner (or rep) is never assigned; resolving frees capacity
// and makes the resolver the owner; the inbox socket sets presence.
func TestRoutingWiring(t *testing.T) {
	t.Parallel()
	g, _ := runGateway(t, routedConfig(t, t.TempDir()))
	base := g.BaseURL()

	// Nobody available: the widget says so, and the chat waits.
	v1 := newVisitor(t, base)
	if v1.agents {
		t.Error("widget says agents are available before anyone is")
	}
	v1.say(t, "hello, where is my parcel?")
	waitRouted(t, g, v1.customer)
	convs := conversationsOf(t, base, v1.customer)
	if len(convs) != 1 || convs[0].Assignee != "" {
		t.Fatalf("assigned with every rep offline: %+v", convs)
	}

	// bob becomes available: the waiting chat is his, and why is recorded.
	setPresence(t, base, "bob", bobToken, "available")
	d := assignment(t, base, v1.customer, 1)
	if d.Kind != router.KindAssign || d.RepID != "bob" || d.Ring != router.RingExact || d.Why == "" ||
		d.Considered != 3 || d.Excluded[router.ReasonOffline] != 2 {
		t.Fatalf("decision = %+v", d)
	}
	if c, ok := candidateOf(d, "alice"); !ok || c.Excluded != router.ReasonOffline {
		t.Errorf("alice should be listed as offline: %+v", d.Candidates)
	}
	if convs = conversationsOf(t, base, v1.customer); convs[0].Assignee != "bob" {
		t.Fatalf("conversation = %+v", convs[0])
	}
	if r := reps(t, base); r["bob"].Presence != "available" || r["bob"].Used != 25 || r["alice"].Presence != "offline" {
		t.Fatalf("reps = %+v", r)
	}
	// The customer's next messages stay with bob (sticky): no new decision.
	v1.say(t, "it was due yesterday")
	waitRouted(t, g, v1.customer)
	if n := countAssignments(t, base, v1.customer); n != 1 {
		t.Fatalf("%d assignments after a second message, want 1", n)
	}
	waitFor(t, "the widget to see an agent", func() bool {
		v := newVisitor(t, base)
		return v.agents
	})

	// Owner first: alice owns the customer and gets the chat although bob
	// has been idle longer.
	setPresence(t, base, "alice", aliceToken, "available")
	v2 := returningVisitor(t, g, base)
	call(t, base, "PATCH", "/v1/customers/"+v2.customer, adminKey, `{"owner":"alice"}`, 200, nil)
	v2.say(t, "hi again")
	d = assignment(t, base, v2.customer, 1)
	if d.RepID != "alice" || d.Ring != router.RingOwner {
		t.Fatalf("owner's customer: %+v", d)
	}

	// An offline owner is skipped at once, and never assigned.
	setPresence(t, base, "alice", aliceToken, "offline")
	v3 := returningVisitor(t, g, base)
	call(t, base, "PATCH", "/v1/customers/"+v3.customer, adminKey, `{"owner":"alice"}`, 200, nil)
	v3.say(t, "anyone?")
	d = assignment(t, base, v3.customer, 1)
	if d.RepID != "bob" || d.Ring != router.RingExact || !strings.Contains(d.Why, "owner alice skipped: offline") {
		t.Fatalf("offline owner: %+v", d)
	}

	// Resolving frees bob's capacity; the resolver becomes the owner of a
	// customer who had none.
	before := reps(t, base)["bob"].Used
	call(t, base, "POST", "/v1/conversations/"+conversationsOf(t, base, v1.customer)[0].ID+"/resolve", bobToken, "", 200, nil)
	waitFor(t, "bob's capacity to be freed", func() bool { return reps(t, base)["bob"].Used == before-25 })
	waitFor(t, "bob to own the customer he served", func() bool {
		var c struct {
			Owner string `json:"owner"`
		}
		call(t, base, "GET", "/v1/customers/"+v1.customer, adminKey, "", 200, &c)
		return c.Owner == "bob"
	})

	// A person's transfer moves the load with the conversation.
	conv3 := conversationsOf(t, base, v3.customer)[0].ID
	call(t, base, "POST", "/v1/conversations/"+conv3+"/assign", adminKey, `{"assignee":"carol"}`, 200, nil)
	waitFor(t, "the transfer to move the load", func() bool {
		r := reps(t, base)
		return r["carol"].Used == 25 && r["bob"].Used == before-50
	})

	// The inbox socket sets presence: available on connect, away once the
	// last socket has been closed for the grace period.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/inbox/ws", http.Header{"Origin": {base}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteJSON(map[string]string{"type": "auth", "token": aliceToken}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice to become available", func() bool { return reps(t, base)["alice"].Presence == "available" })
	// One-sided: the server starts the grace period after it sees the
	// close, so a look that ends before closed+grace is inside it.
	closed := time.Now()
	ws.Close()
	if p := reps(t, base)["alice"].Presence; p != "available" && time.Since(closed) < 200*time.Millisecond {
		t.Fatalf("alice is %s within the grace period", p)
	}
	waitFor(t, "alice to be set away", func() bool { return reps(t, base)["alice"].Presence == "away" })
}

func candidateOf(d router.Decision, rep string) (router.Candidate, bool) {
	for _, c := range d.Candidates {
		if c.RepID == rep {
			return c, true
		}
	}
	return router.Candidate{}, false
}

func countAssignments(t *testing.T, base, customer string) int {
	t.Helper()
	n := 0
	for _, ev := range timeline(t, base, customer) {
		if ev.Kind == "assignment" && strings.Contains(string(ev.Payload), `"kind":"assign"`) {
			n++
		}
	}
	return n
}

// TestRoutingRestart: a single node that restarts rebuilds the reps' load
// from the open conversations (the memory state is gone), and routes the
// chats that were still waiting.
func TestRoutingRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g, stop := runGateway(t, routedConfig(t, dir))
	base := g.BaseURL()
	setPresence(t, base, "bob", bobToken, "available")
	v1 := newVisitor(t, base)
	v1.say(t, "first")
	if d := assignment(t, base, v1.customer, 1); d.RepID != "bob" {
		t.Fatalf("%+v", d)
	}
	setPresence(t, base, "bob", bobToken, "away")
	v2 := newVisitor(t, base)
	v2.say(t, "second, while nobody is available")
	waitRouted(t, g, v2.customer) // waiting in the router when it stops
	v1.ws.Close()
	v2.ws.Close()
	stop()

	base, _ = routedGatewayIn(t, dir)
	waitFor(t, "bob's load to be rebuilt", func() bool { return reps(t, base)["bob"].Used == 25 })
	setPresence(t, base, "alice", aliceToken, "available")
	if d := assignment(t, base, v2.customer, 1); d.RepID != "alice" {
		t.Fatalf("the chat waiting at the restart: %+v", d)
	}
	if n := countAssignments(t, base, v1.customer); n != 1 {
		t.Fatalf("bob's chat was assigned %d times", n)
	}
}

// TestMessageAfterResolve: a customer who writes again after their
// conversation was resolved gets a new conversation (intake never appends
// to a resolved one), routed to the rep who resolved the first, now their
// owner.
func TestMessageAfterResolve(t *testing.T) {
	t.Parallel()
	g, _ := runGateway(t, routedConfig(t, t.TempDir()))
	base := g.BaseURL()
	setPresence(t, base, "bob", bobToken, "available")
	setPresence(t, base, "alice", aliceToken, "available")
	v := newVisitor(t, base)
	v.say(t, "my parcel is late")
	first := assignment(t, base, v.customer, 1)
	conv := conversationsOf(t, base, v.customer)[0].ID
	call(t, base, "POST", "/v1/conversations/"+conv+"/resolve", repToken(first.RepID), "{}", 200, nil)
	waitFor(t, "the resolver's load to be freed", func() bool { return reps(t, base)[first.RepID].Used == 0 })

	v.say(t, "and it is still not here")
	second := assignment(t, base, v.customer, 2)
	if second.RepID != first.RepID || second.Ring != router.RingOwner {
		t.Fatalf("second assignment = %+v, want the owner %s", second, first.RepID)
	}
	convs := conversationsOf(t, base, v.customer)
	if len(convs) != 2 || convs[0].ID == conv || convs[0].Status != "open" || convs[1].Status != "resolved" {
		t.Fatalf("conversations = %+v", convs)
	}
}
