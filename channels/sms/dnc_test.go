package sms

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/testredis"
	"github.com/omnigate/omnigate/sessions"
)

// runDoNotContact is the conformance suite every DoNotContact passes.
func runDoNotContact(t *testing.T, d DoNotContact) {
	ctx := context.Background()
	const n = "+8613812345678"
	if _, ok, err := d.Lookup(ctx, n); err != nil || ok {
		t.Fatalf("fresh list: listed=%v err=%v", ok, err)
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if changed, err := d.OptOut(ctx, n, OptOut{At: at, Keyword: "STOP", Provider: "twilio", MessageID: "twilio:SM1"}); err != nil || !changed {
		t.Fatalf("first opt-out: changed=%v err=%v", changed, err)
	}
	if changed, err := d.OptOut(ctx, n, OptOut{At: at.Add(time.Hour), Keyword: "TD"}); err != nil || changed {
		t.Fatalf("second opt-out: changed=%v err=%v", changed, err)
	}
	r, ok, err := d.Lookup(ctx, n)
	if err != nil || !ok || r.Keyword != "STOP" || !r.At.Equal(at) || r.MessageID != "twilio:SM1" {
		t.Fatalf("lookup: %+v %v %v (the first opt-out must stand)", r, ok, err)
	}
	if _, ok, _ := d.Lookup(ctx, "+8613812345679"); ok {
		t.Fatal("another number is listed")
	}
	if changed, err := d.OptIn(ctx, n); err != nil || !changed {
		t.Fatalf("opt-in: changed=%v err=%v", changed, err)
	}
	if changed, err := d.OptIn(ctx, n); err != nil || changed {
		t.Fatalf("second opt-in: changed=%v err=%v", changed, err)
	}
	if _, ok, _ := d.Lookup(ctx, n); ok {
		t.Fatal("still listed after opt-in")
	}
	// Concurrent STOPs from one number: exactly one changes the list.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := d.OptOut(ctx, "+8613900000000", OptOut{At: at, Keyword: "STOP"}); err == nil && c {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent opt-outs changed the list, want 1", wins.Load())
	}
}

func TestMemoryDoNotContact(t *testing.T) {
	t.Parallel()
	runDoNotContact(t, NewMemoryDoNotContact())
}

func TestBoltDoNotContact(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sms.db")
	d, err := OpenBoltDoNotContact(path)
	if err != nil {
		t.Fatal(err)
	}
	runDoNotContact(t, d)
	// Durable: reopen and the concurrent opt-out is still there.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = OpenBoltDoNotContact(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, ok, err := d.Lookup(context.Background(), "+8613900000000"); err != nil || !ok {
		t.Fatalf("after reopen: listed=%v err=%v", ok, err)
	}
}

// TestValkeyDoNotContact runs against a real Redis (see testredis).
func TestValkeyDoNotContact(t *testing.T) {
	addr := testredis.Addr(t)
	d, err := OpenValkeyDoNotContact(sessions.ValkeyOptions{Addrs: []string{addr}, KeyPrefix: "smstest" + sessions.NewID("")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	runDoNotContact(t, d)
}
