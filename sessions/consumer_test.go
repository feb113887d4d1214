package sessions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func waitHandled(t *testing.T, c *Consumer, customer string, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitHandled(ctx, customer, seq); err != nil {
		t.Fatalf("customer %s seq %d not handled: %v", customer, seq, err)
	}
}

// TestConsumerOrder: with several workers, each customer's events are
// handled one at a time and in order, and the watermark says when.
func TestConsumerOrder(t *testing.T) {
	s := NewMemoryStore()
	defer s.Close()
	var mu sync.Mutex
	seen := map[string][]uint64{}
	busy := map[string]bool{}
	c, err := NewConsumer(context.Background(), s, ConsumerOptions{Workers: 4, Handle: func(_ context.Context, ev Event) {
		mu.Lock()
		if busy[ev.CustomerID] {
			t.Errorf("customer %s: two events handled at once", ev.CustomerID)
		}
		busy[ev.CustomerID] = true
		mu.Unlock()
		time.Sleep(time.Microsecond)
		mu.Lock()
		busy[ev.CustomerID] = false
		seen[ev.CustomerID] = append(seen[ev.CustomerID], ev.Seq)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var customers []string
	for range 8 {
		customers = append(customers, newCustomer(t, s).ID)
	}
	var wg sync.WaitGroup
	for _, id := range customers {
		wg.Go(func() {
			for range 40 {
				mustAppend(t, s, msg(id, ""))
			}
		})
	}
	wg.Wait()
	for _, id := range customers {
		waitHandled(t, c, id, 40)
		if got := c.Handled(id); got != 40 {
			t.Fatalf("Handled(%s) = %d", id, got)
		}
		mu.Lock()
		for i, seq := range seen[id] {
			if seq != uint64(i+1) {
				t.Fatalf("customer %s handled %v, want 1..40 in order", id, seen[id])
			}
		}
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.WaitHandled(ctx, customers[0], 41); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for an event never appended: %v", err)
	}
}

// TestConsumerGap: a consumer that fell behind (ErrSlow) subscribes again,
// calls OnGap once, after the old subscription's handlers returned and
// before any event of the new one, and goes on.
func TestConsumerGap(t *testing.T) {
	s := NewMemoryStore()
	defer s.Close()
	release := make(chan struct{})
	var mu sync.Mutex
	var log []string
	var gaps atomic.Int32
	var first sync.Once
	c, err := NewConsumer(context.Background(), s, ConsumerOptions{
		Logger: slog.New(slog.DiscardHandler),
		Handle: func(_ context.Context, ev Event) {
			first.Do(func() { <-release }) // stall until the feed overflows
			mu.Lock()
			log = append(log, fmt.Sprint(ev.Seq))
			mu.Unlock()
		},
		OnGap: func(_ context.Context, cause error) {
			if !errors.Is(cause, ErrSlow) {
				t.Errorf("gap cause = %v, want ErrSlow", cause)
			}
			gaps.Add(1)
			mu.Lock()
			log = append(log, "gap")
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cust := newCustomer(t, s)
	// More than the worker's queue and the subscription's buffer hold.
	for range SubscriptionBuffer + 300 {
		mustAppend(t, s, msg(cust.ID, ""))
	}
	close(release)
	// Once the gap is handled, events flow again.
	var last Event
	deadline := time.Now().Add(10 * time.Second)
	for gaps.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no gap reported after the subscription overflowed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	last = mustAppend(t, s, msg(cust.ID, ""))
	waitHandled(t, c, cust.ID, last.Seq)
	if n := gaps.Load(); n != 1 {
		t.Fatalf("%d gaps, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	// The old subscription's events 1..k in order, then the gap, then the
	// new subscription's event: nothing of the old one after the gap.
	n := len(log)
	if n < 3 || log[n-2] != "gap" || log[n-1] != fmt.Sprint(last.Seq) {
		t.Fatalf("handled %v ... %v, want ..., gap, %d", log[:min(n, 3)], log[max(0, n-3):], last.Seq)
	}
	for i, e := range log[:n-2] {
		if e != fmt.Sprint(i+1) {
			t.Fatalf("before the gap, handled %s at %d", e, i)
		}
	}
}

// TestConsumerStops: Close waits for the handler in flight; a closed store
// ends the consumer.
func TestConsumerStops(t *testing.T) {
	s := NewMemoryStore()
	entered := make(chan struct{})
	var finished atomic.Bool
	c, err := NewConsumer(context.Background(), s, ConsumerOptions{Handle: func(ctx context.Context, ev Event) {
		close(entered)
		<-ctx.Done() // Close cancels it; the handler still takes its time
		time.Sleep(20 * time.Millisecond)
		finished.Store(true)
	}})
	if err != nil {
		t.Fatal(err)
	}
	cust := newCustomer(t, s)
	mustAppend(t, s, msg(cust.ID, ""))
	<-entered
	c.Close()
	if !finished.Load() {
		t.Fatal("Close returned before the handler did")
	}

	c2, err := NewConsumer(context.Background(), s, ConsumerOptions{Handle: func(context.Context, Event) {}})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	select {
	case <-c2.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the consumer did not end with its store")
	}
	if _, err := NewConsumer(context.Background(), s, ConsumerOptions{Handle: func(context.Context, Event) {}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("a consumer of a closed store: %v", err)
	}
}
