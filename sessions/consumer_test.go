package sessions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/omnigate/omnigate/internal/testredis"
)

// Most consumer tests run in a synctest bubble: its clock moves only when
// every goroutine is blocked (so Forget and the backoff are tested without
// waiting), synctest.Wait proves that something is blocked rather than
// slow, and the bubble fails the test if a goroutine is left behind.

func newConsumer(t *testing.T, s Store, o ConsumerOptions) *Consumer {
	t.Helper()
	c, err := NewConsumer(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func waitHandled(t *testing.T, c *Consumer, ev Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitHandled(ctx, ev.CustomerID, ev.Seq); err != nil {
		t.Fatalf("waiting for %s/%d: %v", ev.CustomerID, ev.Seq, err)
	}
}

// gate blocks a handler until opened.
type gate struct {
	entered chan Event
	open    chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan Event, 1), open: make(chan struct{})} }

func (g *gate) pass(ev Event) {
	select {
	case g.entered <- ev:
	default:
	}
	<-g.open
}

func TestNewConsumerRefuses(t *testing.T) {
	t.Parallel()
	s := NewMemoryStore()
	defer s.Close()
	handle := func(context.Context, Event) {}
	tests := []struct {
		name  string
		store Store
		o     ConsumerOptions
	}{
		{"no store", nil, ConsumerOptions{Handle: handle}},
		{"no handler", s, ConsumerOptions{}},
		{"two handlers", s, ConsumerOptions{Handle: handle, HandleBatch: func(context.Context, []Event) {}}},
		{"negative workers", s, ConsumerOptions{Handle: handle, Workers: -1}},
		{"negative forget", s, ConsumerOptions{Handle: handle, Forget: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := NewConsumer(context.Background(), tc.store, tc.o); !errors.Is(err, ErrInvalid) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	closed := NewMemoryStore()
	_ = closed.Close()
	if _, err := NewConsumer(context.Background(), closed, ConsumerOptions{Handle: handle}); !errors.Is(err, ErrClosed) {
		t.Fatalf("on a closed store: %v, want ErrClosed", err)
	}
}

// Several workers: each customer's events are handled one at a time and
// in order, and one customer's slow handler does not hold up the others.
func TestConsumerOrderAcrossWorkers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		batch bool
	}{{"Handle", false}, {"HandleBatch", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := NewMemoryStore()
			defer s.Close()
			var mu sync.Mutex
			got := map[string][]uint64{}
			active := map[string]bool{}
			one := func(ev Event) {
				mu.Lock()
				if active[ev.CustomerID] {
					t.Errorf("two handlers at once for %s", ev.CustomerID)
				}
				active[ev.CustomerID] = true
				mu.Unlock()
				mu.Lock()
				active[ev.CustomerID] = false
				got[ev.CustomerID] = append(got[ev.CustomerID], ev.Seq)
				mu.Unlock()
			}
			o := ConsumerOptions{Workers: 4, Handle: func(_ context.Context, ev Event) { one(ev) }}
			if tc.batch {
				o.Handle, o.HandleBatch = nil, func(_ context.Context, evs []Event) {
					for _, ev := range evs {
						one(ev)
					}
				}
			}
			c := newConsumer(t, s, o)
			const customers, each = 8, 200
			var last []Event
			var wg sync.WaitGroup
			var lastMu sync.Mutex
			for range customers {
				cus := newCustomer(t, s)
				wg.Go(func() {
					var ev Event
					for i := range each {
						ev = mustAppend(t, s, msg(cus.ID, strconv.Itoa(i)))
					}
					lastMu.Lock()
					last = append(last, ev)
					lastMu.Unlock()
				})
			}
			wg.Wait()
			for _, ev := range last {
				waitHandled(t, c, ev)
			}
			mu.Lock()
			defer mu.Unlock()
			want := make([]uint64, each)
			for i := range want {
				want[i] = uint64(i + 1)
			}
			for id, seqs := range got {
				if !slices.Equal(seqs, want) {
					t.Errorf("customer %s handled %v, want 1..%d in order", id, seqs, each)
				}
			}
			if len(got) != customers {
				t.Errorf("%d customers handled, want %d", len(got), customers)
			}
		})
	}
}

func TestConsumerWorkersShareNothingAcrossCustomers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemoryStore()
		defer s.Close()
		g := newGate()
		slow := newCustomer(t, s)
		c := newConsumer(t, s, ConsumerOptions{Workers: 4, Handle: func(_ context.Context, ev Event) {
			if ev.CustomerID == slow.ID {
				g.pass(ev)
			}
		}})
		other := newCustomer(t, s)
		for c.shard(other.ID) == c.shard(slow.ID) {
			other = newCustomer(t, s)
		}
		blocked := mustAppend(t, s, msg(slow.ID, ""))
		<-g.entered
		ev := mustAppend(t, s, msg(other.ID, ""))
		waitHandled(t, c, ev)
		// The watermark moves only once Handle returned.
		if n := c.Handled(slow.ID); n != 0 {
			t.Fatalf("Handled(slow) = %d while its handler runs, want 0", n)
		}
		close(g.open)
		waitHandled(t, c, blocked)
	})
}

func TestConsumerWatermark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemoryStore()
		defer s.Close()
		g := newGate()
		c := newConsumer(t, s, ConsumerOptions{Handle: func(_ context.Context, ev Event) { g.pass(ev) }})
		cus := newCustomer(t, s)
		if n := c.Handled(cus.ID); n != 0 {
			t.Fatalf("Handled before any event = %d", n)
		}
		if err := c.WaitHandled(context.Background(), cus.ID, 0); err != nil {
			t.Fatalf("WaitHandled(0) = %v", err)
		}
		ev := mustAppend(t, s, msg(cus.ID, ""))
		<-g.entered

		ctx, cancel := context.WithCancel(context.Background())
		waited := make(chan error, 1)
		go func() { waited <- c.WaitHandled(ctx, cus.ID, ev.Seq) }()
		synctest.Wait()
		select {
		case err := <-waited:
			t.Fatalf("WaitHandled returned %v while the event's handler runs", err)
		default:
		}
		cancel()
		if err := <-waited; !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitHandled after its ctx ended: %v", err)
		}

		go func() { waited <- c.WaitHandled(context.Background(), cus.ID, ev.Seq) }()
		close(g.open)
		if err := <-waited; err != nil {
			t.Fatalf("WaitHandled: %v", err)
		}
		if n := c.Handled(cus.ID); n != ev.Seq {
			t.Fatalf("Handled = %d, want %d", n, ev.Seq)
		}
		// Once stopped, a watermark that cannot be reached is refused.
		c.Close()
		if err := c.WaitHandled(context.Background(), cus.ID, ev.Seq+1); !errors.Is(err, ErrStopped) {
			t.Fatalf("WaitHandled after Close: %v, want ErrStopped", err)
		}
		if err := c.WaitHandled(context.Background(), cus.ID, ev.Seq); err != nil {
			t.Fatalf("WaitHandled for a handled event after Close: %v", err)
		}
	})
}

// A customer idle for Forget is forgotten: the map holds only the
// customers active lately.
func TestConsumerForgetsIdleCustomers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemoryStore()
		defer s.Close()
		c := newConsumer(t, s, ConsumerOptions{Forget: time.Minute, Handle: func(context.Context, Event) {}})
		idle, busy := newCustomer(t, s), newCustomer(t, s)
		old := mustAppend(t, s, msg(idle.ID, ""))
		waitHandled(t, c, old)
		time.Sleep(time.Minute)
		waitHandled(t, c, mustAppend(t, s, msg(busy.ID, "")))
		c.mu.Lock()
		n := len(c.marks)
		c.mu.Unlock()
		if n != 1 || c.Handled(idle.ID) != 0 || c.Handled(busy.ID) == 0 {
			t.Fatalf("after a minute: %d marks, idle at %d, busy at %d; want only busy's", n, c.Handled(idle.ID), c.Handled(busy.ID))
		}
		// Waiting on a forgotten event lasts until the customer's next one.
		waited := make(chan error, 1)
		go func() { waited <- c.WaitHandled(context.Background(), idle.ID, old.Seq) }()
		synctest.Wait()
		select {
		case err := <-waited:
			t.Fatalf("WaitHandled on a forgotten customer returned %v at once", err)
		default:
		}
		mustAppend(t, s, msg(idle.ID, "again"))
		if err := <-waited; err != nil {
			t.Fatal(err)
		}
	})
}

func TestConsumerCloseWaitsForHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemoryStore()
		defer s.Close()
		g := newGate()
		var handled atomic.Int32
		var ctxEnded atomic.Bool
		c := newConsumer(t, s, ConsumerOptions{Handle: func(ctx context.Context, ev Event) {
			g.pass(ev)
			ctxEnded.Store(ctx.Err() != nil)
			handled.Add(1)
		}})
		cus := newCustomer(t, s)
		mustAppend(t, s, msg(cus.ID, "1"))
		<-g.entered
		queued := mustAppend(t, s, msg(cus.ID, "2"))
		closed := make(chan struct{})
		go func() { c.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a handler runs")
		default:
		}
		close(g.open)
		<-closed
		select {
		case <-c.Done():
		default:
			t.Fatal("Done not closed after Close")
		}
		if !ctxEnded.Load() {
			t.Error("the handler's ctx did not end with Close")
		}
		// What was queued behind the running handler is dropped.
		if n := handled.Load(); n != 1 || c.Handled(cus.ID) >= queued.Seq {
			t.Fatalf("%d handled, watermark %d; want only the first", n, c.Handled(cus.ID))
		}
		c.Close() // twice is harmless
	})
}

func TestConsumerEnds(t *testing.T) {
	t.Run("store closed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewMemoryStore()
			g := newGate()
			c := newConsumer(t, s, ConsumerOptions{Handle: func(_ context.Context, ev Event) { g.pass(ev) }})
			cus := newCustomer(t, s)
			mustAppend(t, s, msg(cus.ID, "1"))
			<-g.entered
			queued := mustAppend(t, s, msg(cus.ID, "2"))
			_ = s.Close()
			close(g.open)
			<-c.Done()
			// What the feed brought before the store closed is handled.
			if n := c.Handled(cus.ID); n != queued.Seq {
				t.Fatalf("Handled = %d after the store closed, want %d", n, queued.Seq)
			}
		})
	})
	t.Run("ctx ended", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewMemoryStore()
			defer s.Close()
			ctx, cancel := context.WithCancel(context.Background())
			var gaps atomic.Int32
			c, err := NewConsumer(ctx, s, ConsumerOptions{Handle: func(context.Context, Event) {},
				OnGap: func(context.Context, error) { gaps.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			<-c.Done()
			if n := gaps.Load(); n != 0 {
				t.Fatalf("OnGap called %d times for the ctx ending", n)
			}
		})
	})
}

// flakyStore fails the Subscribe calls it is told to, recording when each
// was made.
type flakyStore struct {
	*MemoryStore
	mu    sync.Mutex
	fail  []error // the next calls' errors, in order
	calls []time.Time
}

func (f *flakyStore) Subscribe(ctx context.Context) (*Subscription, error) {
	f.mu.Lock()
	f.calls = append(f.calls, time.Now())
	var err error
	if len(f.fail) > 0 {
		err, f.fail = f.fail[0], f.fail[1:]
	}
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.MemoryStore.Subscribe(ctx)
}

// Losing the feed: subscribe again (backing off while that fails), then
// OnGap once, after every handler of the old subscription returned and
// before any event of the new one.
func TestConsumerResubscribes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &flakyStore{MemoryStore: NewMemoryStore()}
		defer s.Close()
		var mu sync.Mutex
		var log []string
		var running atomic.Int32
		c := newConsumer(t, s, ConsumerOptions{
			Handle: func(_ context.Context, ev Event) {
				running.Add(1)
				defer running.Add(-1)
				mu.Lock()
				log = append(log, strconv.FormatUint(ev.Seq, 10))
				mu.Unlock()
			},
			OnGap: func(_ context.Context, cause error) {
				if n := running.Load(); n != 0 {
					t.Errorf("OnGap with %d handlers running", n)
				}
				mu.Lock()
				log = append(log, "gap:"+cause.Error())
				mu.Unlock()
			},
		})
		cus := newCustomer(t, s)
		waitHandled(t, c, mustAppend(t, s, msg(cus.ID, "")))
		boom := errors.New("valkey down")
		s.mu.Lock()
		s.fail = []error{boom, boom, boom}
		s.calls = nil
		s.mu.Unlock()
		start := time.Now()
		s.hub.dropAll(ErrSlow)
		ev := mustAppend(t, s, msg(cus.ID, "")) // appended while no subscription is live: missed
		time.Sleep(time.Second)                 // past the backoff: the bubble's clock jumps
		synctest.Wait()
		after := mustAppend(t, s, msg(cus.ID, ""))
		waitHandled(t, c, after)
		mu.Lock()
		defer mu.Unlock()
		want := []string{"1", "gap:" + ErrSlow.Error(), strconv.FormatUint(after.Seq, 10)}
		if !slices.Equal(log, want) {
			t.Fatalf("log %v, want %v (seq %d missed)", log, want, ev.Seq)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var delays []time.Duration
		for _, at := range s.calls {
			delays = append(delays, at.Sub(start))
		}
		if want := []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond, 350 * time.Millisecond}; !slices.Equal(delays, want) {
			t.Fatalf("subscribed at %v, want %v", delays, want)
		}
	})
}

// A consumer too slow for the feed is cut off by the store (ErrSlow):
// what was delivered before is handled, then OnGap, then the new feed.
func TestConsumerSlowHandlerGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemoryStore()
		defer s.Close()
		g := newGate()
		var mu sync.Mutex
		var handled []uint64
		var gaps []error
		c := newConsumer(t, s, ConsumerOptions{
			Handle: func(_ context.Context, ev Event) {
				if ev.Seq == 1 {
					g.pass(ev)
				}
				mu.Lock()
				handled = append(handled, ev.Seq)
				mu.Unlock()
			},
			OnGap: func(_ context.Context, cause error) {
				mu.Lock()
				gaps = append(gaps, cause)
				handled = append(handled, 0) // where the gap fell
				mu.Unlock()
			},
		})
		cus := newCustomer(t, s)
		mustAppend(t, s, msg(cus.ID, ""))
		<-g.entered
		// More than the queue and the subscription's buffer hold.
		total := SubscriptionBuffer + consumerQueue + 10
		for range total {
			mustAppend(t, s, Event{CustomerID: cus.ID, Kind: KindNote, Channel: ChannelAPI})
		}
		close(g.open)
		synctest.Wait() // the old feed is handled and the new one is live
		after := mustAppend(t, s, msg(cus.ID, "after"))
		waitHandled(t, c, after)
		mu.Lock()
		defer mu.Unlock()
		if len(gaps) != 1 || !errors.Is(gaps[0], ErrSlow) {
			t.Fatalf("gaps %v, want one ErrSlow", gaps)
		}
		i := slices.Index(handled, 0)
		for j, seq := range handled[:i] {
			if seq != uint64(j+1) {
				t.Fatalf("before the gap handled %d at %d, want the feed's order from 1", seq, j)
			}
		}
		if i >= total+1 || !slices.Equal(handled[i+1:], []uint64{after.Seq}) {
			t.Fatalf("%d handled before the gap of %d appended, then %v; want some missed, then only %d",
				i, total+1, handled[i+1:], after.Seq)
		}
	})
}

// Killing the Valkey store's pub/sub connection is a gap too; the
// consumer comes back by itself. It kills connections server-wide, so it
// runs on a server of its own.
func TestConsumerValkeyConnectionKilled(t *testing.T) {
	addr := testredis.Start(t)
	s := openValkey(t, addr, "")
	var mu sync.Mutex
	var log []string
	c := newConsumer(t, s, ConsumerOptions{
		Workers: 2,
		Handle: func(_ context.Context, ev Event) {
			mu.Lock()
			log = append(log, ev.ExternalID)
			mu.Unlock()
		},
		OnGap: func(_ context.Context, cause error) {
			mu.Lock()
			log = append(log, "gap")
			mu.Unlock()
			if !errors.Is(cause, ErrSlow) {
				t.Errorf("gap cause %v, want ErrSlow", cause)
			}
		},
	})
	cus := newCustomer(t, s)
	waitHandled(t, c, mustAppend(t, s, msg(cus.ID, "before")))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw := rawValkey(t, addr)
	if err := raw.Do(ctx, raw.B().ClientKill().TypePubsub().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	// Events appended while the feed is down are missed; keep appending
	// until one comes through.
	for i := 0; ; i++ {
		ev := mustAppend(t, s, msg(cus.ID, fmt.Sprintf("after-%d", i)))
		try, cancelTry := context.WithTimeout(ctx, 100*time.Millisecond)
		err := c.WaitHandled(try, cus.ID, ev.Seq)
		cancelTry()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the consumer did not come back after its connection was killed")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if log[0] != "before" || log[1] != "gap" || log[len(log)-1] == "gap" {
		t.Fatalf("handled %v, want before, a gap, and events after it", log)
	}
}
