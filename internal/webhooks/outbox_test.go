package webhooks

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

func TestMemoryOutbox(t *testing.T) {
	t.Parallel()
	runOutbox(t, func(t *testing.T) Outbox { return NewMemoryOutbox() })
}

func TestBoltOutbox(t *testing.T) {
	t.Parallel()
	runOutbox(t, func(t *testing.T) Outbox {
		o, err := OpenBoltOutbox(filepath.Join(t.TempDir(), "webhooks.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = o.Close() })
		return o
	})
}

func TestBoltOutboxReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	ctx := context.Background()
	o, err := OpenBoltOutbox(path)
	if err != nil {
		t.Fatal(err)
	}
	ep := Endpoint{ID: "crm", URL: "https://x", Secret: "s", CreatedAt: time.Unix(0, 0)}
	now := time.Now().UTC()
	if err := o.PutEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	d := testDelivery(ep, "evt_1", now)
	if _, err := o.Enqueue(ctx, []Delivery{d}, map[string]uint64{"cus_1": 7}, now); err != nil {
		t.Fatal(err)
	}
	_ = o.Close()
	if o, err = OpenBoltOutbox(path); err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	due, _ := o.Due(ctx, now, 10)
	seq, known, _ := o.Cursor(ctx, "cus_1")
	cp, _ := o.Checkpoint(ctx)
	if len(due) != 1 || due[0].ID != d.ID || seq != 7 || !known || !cp.Equal(now) {
		t.Fatalf("after reopen: due %v, cursor %d %v, checkpoint %v", due, seq, known, cp)
	}
}

func testDelivery(ep Endpoint, eventID string, now time.Time) Delivery {
	d, err := newDelivery(ep, sessions.Event{ID: eventID, CustomerID: "cus_1", Kind: sessions.KindMessageIn, Time: now}, now)
	if err != nil {
		panic(err)
	}
	return d
}

// runOutbox is the conformance suite every Outbox passes.
func runOutbox(t *testing.T, open func(t *testing.T) Outbox) {
	ctx := context.Background()
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	t.Run("endpoints", func(t *testing.T) {
		o := open(t)
		if _, err := o.Endpoint(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing endpoint: %v", err)
		}
		for _, id := range []string{"b", "a"} {
			if err := o.PutEndpoint(ctx, Endpoint{ID: id, URL: "https://" + id, EventTypes: []string{"note"}}); err != nil {
				t.Fatal(err)
			}
		}
		eps, err := o.Endpoints(ctx)
		if err != nil || len(eps) != 2 || eps[0].ID != "a" || eps[1].EventTypes[0] != "note" {
			t.Fatalf("endpoints %+v %v", eps, err)
		}
		if err := o.DeleteEndpoint(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := o.DeleteEndpoint(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})

	t.Run("enqueue is idempotent and moves cursors", func(t *testing.T) {
		o := open(t)
		ep := Endpoint{ID: "crm", URL: "https://x", Secret: "s"}
		_ = o.PutEndpoint(ctx, ep)
		d1, d2 := testDelivery(ep, "evt_1", base), testDelivery(ep, "evt_2", base.Add(time.Second))
		orphan := testDelivery(Endpoint{ID: "gone"}, "evt_3", base)
		n, err := o.Enqueue(ctx, []Delivery{d1, d2, orphan}, map[string]uint64{"cus_1": 2}, base)
		if err != nil || n != 2 {
			t.Fatalf("enqueue: %d %v", n, err)
		}
		n, err = o.Enqueue(ctx, []Delivery{d1, d2}, map[string]uint64{"cus_1": 1}, base.Add(-time.Hour))
		if err != nil || n != 0 {
			t.Fatalf("re-enqueue: %d %v", n, err)
		}
		if seq, known, _ := o.Cursor(ctx, "cus_1"); seq != 2 || !known {
			t.Fatalf("cursor went back: %d", seq)
		}
		if cp, _ := o.Checkpoint(ctx); !cp.Equal(base) {
			t.Fatalf("checkpoint %v went back", cp)
		}
		if _, known, _ := o.Cursor(ctx, "cus_2"); known {
			t.Fatal("unknown customer known")
		}
		_ = o.Touch(ctx, "cus_2")
		_ = o.Touch(ctx, "cus_1")
		var got []string
		_ = o.EachCursor(ctx, func(c string, seq uint64) error { got = append(got, fmt.Sprintf("%s %d", c, seq)); return nil })
		if fmt.Sprint(got) != "[cus_1 2 cus_2 0]" {
			t.Fatalf("cursors %v (Touch must not reset a known cursor)", got)
		}
	})

	t.Run("due, record, attempts log", func(t *testing.T) {
		o := open(t)
		ep := Endpoint{ID: "crm", URL: "https://x", Secret: "s"}
		_ = o.PutEndpoint(ctx, ep)
		var ds []Delivery
		for i := range 5 {
			d := testDelivery(ep, fmt.Sprintf("evt_%d", i), base.Add(time.Duration(i)*time.Second))
			d.NextAttempt = base.Add(time.Duration(5-i) * time.Second) // reverse order
			ds = append(ds, d)
		}
		_, _ = o.Enqueue(ctx, ds, nil, time.Time{})
		due, err := o.Due(ctx, base.Add(3*time.Second), 10)
		if err != nil || len(due) != 3 || due[0].EventID != "evt_4" || due[2].EventID != "evt_2" {
			t.Fatalf("due %v %v", ids(due), err)
		}
		// A failed attempt reschedules; a success removes it from due.
		d := due[0]
		d.Attempts, d.NextAttempt, d.LastStatus = 1, base.Add(time.Hour), 500
		if err := o.Record(ctx, d, Attempt{DeliveryID: d.ID, EndpointID: ep.ID, N: 1, At: base, Status: 500}); err != nil {
			t.Fatal(err)
		}
		d2 := due[1]
		d2.Attempts, d2.State, d2.DeliveredAt = 1, StateDelivered, base.Add(time.Second)
		if err := o.Record(ctx, d2, Attempt{DeliveryID: d2.ID, EndpointID: ep.ID, N: 1, At: base.Add(time.Second), Status: 200, OK: true}); err != nil {
			t.Fatal(err)
		}
		due, _ = o.Due(ctx, base.Add(3*time.Second), 10)
		if len(due) != 1 || due[0].EventID != "evt_2" {
			t.Fatalf("due after record %v", ids(due))
		}
		if got, _ := o.Delivery(ctx, d.ID); got.Attempts != 1 || got.LastStatus != 500 {
			t.Fatalf("stored %+v", got)
		}
		as, next, err := o.Attempts(ctx, ep.ID, "", 1)
		if err != nil || len(as) != 1 || !as[0].OK || next == "" {
			t.Fatalf("attempts page 1: %+v %q %v", as, next, err)
		}
		as, next, _ = o.Attempts(ctx, ep.ID, next, 1)
		if len(as) != 1 || as[0].Status != 500 || next != "" {
			t.Fatalf("attempts page 2: %+v %q", as, next)
		}
	})

	t.Run("listing pages newest first", func(t *testing.T) {
		o := open(t)
		ep := Endpoint{ID: "crm", URL: "https://x", Secret: "s"}
		_ = o.PutEndpoint(ctx, ep)
		_ = o.PutEndpoint(ctx, Endpoint{ID: "crm2"})
		var ds []Delivery
		for i := range 7 {
			ds = append(ds, testDelivery(ep, fmt.Sprintf("evt_%d", i), base.Add(time.Duration(i)*time.Minute)))
		}
		ds = append(ds, testDelivery(Endpoint{ID: "crm2"}, "evt_x", base))
		_, _ = o.Enqueue(ctx, ds, nil, time.Time{})
		var all []string
		cursor := ""
		for {
			page, next, err := o.Deliveries(ctx, DeliveryQuery{EndpointID: "crm", Cursor: cursor, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range page {
				all = append(all, d.EventID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if fmt.Sprint(all) != "[evt_6 evt_5 evt_4 evt_3 evt_2 evt_1 evt_0]" {
			t.Fatalf("pages %v", all)
		}
		page, _, _ := o.Deliveries(ctx, DeliveryQuery{EndpointID: "crm", State: StateDelivered})
		if len(page) != 0 {
			t.Fatalf("state filter: %v", ids(page))
		}
	})

	t.Run("disable dead-letters pending, replay revives", func(t *testing.T) {
		o := open(t)
		ep := Endpoint{ID: "crm", URL: "https://x", Secret: "s"}
		_ = o.PutEndpoint(ctx, ep)
		d := testDelivery(ep, "evt_1", base)
		_, _ = o.Enqueue(ctx, []Delivery{d}, nil, time.Time{})
		got, disabled, err := o.MarkEndpoint(ctx, "crm", false, base, time.Hour)
		if err != nil || disabled || !got.FailingSince.Equal(base) {
			t.Fatalf("first failure: %+v %v %v", got, disabled, err)
		}
		if _, disabled, _ = o.MarkEndpoint(ctx, "crm", false, base.Add(30*time.Minute), time.Hour); disabled {
			t.Fatal("disabled too early")
		}
		got, disabled, err = o.MarkEndpoint(ctx, "crm", false, base.Add(time.Hour), time.Hour)
		if err != nil || !disabled || !got.Disabled || got.DisabledReason == "" {
			t.Fatalf("after an hour of failures: %+v %v %v", got, disabled, err)
		}
		if _, disabled, _ = o.MarkEndpoint(ctx, "crm", false, base.Add(2*time.Hour), time.Hour); disabled {
			t.Fatal("disabled twice")
		}
		if due, _ := o.Due(ctx, base.Add(time.Hour), 10); len(due) != 0 {
			t.Fatalf("disabled endpoint still due: %v", ids(due))
		}
		dead, _, _ := o.Deliveries(ctx, DeliveryQuery{EndpointID: "crm", State: StateDead})
		if len(dead) != 1 || dead[0].DeadReason != "endpoint disabled" {
			t.Fatalf("dead letters %+v", dead)
		}
		if _, err := o.Replay(ctx, dead[0].ID, base.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Replay(ctx, dead[0].ID, base.Add(3*time.Hour)); !errors.Is(err, ErrConflict) {
			t.Fatalf("replaying a pending delivery: %v", err)
		}
		due, _ := o.Due(ctx, base.Add(3*time.Hour), 10)
		if len(due) != 1 || !due[0].WindowStart.Equal(base.Add(3*time.Hour)) {
			t.Fatalf("replayed %+v", due)
		}
		if got, _, _ = o.MarkEndpoint(ctx, "crm", true, base.Add(4*time.Hour), time.Hour); !got.FailingSince.IsZero() {
			t.Fatal("success did not clear failing_since")
		}
	})

	t.Run("delete endpoint drops its deliveries", func(t *testing.T) {
		o := open(t)
		ep := Endpoint{ID: "crm", URL: "https://x", Secret: "s"}
		_ = o.PutEndpoint(ctx, ep)
		d := testDelivery(ep, "evt_1", base)
		_, _ = o.Enqueue(ctx, []Delivery{d}, nil, time.Time{})
		_ = o.Record(ctx, d, Attempt{DeliveryID: d.ID, EndpointID: "crm", N: 1, At: base})
		if err := o.DeleteEndpoint(ctx, "crm"); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Delivery(ctx, d.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delivery survives its endpoint: %v", err)
		}
		if due, _ := o.Due(ctx, base.Add(time.Hour), 10); len(due) != 0 {
			t.Fatal("due survives its endpoint")
		}
		_ = o.PutEndpoint(ctx, ep)
		if as, _, _ := o.Attempts(ctx, "crm", "", 10); len(as) != 0 {
			t.Fatal("log survives its endpoint")
		}
	})

	t.Run("prune", func(t *testing.T) {
		o := open(t)
		ep := Endpoint{ID: "crm", URL: "https://x", Secret: "s"}
		_ = o.PutEndpoint(ctx, ep)
		old, fresh, pending := testDelivery(ep, "evt_1", base), testDelivery(ep, "evt_2", base), testDelivery(ep, "evt_3", base)
		_, _ = o.Enqueue(ctx, []Delivery{old, fresh, pending}, nil, time.Time{})
		old.State, old.DeliveredAt = StateDelivered, base
		fresh.State, fresh.DeliveredAt = StateDelivered, base.Add(48*time.Hour)
		_ = o.Record(ctx, old, Attempt{DeliveryID: old.ID, EndpointID: "crm", N: 1, At: base})
		_ = o.Record(ctx, fresh, Attempt{DeliveryID: fresh.ID, EndpointID: "crm", N: 1, At: base.Add(48 * time.Hour)})
		n, err := o.Prune(ctx, base.Add(24*time.Hour), base.Add(24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("pruned %d %v", n, err)
		}
		if _, err := o.Delivery(ctx, old.ID); !errors.Is(err, ErrNotFound) {
			t.Fatal("old delivery kept")
		}
		for _, id := range []string{fresh.ID, pending.ID} {
			if _, err := o.Delivery(ctx, id); err != nil {
				t.Fatalf("%s pruned: %v", id, err)
			}
		}
		if as, _, _ := o.Attempts(ctx, "crm", "", 10); len(as) != 1 {
			t.Fatalf("log after prune: %+v", as)
		}
	})
}

func ids(ds []Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.EventID)
	}
	return out
}
