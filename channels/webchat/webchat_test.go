package webchat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/channels/webchat"
	"github.com/omnigate/omnigate/channels/wsconn"
	"github.com/omnigate/omnigate/sessions"
)

const (
	siteID = "shop"
	origin = "https://shop.example.com"
	secret = "s3cret-for-tests"
)

type harness struct {
	store *sessions.MemoryStore
	a     *webchat.Adapter
	srv   *httptest.Server
}

func newHarness(t *testing.T, edit func(*webchat.Config, *webchat.Options)) *harness {
	t.Helper()
	return newHarnessBuf(t, 0, edit)
}

// smallSendBuffer sets SO_SNDBUF on accepted connections, so a client
// that stops reading stalls the server's writer after a few frames.
type smallSendBuffer struct {
	net.Listener
	size int
}

func (l smallSendBuffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		err = c.(*net.TCPConn).SetWriteBuffer(l.size)
	}
	return c, err
}

func newHarnessBuf(t *testing.T, sndbuf int, edit func(*webchat.Config, *webchat.Options)) *harness {
	t.Helper()
	st := sessions.NewMemoryStore()
	cfg := webchat.Config{Sites: []webchat.Site{{ID: siteID, AllowedOrigins: []string{origin}, Secret: secret}}}
	opts := webchat.Options{Store: st, Logger: slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&cfg, &opts)
	}
	a, err := webchat.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a)
	if sndbuf > 0 {
		srv.Listener = smallSendBuffer{srv.Listener, sndbuf}
	}
	srv.Start()
	t.Cleanup(func() {
		_ = a.Close()
		srv.Close()
		_ = st.Close()
	})
	return &harness{store: st, a: a, srv: srv}
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

// visitorID returns a fresh visitor id, as the widget makes one.
func visitorID(t *testing.T) string {
	return strings.ReplaceAll(sessions.NewID("v"), "_", "-")
}

// returning makes a visitor who has written before: one with a customer.
func (h *harness) returning(t *testing.T) (visitor, customerID string) {
	t.Helper()
	v := visitorID(t)
	c, _, err := h.store.ResolveCustomer(context.Background(),
		sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: siteID, Value: v}, sessions.Customer{})
	if err != nil {
		t.Fatal(err)
	}
	return v, c.ID
}

type dialOpts struct {
	origin      string
	userID      string
	userHash    string
	userExpires int64
	// inURL puts the credentials in the socket URL, the deprecated form,
	// instead of in hello.
	inURL bool
}

// signedAs is a user signed with the site's secret, valid for an hour.
func signedAs(user string) dialOpts {
	exp := time.Now().Add(time.Hour)
	return dialOpts{userID: user, userHash: webchat.Sign(secret, user, exp), userExpires: exp.Unix()}
}

// withCreds is hl with the credentials of o, unless o puts them in the URL.
func withCreds(visitor string, o dialOpts, hl hello) hello {
	hl.Type = "hello"
	if !o.inURL {
		hl.Visitor, hl.UserID, hl.UserHash, hl.UserExpires = visitor, o.userID, o.userHash, o.userExpires
	}
	return hl
}

func (h *harness) dial(t *testing.T, visitor string, o dialOpts) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	q := url.Values{"site": {siteID}}
	if o.inURL {
		q.Set("visitor", visitor)
		if o.userID != "" {
			q.Set("user_id", o.userID)
		}
		if o.userHash != "" {
			q.Set("user_hash", o.userHash)
		}
	}
	u := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/channels/webchat/ws?" + q.Encode()
	hdr := http.Header{}
	if o.origin != "-" {
		if o.origin == "" {
			o.origin = origin
		}
		hdr.Set("Origin", o.origin)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(u, hdr)
	if ws != nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

// frame is any server frame, flattened.
type frame struct {
	Type            string `json:"type"`
	CustomerID      string `json:"customer_id"`
	LastSeq         uint64 `json:"last_seq"`
	After           uint64 `json:"after"`
	Reset           bool   `json:"reset"`
	Verified        bool   `json:"verified"`
	MaxMessageBytes int    `json:"max_message_bytes"`
	Seq             uint64 `json:"seq"`
	Kind            string `json:"kind"`
	From            string `json:"from"`
	RepName         string `json:"rep_name"`
	Text            string `json:"text"`
	ClientID        string `json:"client_id"`
	Status          string `json:"status"`
	Duplicate       bool   `json:"duplicate"`
	On              bool   `json:"on"`
	Agents          bool   `json:"agents"`
	Code            string `json:"code"`
	Message         string `json:"message"`
	raw             string
}

func read(t *testing.T, ws *websocket.Conn) (frame, error) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
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

// next returns the next frame of the given type, skipping frames of other
// types except errors.
func next(t *testing.T, ws *websocket.Conn, typ string) frame {
	t.Helper()
	for {
		f, err := read(t, ws)
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

// expectClose reads until the socket closes and checks the close code.
func expectClose(t *testing.T, ws *websocket.Conn, code int) []frame {
	t.Helper()
	var got []frame
	for {
		f, err := read(t, ws)
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

type hello struct {
	Type        string `json:"type"`
	After       uint64 `json:"after,omitempty"`
	CustomerID  string `json:"customer_id,omitempty"`
	Visitor     string `json:"visitor,omitempty"`
	UserID      string `json:"user_id,omitempty"`
	UserHash    string `json:"user_hash,omitempty"`
	UserExpires int64  `json:"user_expires,omitempty"`
}

type message struct {
	Type     string `json:"type"`
	ClientID string `json:"client_id"`
	Text     string `json:"text"`
}

// connect dials, says hello and returns the socket and the welcome.
func (h *harness) connect(t *testing.T, visitor string, hl hello, o dialOpts) (*websocket.Conn, frame) {
	t.Helper()
	ws, _, err := h.dial(t, visitor, o)
	if err != nil {
		t.Fatal(err)
	}
	send(t, ws, withCreds(visitor, o, hl))
	return ws, next(t, ws, "welcome")
}

func timeline(t *testing.T, st sessions.Store, customerID string) []sessions.Event {
	t.Helper()
	evs, err := st.Timeline(context.Background(), customerID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func count(evs []sessions.Event, kind sessions.EventKind) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

func TestResendSameClientIDMakesOneEvent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	v := visitorID(t)
	ws, _ := h.connect(t, v, hello{}, dialOpts{})
	send(t, ws, message{"message", "c-1", "where is my order?"})
	first := next(t, ws, "ack")
	w := first // the first message made the customer; its ack names it
	send(t, ws, message{"message", "c-1", "where is my order?"})
	again := next(t, ws, "ack")
	if first.ClientID != "c-1" || first.Duplicate || again.Seq != first.Seq || !again.Duplicate {
		t.Fatalf("acks %s then %s", first.raw, again.raw)
	}
	ws.Close()

	// A resend after a reconnect, as the widget does with its pending
	// messages, is acknowledged with the same sequence.
	ws2, w2 := h.connect(t, v, hello{After: first.Seq, CustomerID: w.CustomerID}, dialOpts{})
	if w2.CustomerID != w.CustomerID || w2.Reset {
		t.Fatalf("reconnect welcome %s", w2.raw)
	}
	send(t, ws2, message{"message", "c-1", "where is my order?"})
	if ack := next(t, ws2, "ack"); ack.Seq != first.Seq || !ack.Duplicate {
		t.Fatalf("ack after reconnect %s, want seq %d duplicate", ack.raw, first.Seq)
	}
	if n := count(timeline(t, h.store, w.CustomerID), sessions.KindMessageIn); n != 1 {
		t.Fatalf("%d message_in events, want 1", n)
	}
}

// appendOut appends a rep reply on web chat, as the API does.
func appendOut(t *testing.T, st sessions.Store, customerID, text string) sessions.Event {
	t.Helper()
	ctx := context.Background()
	cv, _, err := st.OpenConversation(ctx, customerID, "", sessions.ChannelWebchat)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(sessions.Message{Text: text})
	ev, _, err := st.Append(ctx, sessions.Event{CustomerID: customerID, ConversationID: cv.ID,
		Kind: sessions.KindMessageOut, Channel: sessions.ChannelWebchat, Author: "rep:r-7", Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestResumeDeliversTheRestOnceInOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(_ *webchat.Config, o *webchat.Options) {
		o.RepName = func(_ context.Context, id string) string { return map[string]string{"r-7": "Li Na"}[id] }
	})
	v, cid := h.returning(t)
	ws, w := h.connect(t, v, hello{}, dialOpts{})
	if w.CustomerID != cid {
		t.Fatalf("welcome %s, want customer %s", w.raw, cid)
	}
	for i := range 3 {
		send(t, ws, message{"message", fmt.Sprintf("c-%d", i), fmt.Sprintf("hello %d", i)})
		next(t, ws, "ack")
	}
	ws.Close()
	for i := range 5 {
		appendOut(t, h.store, w.CustomerID, fmt.Sprintf("reply %d", i))
	}
	evs := timeline(t, h.store, w.CustomerID)
	head := evs[len(evs)-1].Seq
	n := evs[3].Seq // resume from the middle: some of the visitor's, all replies missed

	ws2, w2 := h.connect(t, v, hello{After: n, CustomerID: w.CustomerID}, dialOpts{})
	if w2.After != n || w2.LastSeq != head || w2.Reset {
		t.Fatalf("welcome %s, want after %d last_seq %d", w2.raw, n, head)
	}
	var want []uint64
	for _, ev := range evs {
		if ev.Seq > n && (ev.Kind == sessions.KindMessageIn || ev.Kind == sessions.KindMessageOut) {
			want = append(want, ev.Seq)
		}
	}
	var got []uint64
	for len(got) < len(want) {
		f := next(t, ws2, "event")
		got = append(got, f.Seq)
		if f.Kind == "message_out" && (f.RepName != "Li Na" || f.From != "rep" || strings.Contains(f.raw, "r-7")) {
			t.Fatalf("reply frame %s: want rep name, no rep id", f.raw)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("resumed %v, want %v", got, want)
	}
	// Then live, still once and in order, and nothing before it again.
	live := appendOut(t, h.store, w.CustomerID, "live")
	if f := next(t, ws2, "event"); f.Seq != live.Seq || f.Text != "live" {
		t.Fatalf("live frame %s, want seq %d", f.raw, live.Seq)
	}
	_ = ws2.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, b, err := ws2.ReadMessage(); err == nil && strings.Contains(string(b), `"event"`) {
		t.Fatalf("extra frame after live event: %s", b)
	}
}

func TestResumeWhileAppendsRace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	v, _ := h.returning(t)
	_, w := h.connect(t, v, hello{}, dialOpts{})
	for i := range 20 {
		appendOut(t, h.store, w.CustomerID, fmt.Sprint("before ", i))
	}
	const n = 10
	const live = 200
	done := make(chan struct{})
	go func() { // a rep keeps replying, on another "node", during the replay
		defer close(done)
		for i := range live {
			appendOut(t, h.store, w.CustomerID, fmt.Sprint("during ", i))
		}
	}()
	ws, _ := h.connect(t, v, hello{After: n, CustomerID: w.CustomerID}, dialOpts{})
	<-done
	evs := timeline(t, h.store, w.CustomerID)
	last := evs[len(evs)-1].Seq
	var got []uint64
	for {
		f, err := read(t, ws)
		if err != nil {
			t.Fatalf("events stopped after %v (last is %d): %v", got, last, err)
		}
		if f.Type != "event" {
			continue
		}
		got = append(got, f.Seq)
		if f.Seq == last {
			break
		}
	}
	var want []uint64
	for _, ev := range evs {
		if ev.Seq > n && ev.Kind == sessions.KindMessageOut {
			want = append(want, ev.Seq)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %d events %v\nwant %d %v", len(got), got, len(want), want)
	}
}

func TestNewClientGetsRecentHistory(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *webchat.Config, _ *webchat.Options) { c.HistoryEvents = 4 })
	v, _ := h.returning(t)
	_, w := h.connect(t, v, hello{}, dialOpts{})
	for i := range 10 {
		appendOut(t, h.store, w.CustomerID, fmt.Sprint(i))
	}
	evs := timeline(t, h.store, w.CustomerID)
	head := evs[len(evs)-1].Seq
	ws, w2 := h.connect(t, v, hello{}, dialOpts{})
	if w2.LastSeq != head || w2.After != head-4 {
		t.Fatalf("welcome %s, want last_seq %d after %d", w2.raw, head, head-4)
	}
	for s := head - 3; s <= head; s++ {
		if f := next(t, ws, "event"); f.Seq != s {
			t.Fatalf("history frame %s, want seq %d", f.raw, s)
		}
	}
}

func TestBadOriginRefusedWithNoEffect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, o := range []string{"https://evil.example.net", "http://shop.example.com", "-"} {
		v := visitorID(t)
		ws, resp, err := h.dial(t, v, dialOpts{origin: o})
		if err == nil {
			ws.Close()
			t.Fatalf("origin %q: upgraded", o)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %q: response %v, want 403", o, resp)
		}
		if _, err := h.store.IdentityOwner(context.Background(),
			sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: siteID, Value: v}); !errors.Is(err, sessions.ErrNotFound) {
			t.Fatalf("origin %q: visitor stored (%v)", o, err)
		}
	}
	if h.a.Connections() != 0 {
		t.Fatalf("%d connections open", h.a.Connections())
	}
}

func TestUnknownSiteIs404(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	resp, err := http.Get(h.srv.URL + "/channels/webchat/ws?site=nope&visitor=" + visitorID(t))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestOversizedFrameClosedNothingStored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *webchat.Config, _ *webchat.Options) { c.Sites[0].MaxMessageBytes = 1024 })
	v, cid := h.returning(t)
	ws, w := h.connect(t, v, hello{}, dialOpts{})
	if w.MaxMessageBytes != 1024 {
		t.Fatalf("welcome %s", w.raw)
	}
	send(t, ws, message{"message", "big", strings.Repeat("x", 2000)})
	expectClose(t, ws, webchat.CloseMessageTooBig)
	w.CustomerID = cid
	if n := count(timeline(t, h.store, w.CustomerID), sessions.KindMessageIn); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

func TestFloodClosedAndLimited(t *testing.T) {
	t.Parallel()
	const burst = 5
	h := newHarness(t, func(c *webchat.Config, _ *webchat.Options) {
		c.Sites[0].RatePerMinute, c.Sites[0].RateBurst = 1, burst
	})
	v, cid := h.returning(t)
	ws, w := h.connect(t, v, hello{}, dialOpts{}) // hello takes one token
	w.CustomerID = cid
	for i := range 30 {
		if err := ws.WriteJSON(message{"message", fmt.Sprintf("f-%d", i), "spam"}); err != nil {
			break // the server may hang up before we finish
		}
	}
	expectClose(t, ws, webchat.CloseTooManyRequests)
	if n := count(timeline(t, h.store, w.CustomerID), sessions.KindMessageIn); n != burst-1 {
		t.Fatalf("%d messages stored, want %d", n, burst-1)
	}
}

// logSignal passes records on and closes seen when one with message msg
// passes: an event a test can wait for instead of guessing how long the
// server takes to get there.
type logSignal struct {
	slog.Handler
	msg  string
	once *sync.Once
	seen chan struct{}
}

func newLogSignal(next slog.Handler, msg string) logSignal {
	return logSignal{Handler: next, msg: msg, once: new(sync.Once), seen: make(chan struct{})}
}

func (h logSignal) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return h.Handler.Handle(ctx, r)
}

func (h logSignal) WithAttrs(as []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(as)
	return h
}

func (h logSignal) WithGroup(name string) slog.Handler {
	h.Handler = h.Handler.WithGroup(name)
	return h
}

func TestSlowReaderGetsReconnectCode(t *testing.T) {
	t.Parallel()
	var slow logSignal
	h := newHarnessBuf(t, 8<<10, func(c *webchat.Config, o *webchat.Options) {
		c.MessageBufferSize = 4
		c.SlowTimeout = 200 * time.Millisecond
		c.HistoryEvents = 1000
		slow = newLogSignal(o.Logger.Handler(), "webchat: slow client disconnected")
		o.Logger = slog.New(slow)
	})
	v := visitorID(t)
	ctx := context.Background()
	cu, _, err := h.store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: siteID, Value: v}, sessions.Customer{})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("z", 50<<10)
	const n = 100 // 5 MB: far more than the socket buffers hold
	for range n {
		appendOut(t, h.store, cu.ID, big)
	}
	ws, _, err := h.dial(t, v, dialOpts{})
	if err != nil {
		t.Fatal(err)
	}
	send(t, ws, withCreds(v, dialOpts{}, hello{}))
	// Read nothing until the server gives up on the client. Then read at
	// once: the close frame waits behind the stalled writer, which only
	// our reading frees.
	select {
	case <-slow.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("the server never found the client slow")
	}
	frames := expectClose(t, ws, webchat.CloseSlow)
	if len(frames) >= n {
		t.Fatalf("got all %d frames: the client was not slow", len(frames))
	}
	if !wsconn.Reconnect(webchat.CloseSlow) {
		t.Fatal("CloseSlow must be a reconnect code")
	}
}

func TestVerifiedIdentityMergesVisitor(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	user := sessions.Identity{Kind: sessions.IdentitySiteUser, Namespace: siteID, Value: "user-42", Verified: true}
	known, _, err := h.store.ResolveCustomer(ctx, user, sessions.Customer{Name: "Wang Fang"})
	if err != nil {
		t.Fatal(err)
	}
	appendOut(t, h.store, known.ID, "your parcel left the depot")

	// The visitor chats anonymously first, then logs in on the site.
	v := visitorID(t)
	ws, _ := h.connect(t, v, hello{}, dialOpts{})
	send(t, ws, message{"message", "a-1", "hi, anonymous so far"})
	ack := next(t, ws, "ack")
	anon := ack
	ws.Close()

	ws2, w := h.connect(t, v, hello{After: ack.Seq, CustomerID: anon.CustomerID},
		signedAs("user-42"))
	if w.CustomerID != known.ID || !w.Reset || !w.Verified {
		t.Fatalf("welcome %s, want customer %s, reset, verified", w.raw, known.ID)
	}
	owner, err := h.store.IdentityOwner(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: siteID, Value: v})
	if err != nil || owner != known.ID {
		t.Fatalf("visitor owner %q (%v), want %s", owner, err, known.ID)
	}
	old, err := h.store.Customer(ctx, anon.CustomerID)
	if err != nil || old.MergedInto != known.ID {
		t.Fatalf("anonymous customer %+v (%v), want merged into %s", old, err, known.ID)
	}
	var merge sessions.Merge
	for _, ev := range timeline(t, h.store, known.ID) {
		if ev.Kind == sessions.KindMerged {
			_ = json.Unmarshal(ev.Payload, &merge)
		}
	}
	if merge.From != anon.CustomerID || merge.Evidence != "verified_site_user" {
		t.Fatalf("merge %+v", merge)
	}
	// The merged timeline shows both histories.
	texts := map[string]bool{}
	for len(texts) < 2 {
		if f := next(t, ws2, "event"); f.Text != "" {
			texts[f.Text] = true
		}
	}
	if !texts["your parcel left the depot"] || !texts["hi, anonymous so far"] {
		t.Fatalf("history %v", texts)
	}
	// And the same tag again changes nothing.
	_, w3 := h.connect(t, v, hello{CustomerID: known.ID}, signedAs("user-42"))
	if w3.CustomerID != known.ID || w3.Reset {
		t.Fatalf("second verified welcome %s", w3.raw)
	}
}

func TestVerifiedUserOnSharedBrowserIsNotMerged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	v := visitorID(t)
	_, a := h.connect(t, v, hello{}, signedAs("alice"))
	_, b := h.connect(t, v, hello{}, signedAs("bob"))
	if a.CustomerID == b.CustomerID {
		t.Fatal("two signed users on one browser share a customer")
	}
	c, _ := h.store.Customer(context.Background(), a.CustomerID)
	if c.MergedInto != "" {
		t.Fatalf("alice merged into %s", c.MergedInto)
	}
}

func TestInvalidHashRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *webchat.Config, _ *webchat.Options) {
		c.Sites = append(c.Sites, webchat.Site{ID: "nosecret", AllowedOrigins: []string{origin}})
	})
	tests := []struct{ name, site, user, hash string }{
		{"wrong hash", siteID, "user-42", webchat.SignForever("other secret", "user-42")},
		{"hash of another user", siteID, "user-42", webchat.SignForever(secret, "user-43")},
		{"not hex", siteID, "user-42", "zz"},
		{"hash without user", siteID, "", webchat.SignForever(secret, "")},
		{"site without secret", "nosecret", "user-42", webchat.SignForever("", "user-42")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := visitorID(t)
			q := url.Values{"site": {tt.site}, "visitor": {v}, "user_id": {tt.user}, "user_hash": {tt.hash}}
			ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.srv.URL, "http")+"/?"+q.Encode(),
				http.Header{"Origin": {origin}})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			_ = ws.WriteJSON(hello{Type: "hello"})
			frames := expectClose(t, ws, webchat.CloseIdentityRefused)
			if len(frames) != 1 || frames[0].Code != "identity_refused" {
				t.Fatalf("frames before close: %+v", frames)
			}
			if wsconn.Reconnect(webchat.CloseIdentityRefused) {
				t.Fatal("identity refused must not reconnect")
			}
			if _, err := h.store.IdentityOwner(context.Background(),
				sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: tt.site, Value: v}); !errors.Is(err, sessions.ErrNotFound) {
				t.Fatalf("refused visitor was stored (%v)", err)
			}
		})
	}
}

type offline struct {
	Type     string `json:"type"`
	ClientID string `json:"client_id"`
	Name     string `json:"name,omitempty"`
	Email    string `json:"email,omitempty"`
	Phone    string `json:"phone,omitempty"`
	Message  string `json:"message"`
}

func TestOfflineFormRecordsUnverifiedAndNeverMerges(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	email := sessions.Identity{Kind: sessions.IdentityEmail, Value: "wang@example.com", Verified: true}
	other, _, err := h.store.ResolveCustomer(ctx, email, sessions.Customer{})
	if err != nil {
		t.Fatal(err)
	}
	v := visitorID(t)
	ws, _ := h.connect(t, v, hello{}, dialOpts{})
	send(t, ws, offline{"offline", "o-1", "Wang", "Wang@Example.com", "+86 138-1234-5678", "call me back please"})
	ack := next(t, ws, "ack")
	w := ack // the form made the customer
	send(t, ws, offline{"offline", "o-1", "Wang", "Wang@Example.com", "+86 138-1234-5678", "call me back please"})
	if again := next(t, ws, "ack"); again.Seq != ack.Seq || !again.Duplicate {
		t.Fatalf("resent form ack %s", again.raw)
	}

	if owner, _ := h.store.IdentityOwner(ctx, email); owner != other.ID {
		t.Fatalf("email moved to %s", owner)
	}
	for _, id := range []string{w.CustomerID, other.ID} {
		if c, _ := h.store.Customer(ctx, id); c.MergedInto != "" {
			t.Fatalf("customer %s merged into %s", id, c.MergedInto)
		}
	}
	ids, _ := h.store.Identities(ctx, w.CustomerID)
	var phone *sessions.Identity
	for i, id := range ids {
		switch id.Kind {
		case sessions.IdentityPhone:
			phone = &ids[i]
		case sessions.IdentityEmail:
			t.Fatalf("taken email linked to the visitor: %+v", id)
		}
	}
	if phone == nil || phone.Value != "+8613812345678" || phone.Verified {
		t.Fatalf("phone identity %+v, want unverified +8613812345678", phone)
	}
	var form struct {
		Text    string `json:"text"`
		Offline struct {
			Email string   `json:"email"`
			Taken []string `json:"taken"`
		} `json:"offline_form"`
	}
	evs := timeline(t, h.store, w.CustomerID)
	if n := count(evs, sessions.KindMessageIn); n != 1 {
		t.Fatalf("%d message_in, want 1", n)
	}
	for _, ev := range evs {
		if ev.Kind == sessions.KindMessageIn {
			_ = json.Unmarshal(ev.Payload, &form)
		}
	}
	if form.Text != "call me back please" || form.Offline.Email != "wang@example.com" || fmt.Sprint(form.Offline.Taken) != "[email]" {
		t.Fatalf("form payload %+v", form)
	}
	if c, _ := h.store.Customer(ctx, w.CustomerID); c.Name != "Wang" {
		t.Fatalf("name %q", c.Name)
	}

	// A field error is answered, not fatal.
	send(t, ws, offline{Type: "offline", ClientID: "o-2", Phone: "13812345678", Message: "x"})
	if e := next(t, ws, "error"); e.Code != "invalid" || e.ClientID != "o-2" {
		t.Fatalf("error %s", e.raw)
	}
	send(t, ws, message{"message", "still-open", "ok"})
	next(t, ws, "ack")
}

func TestVisitorNeverSeesRepOnlyEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	v, cid := h.returning(t)
	cv, _, _ := h.store.OpenConversation(ctx, cid, "", sessions.ChannelWebchat)
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	secretEvents := func() {
		for _, ev := range []sessions.Event{
			{Kind: sessions.KindNote, Channel: sessions.ChannelWebchat, Author: "rep:r-9", Payload: raw(sessions.Message{Text: "internal: VIP, careful"})},
			{Kind: sessions.KindMessageOut, Channel: sessions.ChannelSMS, Author: "rep:r-9", Payload: raw(sessions.Message{Text: "sms-only text"})},
			{Kind: sessions.KindIntegrator, Channel: sessions.ChannelAPI, Author: "integrator:crm", Payload: raw(map[string]string{"credit": "internal-score"})},
		} {
			ev.CustomerID, ev.ConversationID = cid, cv.ID
			if _, _, err := h.store.Append(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := h.store.LinkIdentity(ctx, cid, sessions.Identity{Kind: sessions.IdentityPhone, Value: "+8613900000000"}, "rep:r-9"); err != nil && !errors.Is(err, sessions.ErrIdentityTaken) {
			t.Fatal(err)
		}
	}
	secretEvents()
	assignee := "rep:r-9"
	if _, _, err := h.store.UpdateConversation(ctx, cv.ID, sessions.ConversationUpdate{Assignee: &assignee,
		Event: sessions.Event{Author: "system"}}); err != nil {
		t.Fatal(err)
	}
	appendOut(t, h.store, cid, "history end")

	ws, _ := h.connect(t, v, hello{}, dialOpts{})
	var frames []frame
	for {
		f := next(t, ws, "event")
		frames = append(frames, f)
		if f.Text == "history end" {
			break
		}
	}
	secretEvents() // and live
	appendOut(t, h.store, cid, "live end")
	for {
		f := next(t, ws, "event")
		frames = append(frames, f)
		if f.Text == "live end" {
			break
		}
	}
	for _, f := range frames {
		for _, leak := range []string{"internal", "sms-only", "r-9", "+86139", "note", "integrator", "identity"} {
			if strings.Contains(f.raw, leak) {
				t.Errorf("visitor saw %q in %s", leak, f.raw)
			}
		}
	}
}

func TestMergedWhileConnectedReconnects(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	v, _ := h.returning(t)
	ws, w := h.connect(t, v, hello{}, dialOpts{})
	other, _, err := h.store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityWeChatUnionID, Value: "union-1"}, sessions.Customer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Merge(ctx, other.ID, w.CustomerID, "wechat_unionid", "system"); err != nil {
		t.Fatal(err)
	}
	send(t, ws, message{"message", "after-merge", "hello?"})
	expectClose(t, ws, webchat.CloseCustomerMerged)
	if !wsconn.Reconnect(webchat.CloseCustomerMerged) {
		t.Fatal("CloseCustomerMerged must be a reconnect code")
	}
	ws2, w2 := h.connect(t, v, hello{After: 1, CustomerID: w.CustomerID}, dialOpts{})
	if w2.CustomerID != other.ID || !w2.Reset {
		t.Fatalf("welcome after merge %s", w2.raw)
	}
	send(t, ws2, message{"message", "after-merge", "hello?"})
	if ack := next(t, ws2, "ack"); ack.Duplicate {
		t.Fatalf("ack %s", ack.raw)
	}
}

func TestMalformedSignedUserID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	v, user := visitorID(t), strings.Repeat("u", 300)
	ws, _, err := h.dial(t, v, signedAs(user))
	if err != nil {
		t.Fatal(err)
	}
	send(t, ws, withCreds(v, signedAs(user), hello{}))
	expectClose(t, ws, webchat.CloseBadRequest)
}

func TestTypingBothWays(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	v, _ := h.returning(t)
	ws, w := h.connect(t, v, hello{}, dialOpts{})
	got := make(chan webchat.TypingSignal, 4)
	cancel := h.a.Typing().Subscribe(w.CustomerID, func(s webchat.TypingSignal) {
		if s.From == "customer" {
			got <- s
		}
	})
	defer cancel()
	send(t, ws, map[string]any{"type": "typing", "on": true})
	select {
	case s := <-got:
		if s.From != "customer" || !s.On {
			t.Fatalf("signal %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("visitor typing not published")
	}
	_ = h.a.Typing().Publish(context.Background(), webchat.TypingSignal{CustomerID: w.CustomerID, From: "rep:r-1", RepName: "Li Na", On: true})
	if f := next(t, ws, "typing"); !f.On || f.RepName != "Li Na" || strings.Contains(f.raw, "r-1") {
		t.Fatalf("typing frame %s", f.raw)
	}
	ws.Close()
	select { // the visitor vanished while typing: reps are told it stopped
	case s := <-got:
		if s.On {
			t.Fatalf("signal after close %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no typing off after disconnect")
	}
}

func TestAvailabilityPushed(t *testing.T) {
	t.Parallel()
	var agents atomic.Bool
	agents.Store(true)
	h := newHarness(t, func(c *webchat.Config, o *webchat.Options) {
		c.AvailabilityInterval = 20 * time.Millisecond
		o.Available = func(context.Context, string) bool { return agents.Load() }
	})
	ws, _ := h.connect(t, visitorID(t), hello{}, dialOpts{})
	if f := next(t, ws, "availability"); !f.Agents {
		t.Fatalf("first availability %s", f.raw)
	}
	agents.Store(false)
	if f := next(t, ws, "availability"); f.Agents {
		t.Fatalf("availability %s, want no agents", f.raw)
	}
}

// TestRecheckAvailability: a presence change pushes availability at once,
// not at the next interval (an hour here, so only the recheck can do it).
func TestRecheckAvailability(t *testing.T) {
	t.Parallel()
	var agents atomic.Bool
	h := newHarness(t, func(c *webchat.Config, o *webchat.Options) {
		c.AvailabilityInterval = time.Hour
		o.Available = func(context.Context, string) bool { return agents.Load() }
	})
	ws, _ := h.connect(t, visitorID(t), hello{}, dialOpts{})
	if f := next(t, ws, "availability"); f.Agents {
		t.Fatalf("first availability %s, want no agents", f.raw)
	}
	agents.Store(true)
	h.a.RecheckAvailability()
	if f := next(t, ws, "availability"); !f.Agents {
		t.Fatalf("availability %s after a rep came back, want agents", f.raw)
	}
}

func TestProtocolErrorsClose(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	tests := []struct {
		name    string
		visitor string
		frames  []string
	}{
		{"not json", "", []string{`{nope`}},
		{"unknown type", "", []string{`{"type":"shout"}`}},
		{"message before hello", "", []string{`{"type":"message","client_id":"x","text":"hi"}`}},
		{"hello twice", "", []string{`{"type":"hello"}`, `{"type":"hello"}`}},
		{"short visitor id", "abc", []string{`{"type":"hello"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.visitor
			if v == "" {
				v = visitorID(t)
			}
			ws, _, err := h.dial(t, v, dialOpts{inURL: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.frames {
				_ = ws.WriteMessage(websocket.TextMessage, []byte(f))
			}
			frames := expectClose(t, ws, webchat.CloseBadRequest)
			if last := frames[len(frames)-1]; last.Type != "error" || last.Code != "bad_request" {
				t.Fatalf("last frame %s", last.raw)
			}
		})
	}
}

func TestShutdownClosesWithReconnectCode(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ws, _ := h.connect(t, visitorID(t), hello{}, dialOpts{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = h.a.Close() }()
	expectClose(t, ws, webchat.CloseShutdown)
	wg.Wait()
	if _, resp, err := h.dial(t, visitorID(t), dialOpts{}); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after close: %v", resp)
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	reachable := channels.Outbound{CustomerID: "cus_1", Identities: []sessions.Identity{
		{Kind: sessions.IdentityPhone, Value: "+8613812345678"},
		{Kind: sessions.IdentityVisitor, Namespace: siteID, Value: "v"},
	}}
	if _, err := h.a.Send(ctx, reachable); err != nil {
		t.Fatalf("Send: %v", err)
	}
	for _, ids := range [][]sessions.Identity{
		nil,
		{{Kind: sessions.IdentityPhone, Value: "+8613812345678"}},
		{{Kind: sessions.IdentityVisitor, Namespace: "unconfigured", Value: "v"}},
	} {
		if _, err := h.a.Send(ctx, channels.Outbound{CustomerID: "cus_2", Identities: ids}); !errors.Is(err, channels.ErrNoAdapter) {
			t.Errorf("Send(%v) = %v, want ErrNoAdapter", ids, err)
		}
	}
	if h.a.Name() != "webchat" {
		t.Errorf("Name() = %q", h.a.Name())
	}
}

func TestCloseCodeRanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code      int
		reconnect bool
	}{
		{webchat.CloseServerError, true},
		{webchat.CloseShutdown, true},
		{webchat.CloseSlow, true},
		{webchat.CloseTooManyRequests, true},
		{webchat.CloseCustomerMerged, true},
		{webchat.CloseBadRequest, false},
		{webchat.CloseIdentityRefused, false},
		{webchat.CloseMessageTooBig, false},
		{websocket.CloseAbnormalClosure, true},
		{websocket.CloseGoingAway, true},
	}
	for _, tt := range tests {
		if got := wsconn.Reconnect(tt.code); got != tt.reconnect {
			t.Errorf("Reconnect(%d) = %v", tt.code, got)
		}
		if tt.code >= 4000 && (tt.code < 4500) != tt.reconnect {
			t.Errorf("code %d is in the wrong range", tt.code)
		}
		if tt.code >= 4000 && webchat.CloseName(tt.code) == "" {
			t.Errorf("code %d has no name", tt.code)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  webchat.Config
		bad  []string
	}{
		{"zero", webchat.Config{}, nil},
		{"good", webchat.Config{TrustedProxies: []string{"10.0.0.0/8", "::1", "fd00::/8"}, Sites: []webchat.Site{{ID: "a", AllowedOrigins: []string{"https://x.com", "https://*.x.com", "http://localhost:8080", "*"}}}}, nil},
		{"everything wrong", webchat.Config{MessageBufferSize: -1, TrustedProxies: []string{"10.0.0.0/33", "proxy.local"}, Sites: []webchat.Site{
			{ID: "bad id", AllowedOrigins: []string{"x.com", "https://x.com/path", "https://a*.x.com"}, MaxMessageBytes: 1 << 20, RatePerMinute: -1, NewVisitorsBurst: -1},
			{ID: "dup"}, {ID: "dup"},
		}}, []string{"message_buffer_size", "bad id", `"x.com"`, "/path", "a*.x.com", "max_message_bytes", "rate_per_minute", "new_visitors_burst", "twice", "10.0.0.0/33", "proxy.local"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != (len(tt.bad) > 0) {
				t.Fatalf("Validate() = %v", err)
			}
			for _, b := range tt.bad {
				if !strings.Contains(err.Error(), b) {
					t.Errorf("error does not mention %s: %v", b, err)
				}
			}
		})
	}
	if _, err := webchat.New(webchat.Config{}, webchat.Options{}); err == nil {
		t.Error("New without a store succeeded")
	}
}

// TestOnline: a customer is online while one of their widgets follows
// the timeline, through two tabs, and offline once both closed.
func TestOnline(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	v, cust := h.returning(t)
	if h.a.Online(cust) {
		t.Fatal("online before any socket")
	}
	waitOnline := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for h.a.Online(cust) != want {
			if time.Now().After(deadline) {
				t.Fatalf("Online = %v, want %v", !want, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ws1, _ := h.connect(t, v, hello{Type: "hello"}, dialOpts{})
	ws2, _ := h.connect(t, v, hello{Type: "hello"}, dialOpts{})
	waitOnline(true)
	if h.a.Online("cus_other") {
		t.Error("another customer is online")
	}
	_ = ws1.Close()
	_ = ws2.Close()
	waitOnline(false)
}
