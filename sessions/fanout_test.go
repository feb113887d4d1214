package sessions

import (
	"errors"
	"testing"
	"testing/synctest"
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
	// The Fanout's own subscription cut off as slow is reported, once
	// subscribed again, and the watcher stays.
	s.hub.dropAll(ErrSlow)
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
	// Once the event is handled, the call would have been made.
	waitHandled(t, fan2.feed, mustAppend(t, s, msg(c.ID, "")))
}

// Subscribing again fails for a while (the Valkey feed is down): the
// Fanout keeps trying rather than ending its watchers, and tells them of
// the gap once it is back.
func TestFanoutOutlivesFailedResubscribe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &flakyStore{MemoryStore: NewMemoryStore()}
		defer s.Close()
		fan, err := NewFanout(s)
		if err != nil {
			t.Fatal(err)
		}
		defer fan.Close()
		c := newCustomer(t, s)
		errs := make(chan error, 10)
		got := make(chan Event, 10)
		if _, err := fan.WatchFunc(c.ID, func(ev Event, err error) {
			if err != nil {
				errs <- err
				return
			}
			got <- ev
		}); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		s.fail = []error{errors.New("valkey down"), errors.New("valkey down")}
		s.mu.Unlock()
		s.hub.dropAll(ErrSlow)
		if err := <-errs; !errors.Is(err, ErrSlow) {
			t.Fatalf("after the feed came back: %v, want ErrSlow", err)
		}
		ev := mustAppend(t, s, msg(c.ID, ""))
		if g := <-got; g.Seq != ev.Seq {
			t.Fatalf("got seq %d, want %d", g.Seq, ev.Seq)
		}
	})
}
