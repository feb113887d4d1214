package inbox_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/channels/webchat"
	"github.com/omnigate/omnigate/channels/wsconn"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/inbox"
	"github.com/omnigate/omnigate/sessions"
)

const (
	aliceToken      = "alice-token-0123456789"
	bobToken        = "bob-token-0123456789"
	carolToken      = "carol-token-0123456789"
	adminToken      = "admin-token-0123456789"
	integratorToken = "integrator-token-0123456789"
	phone           = "+8613812345678"
	maskedPhone     = "+86*********78"
)

var authConfig = auth.Config{
	AdminKeys:      []auth.Key{{Name: "ops", Key: adminToken}},
	IntegratorKeys: []auth.Key{{Name: "crm", Key: integratorToken}},
	Reps: []auth.Rep{
		{ID: "alice", Name: "Alice", Role: auth.RoleRep, Token: aliceToken},
		{ID: "bob", Role: auth.RoleRep, Token: bobToken},
		{ID: "carol", Name: "Carol", Role: auth.RoleSupervisor, Token: carolToken},
	},
}

type presenceCall struct {
	rep    string
	online bool
}

type harness struct {
	store    *sessions.MemoryStore
	hub      *inbox.Hub
	srv      *httptest.Server
	typing   *webchat.MemoryTyping
	presence chan presenceCall
	reg      *prometheus.Registry
}

// metric returns the value of a gauge or counter, the one with the given
// reason label when reason is set; -1 when there is none.
func (h *harness) metric(t *testing.T, name, reason string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if reason != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != reason) {
				continue
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// smallBuffers sets SO_SNDBUF on accepted connections, so a client that
// stops reading stalls the server's writer after a few frames.
type smallBuffers struct {
	net.Listener
	size int
}

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		err = c.(*net.TCPConn).SetWriteBuffer(l.size)
	}
	return c, err
}

type harnessOpts struct {
	cfg    inbox.Config
	sndbuf int
	// wrap, when set, is the store the hub sees, around the harness's.
	wrap func(*sessions.MemoryStore) sessions.Store
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	h := &harness{store: sessions.NewMemoryStore(), typing: webchat.NewMemoryTyping(), presence: make(chan presenceCall, 100),
		reg: prometheus.NewRegistry()}
	var store sessions.Store = h.store
	if o.wrap != nil {
		store = o.wrap(h.store)
	}
	var err error
	h.hub, err = inbox.New(o.cfg, inbox.Options{
		Store: store, Auth: auth.New(authConfig), Typing: h.typing,
		Logger:     slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnPresence: func(rep string, online bool) { h.presence <- presenceCall{rep, online} },
		Metrics:    h.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /inbox/ws", h.hub)
	h.srv = httptest.NewUnstartedServer(mux)
	if o.sndbuf > 0 {
		h.srv.Listener = smallBuffers{h.srv.Listener, o.sndbuf}
	}
	h.srv.Start()
	t.Cleanup(func() {
		_ = h.hub.Close()
		h.srv.Close()
		_ = h.store.Close()
	})
	return h
}

// testWriter logs through t until the test's cleanup, then drops lines:
// sockets may outlive a test by a moment, and t.Log after it ends races.
type testWriter struct {
	t    *testing.T
	mu   *sync.Mutex
	done *bool
}

func newTestWriter(t *testing.T) testWriter {
	w := testWriter{t: t, mu: new(sync.Mutex), done: new(bool)}
	t.Cleanup(func() { w.mu.Lock(); *w.done = true; w.mu.Unlock() })
	return w
}

func (w testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !*w.done {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

type dialOpts struct {
	origin    string   // "" means the server's own; "-" means none
	protocols []string // Sec-WebSocket-Protocol
	rcvbuf    int      // client SO_RCVBUF; 0 leaves the default
}

func (h *harness) dial(t *testing.T, o dialOpts) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	hdr := http.Header{}
	switch o.origin {
	case "":
		hdr.Set("Origin", h.srv.URL)
	case "-":
	default:
		hdr.Set("Origin", o.origin)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: o.protocols}
	if o.rcvbuf > 0 {
		d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				err = c.(*net.TCPConn).SetReadBuffer(o.rcvbuf)
			}
			return c, err
		}
	}
	ws, resp, err := d.Dial("ws"+strings.TrimPrefix(h.srv.URL, "http")+"/inbox/ws", hdr)
	if ws != nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

// frame is any server frame, flattened.
type frame struct {
	Type string `json:"type"`
	Rep  struct {
		ID, Name, Role string
	} `json:"rep"`
	Masked       bool                  `json:"masked"`
	Event        sessions.Event        `json:"event"`
	Conversation sessions.Conversation `json:"conversation"`
	CustomerID   string                `json:"customer_id"`
	From         string                `json:"from"`
	RepName      string                `json:"rep_name"`
	On           bool                  `json:"on"`
	Code         string                `json:"code"`
	Message      string                `json:"message"`
	raw          string
}

func read(t *testing.T, ws *websocket.Conn, timeout time.Duration) (frame, error) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(timeout))
	_, b, err := ws.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("server frame %q: %v", b, err)
	}
	f.raw = string(b)
	return f, nil
}

// next returns the next frame of the given type, skipping others except
// errors.
func next(t *testing.T, ws *websocket.Conn, typ string) frame {
	t.Helper()
	for {
		f, err := read(t, ws, 5*time.Second)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if f.Type == typ {
			return f
		}
		if f.Type == "error" {
			t.Fatalf("waiting for %s, got %s", typ, f.raw)
		}
	}
}

// nextEvent returns the next event frame of the given kind.
func nextEvent(t *testing.T, ws *websocket.Conn, kind sessions.EventKind) sessions.Event {
	t.Helper()
	for {
		if f := next(t, ws, "event"); f.Event.Kind == kind {
			return f.Event
		}
	}
}

// quiet fails if a frame of the given type arrives within d.
// quiet checks that no frame of type typ is queued for ws: it sends a
// ping, and whatever the server queued before reading it comes before its
// pong.
func quiet(t *testing.T, ws *websocket.Conn, typ string) {
	t.Helper()
	send(t, ws, map[string]string{"type": "ping"})
	for {
		f, err := read(t, ws, 5*time.Second)
		if err != nil {
			t.Fatalf("waiting for pong: %v", err)
		}
		switch f.Type {
		case "pong":
			return
		case typ:
			t.Fatalf("unexpected %s frame: %s", typ, f.raw)
		}
	}
}

// expectClose reads until the socket closes and checks the close code.
func expectClose(t *testing.T, ws *websocket.Conn, code int) []frame {
	t.Helper()
	var got []frame
	for {
		f, err := read(t, ws, 5*time.Second)
		if err == nil {
			got = append(got, f)
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("socket ended with %v, want close code %d", err, code)
		}
		if ce.Code != code {
			t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, code)
		}
		return got
	}
}

func send(t *testing.T, ws *websocket.Conn, v any) {
	t.Helper()
	if err := ws.WriteJSON(v); err != nil {
		t.Fatal(err)
	}
}

type authFrame struct {
	Type  string `json:"type"`
	Token string `json:"token"`
}

type custFrame struct {
	Type       string `json:"type"`
	CustomerID string `json:"customer_id"`
	On         bool   `json:"on,omitempty"`
}

// connect dials, authenticates with token in the first frame and returns
// the socket and its ready frame.
func (h *harness) connect(t *testing.T, token string) (*websocket.Conn, frame) {
	t.Helper()
	ws, _, err := h.dial(t, dialOpts{})
	if err != nil {
		t.Fatal(err)
	}
	send(t, ws, authFrame{Type: "auth", Token: token})
	return ws, next(t, ws, "ready")
}

// watch opens customerID's timeline on ws and waits until the server
// applied it (frames are applied in order, so the ping's pong proves it).
func (h *harness) watch(t *testing.T, ws *websocket.Conn, customerID string) {
	t.Helper()
	send(t, ws, custFrame{Type: "watch", CustomerID: customerID})
	send(t, ws, map[string]string{"type": "ping"})
	next(t, ws, "pong")
}

// customer creates a customer with a phone identity and an open webchat
// conversation.
func (h *harness) customer(t *testing.T) (sessions.Customer, sessions.Conversation) {
	t.Helper()
	ctx := context.Background()
	c, _, err := h.store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "site1", Value: sessions.NewID("v")}, sessions.Customer{Name: "Wang Fang"})
	if err != nil {
		t.Fatal(err)
	}
	cv, _, err := h.store.OpenConversation(ctx, c.ID, "", sessions.ChannelWebchat)
	if err != nil {
		t.Fatal(err)
	}
	return c, cv
}

func (h *harness) appendIn(t *testing.T, cv sessions.Conversation, text string) sessions.Event {
	t.Helper()
	payload, _ := json.Marshal(sessions.Message{Text: text})
	ev, _, err := h.store.Append(context.Background(), sessions.Event{CustomerID: cv.CustomerID, ConversationID: cv.ID,
		Kind: sessions.KindMessageIn, Channel: sessions.ChannelWebchat, Author: "customer", Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestAuthRequired(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{cfg: inbox.Config{AuthTimeout: 300 * time.Millisecond}})
	_, cv := h.customer(t)
	bearer := func(token string) []string {
		return []string{inbox.Subprotocol, inbox.BearerPrefix + base64.RawURLEncoding.EncodeToString([]byte(token))}
	}
	tests := []struct {
		name      string
		protocols []string
		first     any // nil sends nothing
		code      int
		errCode   string
	}{
		{"no auth frame in time", nil, nil, inbox.CloseUnauthorized, "unauthorized"},
		{"first frame is not auth", nil, custFrame{Type: "watch", CustomerID: cv.CustomerID}, inbox.CloseUnauthorized, "unauthorized"},
		{"not JSON", nil, "hello", inbox.CloseUnauthorized, "unauthorized"},
		{"unknown token", nil, authFrame{Type: "auth", Token: "alice-token-0123456788"}, inbox.CloseUnauthorized, "unauthorized"},
		{"empty token", nil, authFrame{Type: "auth"}, inbox.CloseUnauthorized, "unauthorized"},
		{"integrator key", nil, authFrame{Type: "auth", Token: integratorToken}, inbox.CloseForbidden, "forbidden"},
		{"unknown token in header", bearer("nope-nope-nope-nope"), nil, inbox.CloseUnauthorized, "unauthorized"},
		{"malformed header token", []string{inbox.Subprotocol, inbox.BearerPrefix + "%%%"}, nil, inbox.CloseUnauthorized, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ws, _, err := h.dial(t, dialOpts{protocols: tt.protocols})
			if err != nil {
				t.Fatal(err)
			}
			if tt.first != nil {
				send(t, ws, tt.first)
			}
			// Nothing reaches an unauthenticated socket.
			h.appendIn(t, cv, "secret")
			frames := expectClose(t, ws, tt.code)
			if len(frames) != 1 || frames[0].Type != "error" || frames[0].Code != tt.errCode {
				t.Fatalf("frames before the close: %+v, want one error %s", frames, tt.errCode)
			}
			if wsconn.Reconnect(tt.code) {
				t.Errorf("close code %d must be a don't-reconnect code", tt.code)
			}
		})
	}
	select {
	case p := <-h.presence:
		t.Errorf("presence %+v for a socket that never authenticated", p)
	default:
	}
}

func TestHeaderAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ws, resp, err := h.dial(t, dialOpts{protocols: []string{inbox.Subprotocol,
		inbox.BearerPrefix + base64.RawURLEncoding.EncodeToString([]byte(aliceToken))}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != inbox.Subprotocol {
		t.Fatalf("server chose subprotocol %q, want %q (never the token)", got, inbox.Subprotocol)
	}
	r := next(t, ws, "ready")
	if r.Rep.ID != "alice" || r.Rep.Name != "Alice" || r.Rep.Role != "rep" || !r.Masked {
		t.Fatalf("ready = %s", r.raw)
	}
	// A second auth is a client bug.
	send(t, ws, authFrame{Type: "auth", Token: aliceToken})
	expectClose(t, ws, inbox.CloseBadRequest)
}

func TestRoleSeesPhonesAsTheAPIDoes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c, cv := h.customer(t)
	type sock struct {
		token  string
		masked bool
	}
	socks := map[string]sock{"rep": {aliceToken, true}, "supervisor": {carolToken, false}, "admin": {adminToken, false}}
	conns := map[string]*websocket.Conn{}
	for role, s := range socks {
		ws, r := h.connect(t, s.token)
		if r.Rep.Role != role || r.Masked != s.masked {
			t.Fatalf("%s ready = %s", role, r.raw)
		}
		h.watch(t, ws, c.ID)
		conns[role] = ws
	}
	ctx := context.Background()
	if _, _, err := h.store.LinkIdentity(ctx, c.ID, sessions.Identity{Kind: sessions.IdentityPhone, Value: phone, Verified: true}, "system"); err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{"to": phone, "note": "called " + phone, "nested": []string{phone}})
	if _, _, err := h.store.Append(ctx, sessions.Event{CustomerID: c.ID, ConversationID: cv.ID, Kind: sessions.KindCall,
		Channel: sessions.ChannelVoice, Author: "system", Payload: payload}); err != nil {
		t.Fatal(err)
	}
	for role, s := range socks {
		ws := conns[role]
		for _, kind := range []sessions.EventKind{sessions.KindIdentityLinked, sessions.KindCall} {
			ev := nextEvent(t, ws, kind)
			p := string(ev.Payload)
			hasFull, hasMasked := strings.Contains(p, `"`+phone+`"`), strings.Contains(p, maskedPhone)
			if s.masked && (hasFull || !hasMasked) {
				t.Errorf("%s got %s payload %s, want the phone masked", role, kind, p)
			}
			if !s.masked && !hasFull {
				t.Errorf("%s got %s payload %s, want the phone in full", role, kind, p)
			}
		}
	}
}

func TestEventsAndConversationChangesArriveLive(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	alice, _ := h.connect(t, aliceToken)
	bob, _ := h.connect(t, bobToken)
	_, cv := h.customer(t)
	h.watch(t, alice, cv.CustomerID)
	h.watch(t, bob, cv.CustomerID)
	in := h.appendIn(t, cv, "where is my order?")
	for _, ws := range []*websocket.Conn{alice, bob} {
		got := nextEvent(t, ws, sessions.KindMessageIn)
		if got.Seq != in.Seq || got.ID != in.ID || !strings.Contains(string(got.Payload), "where is my order?") {
			t.Fatalf("event = %+v, want %+v", got, in)
		}
	}
	to := "alice"
	if _, _, err := h.store.UpdateConversation(context.Background(), cv.ID, sessions.ConversationUpdate{Assignee: &to,
		Event: sessions.Event{Author: "system", Payload: json.RawMessage(`{"kind":"assign","rep_id":"alice","ring":"owner","why":"owner is free"}`)}}); err != nil {
		t.Fatal(err)
	}
	for _, ws := range []*websocket.Conn{alice, bob} {
		ev := nextEvent(t, ws, sessions.KindAssignment)
		if !strings.Contains(string(ev.Payload), `"why":"owner is free"`) {
			t.Errorf("assignment payload %s lost its why", ev.Payload)
		}
		f := next(t, ws, "conversation")
		if f.Conversation.ID != cv.ID || f.Conversation.Assignee != "alice" || f.Conversation.LastSeq != ev.Seq {
			t.Errorf("conversation frame %s, want %s assigned to alice at seq %d", f.raw, cv.ID, ev.Seq)
		}
	}
	resolved := sessions.StatusResolved
	if _, _, err := h.store.UpdateConversation(context.Background(), cv.ID, sessions.ConversationUpdate{Status: &resolved,
		Event: sessions.Event{Author: "rep:alice"}}); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, alice, sessions.KindStatusChange)
	if f := next(t, alice, "conversation"); f.Conversation.Status != sessions.StatusResolved {
		t.Errorf("conversation frame %s, want resolved", f.raw)
	}
	send(t, alice, map[string]string{"type": "ping"})
	next(t, alice, "pong")
}

func TestSlowSocketGetsReconnectCode(t *testing.T) {
	t.Parallel()
	// The client reads only once every event was dispatched, which on a
	// loaded machine under -race can outlast the default 10s write timeout.
	h := newHarness(t, harnessOpts{cfg: inbox.Config{MessageBufferSize: 4, WriteTimeout: time.Minute}, sndbuf: 8 << 10})
	ws, _, err := h.dial(t, dialOpts{rcvbuf: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	send(t, ws, authFrame{Type: "auth", Token: aliceToken})
	next(t, ws, "ready")
	_, cv := h.customer(t)
	h.watch(t, ws, cv.CustomerID)
	big := strings.Repeat("z", 50<<10)
	const n = 100 // 5 MB: far more than the socket buffers and queue hold
	var last sessions.Event
	for range n {
		last = h.appendIn(t, cv, big)
	}
	// Read nothing until the hub has pushed every event (and so found the
	// queue full); then read what got through and the close.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.hub.WaitHandled(ctx, cv.CustomerID, last.Seq); err != nil {
		t.Fatal(err)
	}
	frames := expectClose(t, ws, inbox.CloseSlow)
	if len(frames) >= n {
		t.Fatalf("got all %d frames: the socket was not slow", len(frames))
	}
	if !wsconn.Reconnect(inbox.CloseSlow) {
		t.Fatal("CloseSlow must be a reconnect code")
	}
	if n := h.metric(t, "omnigate_inbox_closes_total", "slow"); n != 1 {
		t.Errorf("closes_total{reason=slow} = %v, want 1", n)
	}
	// The rep went offline with the socket, and a new socket works.
	waitPresence(t, h, presenceCall{"alice", true})
	waitPresence(t, h, presenceCall{"alice", false})
	ws2, _ := h.connect(t, aliceToken)
	h.watch(t, ws2, cv.CustomerID)
	h.appendIn(t, cv, "after")
	if ev := nextEvent(t, ws2, sessions.KindMessageIn); !strings.Contains(string(ev.Payload), "after") {
		t.Fatalf("after reconnect got %s", ev.Payload)
	}
}

// gatedStore holds the hub's reads of a conversation until open is closed.
type gatedStore struct {
	*sessions.MemoryStore
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (g *gatedStore) Conversation(ctx context.Context, id string) (sessions.Conversation, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	return g.MemoryStore.Conversation(ctx, id)
}

// A hub that falls behind the change feed is cut off from it (ErrSlow):
// once subscribed again it closes every socket open across the gap with
// CloseSlow, so each inbox reloads; a socket opened afterwards misses
// nothing.
func TestHubFeedGapReconnectsSockets(t *testing.T) {
	t.Parallel()
	gs := &gatedStore{entered: make(chan struct{}), open: make(chan struct{})}
	// A queue long enough for the whole burst: the socket is not slow,
	// the hub is.
	h := newHarness(t, harnessOpts{cfg: inbox.Config{MessageBufferSize: 2 * sessions.SubscriptionBuffer},
		wrap: func(m *sessions.MemoryStore) sessions.Store { gs.MemoryStore = m; return gs }})
	ws, _ := h.connect(t, aliceToken)
	_, cv := h.customer(t)
	to := "alice"
	if _, _, err := h.store.UpdateConversation(context.Background(), cv.ID, sessions.ConversationUpdate{Assignee: &to,
		Event: sessions.Event{Author: "system"}}); err != nil {
		t.Fatal(err)
	}
	<-gs.entered // the hub is stuck on the assignment
	for range sessions.SubscriptionBuffer + 300 {
		h.appendIn(t, cv, "x")
	}
	close(gs.open)
	expectClose(t, ws, inbox.CloseSlow)
	if n := h.metric(t, "omnigate_inbox_closes_total", "slow"); n != 1 {
		t.Errorf("closes_total{reason=slow} = %v, want 1", n)
	}
	ws2, _ := h.connect(t, aliceToken)
	h.appendIn(t, cv, "after")
	if ev := nextEvent(t, ws2, sessions.KindMessageIn); !strings.Contains(string(ev.Payload), "after") {
		t.Fatalf("after the gap got %s", ev.Payload)
	}
}

func waitPresence(t *testing.T, h *harness, want presenceCall) {
	t.Helper()
	select {
	case got := <-h.presence:
		if got != want {
			t.Fatalf("presence %+v, want %+v", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no presence call, want %+v", want)
	}
}

func TestPresence(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	a1, _ := h.connect(t, aliceToken)
	waitPresence(t, h, presenceCall{"alice", true})
	a2, _ := h.connect(t, aliceToken)
	h.connect(t, adminToken) // admin keys have no presence
	c1, _ := h.connect(t, carolToken)
	waitPresence(t, h, presenceCall{"carol", true})
	if got := h.hub.Online(); strings.Join(got, ",") != "alice,carol" {
		t.Errorf("Online = %v", got)
	}
	if n := h.hub.Connections(); n != 4 {
		t.Errorf("Connections = %d, want 4", n)
	}
	if n, o := h.metric(t, "omnigate_inbox_connections", ""), h.metric(t, "omnigate_inbox_reps_online", ""); n != 4 || o != 2 {
		t.Errorf("metrics: connections %v, reps_online %v; want 4, 2", n, o)
	}
	a1.Close()
	c1.Close()
	waitPresence(t, h, presenceCall{"carol", false}) // alice still has a2
	a2.Close()
	waitPresence(t, h, presenceCall{"alice", false})
	// Every leave is done (each made its call before the next join can
	// make one), then bob joins: his is the next call, nothing before it.
	for deadline := time.Now().Add(5 * time.Second); h.hub.Connections() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Connections = %d, want the admin's only", h.hub.Connections())
		}
	}
	h.connect(t, bobToken)
	waitPresence(t, h, presenceCall{"bob", true})
}

func TestTypingBothWays(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c, _ := h.customer(t)
	other, _ := h.customer(t)
	alice, _ := h.connect(t, aliceToken)
	bob, _ := h.connect(t, bobToken)
	send(t, alice, custFrame{Type: "watch", CustomerID: c.ID})
	send(t, bob, custFrame{Type: "watch", CustomerID: other.ID})
	// Let the watch frames be applied (the reader applies them in order,
	// so a ping's pong proves it).
	for _, ws := range []*websocket.Conn{alice, bob} {
		send(t, ws, map[string]string{"type": "ping"})
		next(t, ws, "pong")
	}

	signals := make(chan webchat.TypingSignal, 10)
	cancel := h.typing.Subscribe(c.ID, func(s webchat.TypingSignal) { signals <- s })
	defer cancel()

	// The visitor types: alice watches the customer and sees it; bob,
	// looking at someone else, doesn't.
	if err := h.typing.Publish(context.Background(), webchat.TypingSignal{CustomerID: c.ID, From: "customer", On: true}); err != nil {
		t.Fatal(err)
	}
	<-signals // our own subscriber hears the visitor too
	f := next(t, alice, "typing")
	if f.CustomerID != c.ID || f.From != "customer" || !f.On {
		t.Fatalf("typing frame %s", f.raw)
	}
	quiet(t, bob, "typing")

	// Alice types back: the visitor's side hears her name, not an id.
	send(t, alice, custFrame{Type: "typing", CustomerID: c.ID, On: true})
	select {
	case s := <-signals:
		if s.From != "rep:alice" || s.RepName != "Alice" || !s.On || s.CustomerID != c.ID {
			t.Fatalf("signal %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("rep typing not published")
	}
	quiet(t, alice, "typing") // not echoed to herself

	// Alice's socket goes away mid-typing: the indicator is turned off.
	alice.Close()
	select {
	case s := <-signals:
		if s.From != "rep:alice" || s.On {
			t.Fatalf("signal %+v, want alice off", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no typing off when the socket closed")
	}
}

func TestOrigin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{cfg: inbox.Config{AllowedOrigins: []string{"https://ops.example.com"}}})
	for _, tt := range []struct {
		origin string
		ok     bool
	}{
		{"", true}, // the gateway's own page
		{"-", true},
		{"https://ops.example.com", true},
		{"https://evil.example.com", false},
		{"null", false},
	} {
		ws, resp, err := h.dial(t, dialOpts{origin: tt.origin})
		if tt.ok != (err == nil) {
			t.Errorf("origin %q: err %v, want ok=%v", tt.origin, err, tt.ok)
		}
		if !tt.ok && (resp == nil || resp.StatusCode != http.StatusForbidden) {
			t.Errorf("origin %q: response %v, want 403", tt.origin, resp)
		}
		if ws != nil {
			ws.Close()
		}
	}
}

func TestProtocolErrorsClose(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{cfg: inbox.Config{MaxMessageBytes: 1024}})
	tests := []struct {
		name string
		msg  string
		code int
	}{
		{"unknown type", `{"type":"message","text":"hi"}`, inbox.CloseBadRequest},
		{"unknown field", `{"type":"ping","x":1}`, inbox.CloseBadRequest},
		{"bad customer id", `{"type":"typing","customer_id":"a b","on":true}`, inbox.CloseBadRequest},
		{"trailing data", `{"type":"ping"} {}`, inbox.CloseBadRequest},
		{"too big", `{"type":"watch","customer_id":"` + strings.Repeat("x", 2000) + `"}`, inbox.CloseMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ws, _ := h.connect(t, aliceToken)
			if err := ws.WriteMessage(websocket.TextMessage, []byte(tt.msg)); err != nil {
				t.Fatal(err)
			}
			expectClose(t, ws, tt.code)
			if wsconn.Reconnect(tt.code) {
				t.Errorf("%d must not be a reconnect code", tt.code)
			}
		})
	}
}

func TestFloodClosed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{cfg: inbox.Config{RatePerMinute: 60}})
	ws, _ := h.connect(t, aliceToken)
	// The auth frame took one token of the burst of 20. Send exactly one
	// frame too many: frames the server never read would make its close
	// a TCP reset, and the client might see 1006 instead of the code.
	for range 20 {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
			t.Fatal(err)
		}
	}
	frames := expectClose(t, ws, inbox.CloseTooManyRequests)
	if len(frames) != 19 {
		t.Fatalf("%d frames answered before the close, want 19 pongs", len(frames))
	}
}

func TestShutdownAndStoreCloseReconnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ws, _ := h.connect(t, aliceToken)
	if err := h.hub.Close(); err != nil {
		t.Fatal(err)
	}
	expectClose(t, ws, inbox.CloseShutdown)
	if _, resp, err := h.dial(t, dialOpts{}); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Close: %v %v, want 503", err, resp)
	}

	h2 := newHarness(t, harnessOpts{})
	ws2, _ := h2.connect(t, aliceToken)
	_ = h2.store.Close()
	expectClose(t, ws2, inbox.CloseShutdown)
	if !wsconn.Reconnect(inbox.CloseShutdown) {
		t.Error("CloseShutdown must be a reconnect code")
	}
}

func TestCloseCodeRanges(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		code      int
		reconnect bool
	}{
		{inbox.CloseServerError, true},
		{inbox.CloseShutdown, true},
		{inbox.CloseSlow, true},
		{inbox.CloseTooManyRequests, true},
		{inbox.CloseBadRequest, false},
		{inbox.CloseUnauthorized, false},
		{inbox.CloseForbidden, false},
		{inbox.CloseMessageTooBig, false},
		{1006, true},
		{1001, true},
	} {
		if got := wsconn.Reconnect(tt.code); got != tt.reconnect {
			t.Errorf("Reconnect(%d) = %v", tt.code, got)
		}
		if tt.code >= 4000 && inbox.CloseName(tt.code) == "" {
			t.Errorf("close code %d has no name", tt.code)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	bad := inbox.Config{MaxMessageBytes: 1 << 20, MessageBufferSize: -1, PingInterval: -1, AllowedOrigins: []string{"ops.example.com", "https://ok.example.com"}}
	err := bad.Validate()
	for _, want := range []string{"max_message_bytes", "message_buffer_size is negative", "ping_interval is negative", `allowed_origins[0]: "ops.example.com"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, missing %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "allowed_origins[1]") {
		t.Errorf("a good origin was refused: %v", err)
	}
	if err := (inbox.Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}
