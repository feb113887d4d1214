package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/internal/testredis"
)

// states runs f against every State implementation: the conformance
// suite. Valkey needs a server: OMNIGATE_VALKEY_ADDR, or a redis-server
// on PATH started for the test; without either the Valkey case is skipped
// (failed when CI=true).
func states(t *testing.T, f func(t *testing.T, newState func() State)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		f(t, func() State { return NewMemoryState() })
	})
	t.Run("valkey", func(t *testing.T) {
		t.Parallel()
		client := valkeyClient(t)
		f(t, func() State {
			s, err := NewValkeyState(client, testPrefix())
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}

func testPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "ogtest" + hex.EncodeToString(b[:])
}

func valkeyClient(tb testing.TB) valkey.Client {
	tb.Helper()
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{testredis.Addr(tb)}, DisableCache: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(client.Close)
	return client
}

func TestStateConformance(t *testing.T) {
	t.Parallel()
	states(t, func(t *testing.T, newState func() State) {
		ctx := context.Background()
		t.Run("claim rules", func(t *testing.T) {
			s := newState()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(s.Push(ctx, "q", "c1"))
			if err := s.Push(ctx, "q", "c1"); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("second push: %v", err)
			}
			if err := s.Claim(ctx, Claim{Queue: "other", ConversationID: "c1", RepID: "a", Units: 25, Limit: 100}); !errors.Is(err, ErrTaken) {
				t.Fatalf("wrong queue: %v", err)
			}
			must(s.Claim(ctx, Claim{Queue: "q", ConversationID: "c1", RepID: "a", Units: 60, Limit: 100}))
			if err := s.Claim(ctx, Claim{Queue: "q", ConversationID: "c1", RepID: "b", Units: 25, Limit: 100}); !errors.Is(err, ErrTaken) {
				t.Fatalf("double claim: %v", err)
			}
			if err := s.Push(ctx, "q", "c1"); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("push of a claimed conversation: %v", err)
			}
			must(s.Push(ctx, "q", "c2"))
			if err := s.Claim(ctx, Claim{Queue: "q", ConversationID: "c2", RepID: "a", Units: 50, Limit: 100}); !errors.Is(err, ErrCapacity) {
				t.Fatalf("over capacity: %v", err)
			}
			must(s.Claim(ctx, Claim{Queue: "q", ConversationID: "c2", RepID: "a", Units: 40, Limit: 100}))
			if u, _ := s.Used(ctx, "a"); u != 100 {
				t.Fatalf("used %d", u)
			}
			// Declined: capacity back, conversation waits again.
			must(s.Unclaim(ctx, "c2", "q"))
			if u, _ := s.Used(ctx, "a"); u != 60 {
				t.Fatalf("used %d", u)
			}
			must(s.Claim(ctx, Claim{Queue: "q", ConversationID: "c2", RepID: "b", Units: 40, Limit: 100}))
			// Ended: nothing held, unclaiming again is harmless.
			must(s.Unclaim(ctx, "c1", ""))
			must(s.Unclaim(ctx, "c1", ""))
			if u, _ := s.Used(ctx, "a"); u != 0 {
				t.Fatalf("used %d", u)
			}
			must(s.Push(ctx, "q", "c3"))
			must(s.Drop(ctx, "other", "c3")) // not there: no-op
			if err := s.Push(ctx, "q", "c3"); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("drop from the wrong queue removed it: %v", err)
			}
			must(s.Drop(ctx, "q", "c3"))
			if err := s.Claim(ctx, Claim{Queue: "q", ConversationID: "c3", RepID: "a", Units: 1, Limit: 100}); !errors.Is(err, ErrTaken) {
				t.Fatalf("claim of a dropped conversation: %v", err)
			}
		})
		t.Run("concurrent claims", func(t *testing.T) {
			// 8 claimers race for 200 conversations onto 5 reps of 100
			// units at 25 each: exactly 20 claims can succeed, no
			// conversation twice.
			s := newState()
			for i := range 200 {
				if err := s.Push(ctx, "q", fmt.Sprint("c", i)); err != nil {
					t.Fatal(err)
				}
			}
			var won atomic.Int64
			var mu sync.Mutex
			got := map[string]int{}
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 200 {
						conv := fmt.Sprint("c", (i+g*25)%200)
						rep := fmt.Sprint("r", (i+g)%5)
						err := s.Claim(ctx, Claim{Queue: "q", ConversationID: conv, RepID: rep, Units: 25, Limit: 100})
						if err == nil {
							won.Add(1)
							mu.Lock()
							got[conv]++
							mu.Unlock()
						} else if !errors.Is(err, ErrTaken) && !errors.Is(err, ErrCapacity) {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			if won.Load() != 20 {
				t.Fatalf("%d claims won, want 20", won.Load())
			}
			for conv, n := range got {
				if n != 1 {
					t.Fatalf("%s claimed %d times", conv, n)
				}
			}
			for r := range 5 {
				if u, _ := s.Used(ctx, fmt.Sprint("r", r)); u != 100 {
					t.Fatalf("r%d used %d", r, u)
				}
			}
		})
	})
}

// TestRoutersShareState runs three routers (three gateway nodes) against
// one State, each routing its own tasks to the same reps concurrently: a
// rep is never filled past capacity, whichever node claims. A node that
// loses a race learns the rep's real load and chooses again.
func TestRoutersShareState(t *testing.T) {
	t.Parallel()
	states(t, func(t *testing.T, newState func() State) {
		ctx := context.Background()
		st := newState()
		var reps []Rep
		for i := range 10 {
			reps = append(reps, Rep{ID: fmt.Sprintf("r%d", i)})
		}
		var wg sync.WaitGroup
		for node := range 3 {
			r, err := New(Config{Reps: reps}, Options{Clock: NewManualClock(t0), State: st})
			if err != nil {
				t.Fatal(err)
			}
			for _, rep := range reps {
				if _, err := r.SetPresence(ctx, rep.ID, PresenceAvailable); err != nil {
					t.Fatal(err)
				}
			}
			wg.Go(func() {
				for i := range 60 {
					conv := fmt.Sprintf("n%d-%d", node, i)
					if _, err := r.Enqueue(ctx, chat(conv)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		total := 0
		for _, rep := range reps {
			u, err := st.Used(ctx, rep.ID)
			if err != nil {
				t.Fatal(err)
			}
			if u > 100 {
				t.Fatalf("%s holds %d units", rep.ID, u)
			}
			total += u
		}
		// 10 reps × 4 chats: every slot is taken, by one node or another.
		if total != 1000 {
			t.Fatalf("%d units claimed, want 1000", total)
		}
	})
}
