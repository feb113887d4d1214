package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/internal/gateway"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// The rig the gateway tests share: an in-process gateway, API calls, a
// visitor's socket, waits.

// runGateway starts an in-process gateway on cfg and returns it with a
// stop that ends Run and checks it returned cleanly; stop also runs at
// cleanup, and a second call does nothing.
func runGateway(t *testing.T, cfg config.Config) (*gateway.Gateway, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g, err := gateway.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return g, stop
}

// call makes an API request and decodes a JSON answer into out (if not
// nil), failing unless the status is want.
func call(t *testing.T, base, method, path, token, body string, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

func setPresence(t *testing.T, base, rep, token, status string) {
	t.Helper()
	call(t, base, "POST", "/v1/reps/"+rep+"/presence", token, `{"status":"`+status+`"}`, 200, nil)
}

// visitor is a web chat visitor's socket.
type visitor struct {
	ws       *websocket.Conn
	customer string
	agents   bool // the last availability frame
	n        int
}

func newVisitor(t *testing.T, base string) *visitor {
	t.Helper()
	var id [12]byte
	_, _ = rand.Read(id[:])
	return dialVisitor(t, base, "v"+hex.EncodeToString(id[:]))
}

// returningVisitor is a visitor whose customer exists before it connects,
// as if it had written before (a new visitor's customer is made by its
// first message).
func returningVisitor(t *testing.T, g *gateway.Gateway, base string) *visitor {
	t.Helper()
	var id [12]byte
	_, _ = rand.Read(id[:])
	vid := "v" + hex.EncodeToString(id[:])
	if _, _, err := gateway.StoreOf(g).ResolveCustomer(context.Background(),
		sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "demo", Value: vid}, sessions.Customer{}); err != nil {
		t.Fatal(err)
	}
	v := dialVisitor(t, base, vid)
	if v.customer == "" {
		t.Fatal("no customer in a returning visitor's welcome")
	}
	return v
}

func dialVisitor(t *testing.T, base, vid string) *visitor {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/channels/webchat/ws?site=demo&visitor=" + vid
	ws, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {base}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	v := &visitor{ws: ws}
	if err := ws.WriteJSON(map[string]any{"type": "hello", "lang": "en-GB"}); err != nil {
		t.Fatal(err)
	}
	for !v.read(t, "availability") { // after welcome
	}
	return v
}

// read reads one frame and reports whether it is of type want.
func (v *visitor) read(t *testing.T, want string) bool {
	t.Helper()
	_ = v.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var f struct {
		Type       string `json:"type"`
		CustomerID string `json:"customer_id"`
		Agents     bool   `json:"agents"`
	}
	if err := v.ws.ReadJSON(&f); err != nil {
		t.Fatalf("visitor socket: %v", err)
	}
	switch f.Type {
	case "welcome", "ack":
		// A new visitor's customer is made by its first message, whose
		// ack names it.
		if f.CustomerID != "" {
			v.customer = f.CustomerID
		}
	case "availability":
		v.agents = f.Agents
	}
	return f.Type == want
}

func (v *visitor) say(t *testing.T, text string) {
	t.Helper()
	v.n++
	if err := v.ws.WriteJSON(map[string]any{"type": "message", "client_id": fmt.Sprintf("m-%d", v.n), "text": text}); err != nil {
		t.Fatal(err)
	}
	for !v.read(t, "ack") {
	}
}

type conversation struct {
	ID       string `json:"id"`
	Assignee string `json:"assignee"`
	Status   string `json:"status"`
}

type timelineEvent struct {
	Seq            uint64          `json:"seq"`
	Kind           string          `json:"kind"`
	ConversationID string          `json:"conversation_id"`
	Author         string          `json:"author"`
	Payload        json.RawMessage `json:"payload"`
}

func timeline(t *testing.T, base, customer string) []timelineEvent {
	t.Helper()
	var page struct {
		Data []timelineEvent `json:"data"`
	}
	call(t, base, "GET", "/v1/customers/"+customer+"/timeline", adminKey, "", 200, &page)
	return page.Data
}

// assignment waits for the customer's n-th router assignment and returns
// its decision.
func assignment(t *testing.T, base, customer string, n int) router.Decision {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got []router.Decision
		for _, ev := range timeline(t, base, customer) {
			var d router.Decision
			if ev.Kind == "assignment" && json.Unmarshal(ev.Payload, &d) == nil && d.Assigns() {
				got = append(got, d)
			}
		}
		if len(got) >= n {
			return got[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("customer %s: %d assignments after 5s, want %d", customer, len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func conversationsOf(t *testing.T, base, customer string) []conversation {
	t.Helper()
	var page struct {
		Data []conversation `json:"data"`
	}
	call(t, base, "GET", "/v1/conversations?customer_id="+customer, adminKey, "", 200, &page)
	return page.Data
}

type repEntry struct {
	ID       string `json:"id"`
	Presence string `json:"presence"`
	Used     int    `json:"used"`
	Capacity int    `json:"capacity"`
}

func reps(t *testing.T, base string) map[string]repEntry {
	t.Helper()
	var page struct {
		Data []repEntry `json:"data"`
	}
	call(t, base, "GET", "/v1/reps", adminKey, "", 200, &page)
	out := map[string]repEntry{}
	for _, r := range page.Data {
		out[r.ID] = r
	}
	return out
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// repToken is the test token of alice or bob.
func repToken(rep string) string {
	if rep == "alice" {
		return aliceToken
	}
	return bobToken
}

// waitRouted waits until routing has handled the customer's timeline as
// it stands now.
func waitRouted(t *testing.T, g *gateway.Gateway, customer string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := gateway.WaitRouted(ctx, g, customer); err != nil {
		t.Fatalf("routing did not handle customer %s's events: %v", customer, err)
	}
}

// parseConfig parses a test's YAML, with env answering *_env lookups (nil:
// none is set), and fails the test on a bad file.
func parseConfig(t *testing.T, y string, env func(string) (string, bool)) config.Config {
	t.Helper()
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	cfg, err := config.Parse([]byte(y), env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
