package contact

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// TestRecorder: inbound touches from the feed on the ledger, once however
// many recorders (nodes) see them; merges applied to the ledger; a merge's
// copies not counted twice. Each assertion waits for the watermark of the
// events it is about.
func TestRecorder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := sessions.NewMemoryStore()
	t.Cleanup(func() { store.Close() })
	led := NewMemoryLedger(LedgerOptions{})
	// Two nodes on one ledger, as gateways on one Valkey.
	var recs []*Recorder
	for range 2 {
		r, err := NewRecorder(ctx, store, led, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		recs = append(recs, r)
	}
	customer := func(visitor string) string {
		c, _, err := store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "site", Value: visitor}, sessions.Customer{})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	appendEv := func(ev sessions.Event) sessions.Event {
		t.Helper()
		if ev.Payload == nil {
			ev.Payload, _ = json.Marshal(sessions.Message{Text: "hi"})
		}
		got, _, err := store.Append(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	wait := func(customerID string) {
		t.Helper()
		last, err := store.LastSeq(ctx, customerID)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for _, r := range recs {
			if err := r.WaitHandled(wctx, customerID, last); err != nil {
				t.Fatal(err)
			}
		}
	}
	touches := func(customerID string) []Touch {
		t.Helper()
		ts, err := led.Touches(ctx, customerID, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}

	a, b := customer("a"), customer("b")
	inWeb := appendEv(sessions.Event{CustomerID: a, Kind: sessions.KindMessageIn, Channel: sessions.ChannelWebchat, Author: "customer"})
	call := appendEv(sessions.Event{CustomerID: a, Kind: sessions.KindCall, Channel: sessions.ChannelVoice, Author: "customer", Payload: json.RawMessage(`{}`)})
	// Not inbound touches: the dialer's call, a rep's message, a note.
	appendEv(sessions.Event{CustomerID: a, Kind: sessions.KindCall, Channel: sessions.ChannelVoice, Author: "system", Payload: json.RawMessage(`{}`)})
	appendEv(sessions.Event{CustomerID: a, Kind: sessions.KindMessageOut, Channel: sessions.ChannelWebchat, Author: "rep:alice"})
	appendEv(sessions.Event{CustomerID: a, Kind: sessions.KindNote, Channel: sessions.ChannelSystem, Author: "rep:alice"})
	inSMS := appendEv(sessions.Event{CustomerID: b, Kind: sessions.KindMessageIn, Channel: sessions.ChannelSMS, Author: "customer"})
	wait(a)
	wait(b)

	got := touches(a)
	want := []Touch{
		{ID: inWeb.ID, CustomerID: a, Channel: sessions.ChannelWebchat, Direction: Inbound, Purpose: PurposeService, At: inWeb.Time},
		{ID: call.ID, CustomerID: a, Channel: sessions.ChannelVoice, Direction: Inbound, Purpose: PurposeService, At: call.Time},
	}
	if !slices.EqualFunc(got, want, sameTouch) {
		t.Fatalf("touches of a = %+v, want %+v", got, want)
	}
	if got := touches(b); len(got) != 1 || got[0].ID != inSMS.ID || got[0].Channel != sessions.ChannelSMS {
		t.Fatalf("touches of b = %+v", got)
	}

	// b merged into a: b's touch counts for a, and the copy of b's
	// message on a's timeline is not a second touch.
	if _, err := store.Merge(ctx, a, b, "admin:test", "admin:test"); err != nil {
		t.Fatal(err)
	}
	wait(a)
	got = touches(a)
	if len(got) != 3 || !slices.ContainsFunc(got, func(x Touch) bool { return x.ID == inSMS.ID }) {
		t.Fatalf("touches of a after the merge = %+v", got)
	}
}

// sameTouch compares touches at the ledgers' resolution, microseconds.
func sameTouch(x, y Touch) bool {
	x.At, y.At = x.At.Truncate(time.Microsecond), y.At.Truncate(time.Microsecond)
	return x.At.Equal(y.At) && x.ID == y.ID && x.CustomerID == y.CustomerID && x.Channel == y.Channel &&
		x.Direction == y.Direction && x.Purpose == y.Purpose && x.Topic == y.Topic && x.Outcome == y.Outcome
}
