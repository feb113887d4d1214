package webchat_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/channels/webchat"
	"github.com/omnigate/omnigate/sessions"
)

// countingStore counts the customers the adapter creates.
type countingStore struct {
	sessions.Store
	created atomic.Int64
}

func (s *countingStore) ResolveCustomer(ctx context.Context, id sessions.Identity, seed sessions.Customer) (sessions.Customer, bool, error) {
	c, created, err := s.Store.ResolveCustomer(ctx, id, seed)
	if created {
		s.created.Add(1)
	}
	return c, created, err
}

// clock is a time the test moves.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestUnsignedSocketNeverSpeaksForSignedUser: a visitor id that signed in
// as u-42 carries nothing of u-42 into a socket without the signature.
func TestUnsignedSocketNeverSpeaksForSignedUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	v := visitorID(t)
	ws, w := h.connect(t, v, hello{}, signedAs("u-42"))
	send(t, ws, message{"message", "s-1", "u-42 on the laptop"})
	next(t, ws, "ack")
	ws2, w2 := h.connect(t, visitorID(t), hello{}, signedAs("u-42")) // u-42's phone
	send(t, ws2, message{"message", "s-2", "u-42 on the phone"})
	next(t, ws2, "ack")
	if w2.CustomerID != w.CustomerID {
		t.Fatalf("u-42 has two customers: %s, %s", w.CustomerID, w2.CustomerID)
	}
	appendOut(t, h.store, w.CustomerID, "reply to u-42")

	// Signed out, same browser: the visitor id without the signature, in
	// both forms, twice (the second time the anonymous customer exists).
	var anon string
	for round, o := range []dialOpts{{}, {inURL: true}} {
		ws3, w3 := h.connect(t, v, hello{CustomerID: w.CustomerID, After: 3}, o)
		if w3.CustomerID == w.CustomerID || w3.Verified || !w3.Reset || w3.CustomerID != anon {
			t.Fatalf("round %d: unsigned welcome %s, want customer %q (not %s), reset", round, w3.raw, anon, w.CustomerID)
		}
		text := fmt.Sprintf("anonymous %d", round)
		send(t, ws3, message{"message", fmt.Sprintf("anon-%d", round), text})
		ack := next(t, ws3, "ack")
		for {
			f := next(t, ws3, "event")
			if strings.Contains(f.raw, "u-42") {
				t.Fatalf("unsigned socket saw %s", f.raw)
			}
			if f.Text == text {
				break
			}
		}
		anon = ack.CustomerID
		ws3.Close()
	}
	if anon == "" || anon == w.CustomerID {
		t.Fatalf("unsigned messages stored for customer %q", anon)
	}
	for _, ev := range timeline(t, h.store, w.CustomerID) {
		if strings.Contains(string(ev.Payload), "anonymous") {
			t.Fatalf("an unsigned message landed on u-42's customer: %s", ev.Payload)
		}
	}
	// Signing in again on the browser is u-42 again; what was written
	// unsigned is not merged in.
	_, w4 := h.connect(t, v, hello{}, signedAs("u-42"))
	if w4.CustomerID != w.CustomerID {
		t.Fatalf("signed in again: customer %s, want %s", w4.CustomerID, w.CustomerID)
	}
	if c, _ := h.store.Customer(context.Background(), anon); c.MergedInto != "" {
		t.Fatalf("anonymous customer merged into %s", c.MergedInto)
	}
}

// TestUnsignedSocketRefusedWhenEveryIdentityIsSigned: a rep merged the
// visitor's unsigned twin into a signed-in user too; the socket is
// refused rather than given that user's customer.
func TestUnsignedSocketRefusedWhenEveryIdentityIsSigned(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	v := visitorID(t)
	h.connect(t, v, hello{}, signedAs("u-1"))
	ws, _ := h.connect(t, v, hello{}, dialOpts{})
	send(t, ws, message{"message", "a-1", "anonymous"})
	anon := next(t, ws, "ack").CustomerID
	ws.Close()
	_, w := h.connect(t, visitorID(t), hello{}, signedAs("u-2"))
	if _, err := h.store.Merge(ctx, w.CustomerID, anon, "rep_decision", "rep:r-1"); err != nil {
		t.Fatal(err)
	}
	ws2, _, err := h.dial(t, v, dialOpts{})
	if err != nil {
		t.Fatal(err)
	}
	send(t, ws2, withCreds(v, dialOpts{}, hello{}))
	frames := expectClose(t, ws2, webchat.CloseIdentityRefused)
	if len(frames) != 1 || frames[0].Code != "identity_refused" {
		t.Fatalf("frames before close: %+v", frames)
	}
}

// TestHelloCreatesNoCustomer: a socket that only says hello stores
// nothing; the first message makes exactly one customer.
func TestHelloCreatesNoCustomer(t *testing.T) {
	t.Parallel()
	var st *countingStore
	h := newHarness(t, func(_ *webchat.Config, o *webchat.Options) {
		st = &countingStore{Store: o.Store}
		o.Store = st
	})
	for range 100 {
		ws, w := h.connect(t, visitorID(t), hello{}, dialOpts{}) // welcome: hello handled
		if w.CustomerID != "" || w.LastSeq != 0 {
			t.Fatalf("welcome %s for a new visitor", w.raw)
		}
		ws.Close()
	}
	if n := st.created.Load(); n != 0 {
		t.Fatalf("100 hellos created %d customers", n)
	}
	v := visitorID(t)
	ws, _ := h.connect(t, v, hello{}, dialOpts{})
	send(t, ws, message{"message", "m-1", "hello?"})
	// The ack and the message's echo (the socket follows the timeline
	// from the moment the message made the customer) come in either order.
	var ack frame
	var echoed []uint64
	for ack.Type == "" || !slices.Contains(echoed, ack.Seq) {
		f, err := read(t, ws)
		if err != nil {
			t.Fatalf("waiting for the ack and the echo: %v (ack %s, events %v)", err, ack.raw, echoed)
		}
		switch f.Type {
		case "ack":
			ack = f
		case "event":
			echoed = append(echoed, f.Seq)
		case "error":
			t.Fatalf("got %s", f.raw)
		}
	}
	send(t, ws, message{"message", "m-2", "anyone?"})
	if ack2 := next(t, ws, "ack"); ack2.CustomerID != ack.CustomerID {
		t.Fatalf("acks name %s then %s", ack.CustomerID, ack2.CustomerID)
	}
	if n := st.created.Load(); n != 1 {
		t.Fatalf("%d customers after the messages, want 1", n)
	}
	owner, err := h.store.IdentityOwner(context.Background(), sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: siteID, Value: v})
	if err != nil || owner != ack.CustomerID {
		t.Fatalf("ack %s, visitor's customer %q (%v)", ack.raw, owner, err)
	}
	// Typing before the first message goes nowhere and stores nothing.
	ws2, _ := h.connect(t, visitorID(t), hello{}, dialOpts{})
	send(t, ws2, map[string]any{"type": "typing", "on": true})
	send(t, ws2, message{"message", "m-1", "typed first"})
	next(t, ws2, "ack")
	if n := st.created.Load(); n != 2 {
		t.Fatalf("%d customers, want 2", n)
	}
}

// TestNewVisitorsLimitedPerAddress: past the burst, a new visitor from the
// same address is refused until the window moves on; visitors who already
// have a customer are not held up.
func TestNewVisitorsLimitedPerAddress(t *testing.T) {
	t.Parallel()
	clk := newClock()
	var st *countingStore
	h := newHarness(t, func(c *webchat.Config, o *webchat.Options) {
		c.Sites[0].NewVisitorsPerMinute, c.Sites[0].NewVisitorsBurst = 1, 3
		o.Now = clk.now
		st = &countingStore{Store: o.Store}
		o.Store = st
	})
	write := func(v string) *websocket.Conn {
		ws, _ := h.connect(t, v, hello{}, dialOpts{})
		send(t, ws, message{"message", "m-1", "first words"})
		return ws
	}
	var first string
	for i := range 3 {
		v := visitorID(t)
		next(t, write(v), "ack")
		if i == 0 {
			first = v
		}
	}
	ws := write(visitorID(t))
	frames := expectClose(t, ws, webchat.CloseTooManyRequests)
	if len(frames) == 0 || frames[len(frames)-1].Code != "too_many_requests" || frames[len(frames)-1].ClientID != "" {
		t.Fatalf("frames before close: %+v (want too_many_requests without client_id: the widget resends)", frames)
	}
	if n := st.created.Load(); n != 3 {
		t.Fatalf("%d customers, want 3", n)
	}
	next(t, write(first), "ack") // not new

	clk.advance(time.Minute)
	next(t, write(visitorID(t)), "ack")
	if n := st.created.Load(); n != 4 {
		t.Fatalf("%d customers a minute later, want 4", n)
	}
}

// hmacHex is the site back end's side, written out as the README shows it.
func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// TestCredentialsInHello: the visitor id and signed user travel in hello,
// with only the site in the URL.
func TestCredentialsInHello(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	exp := time.Now().Add(time.Hour).Unix()
	ws, _ := h.connect(t, visitorID(t), hello{}, dialOpts{userID: "u-7",
		userHash: hmacHex(secret, fmt.Sprintf("u-7|%d", exp)), userExpires: exp})
	send(t, ws, message{"message", "m-1", "signed"})
	ack := next(t, ws, "ack")
	owner, err := h.store.IdentityOwner(context.Background(), sessions.Identity{Kind: sessions.IdentitySiteUser, Namespace: siteID, Value: "u-7"})
	if err != nil || owner != ack.CustomerID {
		t.Fatalf("u-7's customer %q (%v), ack %s", owner, err, ack.raw)
	}
	ws2, w2 := h.connect(t, visitorID(t), hello{}, dialOpts{})
	if w2.Verified {
		t.Fatalf("anonymous welcome %s", w2.raw)
	}
	send(t, ws2, message{"message", "m-1", "anonymous"})
	next(t, ws2, "ack")
}

// TestDeprecatedURLForm: embeds made before keep working: credentials in
// the URL, a signature without expiry.
func TestDeprecatedURLForm(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	_, w := h.connect(t, visitorID(t), hello{}, dialOpts{inURL: true, userID: "u-8", userHash: webchat.SignForever(secret, "u-8")})
	if !w.Verified || w.CustomerID == "" {
		t.Fatalf("welcome %s, want verified", w.raw)
	}
	// The unexpiring signature in hello too.
	_, w2 := h.connect(t, visitorID(t), hello{}, dialOpts{userID: "u-8", userHash: webchat.SignForever(secret, "u-8")})
	if !w2.Verified || w2.CustomerID != w.CustomerID {
		t.Fatalf("welcome %s, want verified %s", w2.raw, w.CustomerID)
	}
	ws3, _ := h.connect(t, visitorID(t), hello{}, dialOpts{inURL: true})
	send(t, ws3, message{"message", "m-1", "anonymous"})
	next(t, ws3, "ack")
}

// TestSignatureRefused: an expired signature, a signature without expiry
// where the site requires one, and credentials in both places.
func TestSignatureRefused(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := newHarness(t, func(c *webchat.Config, o *webchat.Options) {
		o.Now = clk.now
		c.Sites = append(c.Sites, webchat.Site{ID: "strict", AllowedOrigins: []string{origin}, Secret: secret, RequireUserExpires: true})
	})
	exp := clk.now().Add(time.Minute)
	valid := dialOpts{userID: "u-9", userHash: webchat.Sign(secret, "u-9", exp), userExpires: exp.Unix()}
	refused := func(name string, visitor string, o dialOpts, hl hello, code int) {
		t.Helper()
		ws, _, err := h.dial(t, visitor, o)
		if err != nil {
			t.Fatal(err)
		}
		send(t, ws, hl)
		frames := expectClose(t, ws, code)
		if len(frames) != 1 || frames[0].Type != "error" {
			t.Fatalf("%s: frames before close: %+v", name, frames)
		}
		if _, err := h.store.IdentityOwner(context.Background(), sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: siteID, Value: visitor}); !errors.Is(err, sessions.ErrNotFound) {
			t.Fatalf("%s: visitor stored (%v)", name, err)
		}
	}
	v := visitorID(t)
	clk.advance(59 * time.Second)
	if _, w := h.connect(t, visitorID(t), hello{}, valid); !w.Verified {
		t.Fatalf("welcome %s before expiry", w.raw)
	}
	clk.advance(time.Second)
	refused("expired", v, valid, withCreds(v, valid, hello{}), webchat.CloseIdentityRefused)
	both := valid
	both.inURL = true
	hl := withCreds(v, dialOpts{}, hello{})
	refused("credentials twice", v, both, hl, webchat.CloseBadRequest)

	// The strict site refuses the unexpiring form.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.srv.URL, "http")+"/?site=strict",
		map[string][]string{"Origin": {origin}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	send(t, ws, withCreds(visitorID(t), dialOpts{userID: "u-9", userHash: webchat.SignForever(secret, "u-9")}, hello{}))
	expectClose(t, ws, webchat.CloseIdentityRefused)
}
