package sessions

import (
	"context"
	"errors"
	"testing"
)

func TestWatchFunc(t *testing.T) {
	s := NewMemoryStore()
	defer s.Close()
	fan, err := NewFanout(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fan.WatchFunc("", func(Event, error) {}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("WatchFunc without a customer: %v", err)
	}
	c := newCustomer(t, s)
	other := newCustomer(t, s)
	got := make(chan Event, 100)
	errs := make(chan error, 10)
	cancel, err := fan.WatchFunc(c.ID, func(ev Event, err error) {
		if err != nil {
			errs <- err
			return
		}
		got <- ev
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for range 5 {
		mustAppend(t, s, msg(other.ID, ""))
		want = append(want, mustAppend(t, s, msg(c.ID, "")).Seq)
	}
	for _, w := range want {
		if ev := <-got; ev.Seq != w || ev.CustomerID != c.ID {
			t.Fatalf("got seq %d of %s, want %d of %s", ev.Seq, ev.CustomerID, w, c.ID)
		}
	}
	// A feed cut off as slow is reported, and the watcher stays.
	fan.hub.dropAll(ErrSlow)
	if err := <-errs; !errors.Is(err, ErrSlow) {
		t.Fatalf("after dropAll: %v", err)
	}
	ev := mustAppend(t, s, msg(c.ID, ""))
	if g := <-got; g.Seq != ev.Seq {
		t.Fatalf("after ErrSlow got seq %d, want %d", g.Seq, ev.Seq)
	}
	// Close reports ErrClosed; cancel afterwards is harmless.
	fan.Close()
	if err := <-errs; !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	cancel()

	// cancel: no call after it returns.
	fan2, err := NewFanout(s)
	if err != nil {
		t.Fatal(err)
	}
	defer fan2.Close()
	cancel2, err := fan2.WatchFunc(c.ID, func(Event, error) { t.Error("called after cancel") })
	if err != nil {
		t.Fatal(err)
	}
	cancel2()
	mustAppend(t, s, msg(c.ID, ""))
	sub, err := fan2.Watch(context.Background(), c.ID) // the dispatch has moved on
	if err != nil {
		t.Fatal(err)
	}
	sub.Close()
}
