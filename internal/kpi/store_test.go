package kpi_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/internal/kpi"
	"github.com/omnigate/omnigate/internal/testredis"
	"github.com/omnigate/omnigate/sessions"
)

// stores opens each kind of store; reopen gives a second handle on the
// same data, as a restarted process would have.
type storeKind struct {
	name string
	open func(t *testing.T) (first kpi.Store, reopen func() kpi.Store)
}

func storeKinds() []storeKind {
	return []storeKind{
		{"bolt", func(t *testing.T) (kpi.Store, func() kpi.Store) {
			path := filepath.Join(t.TempDir(), "kpi.db")
			open := func() kpi.Store {
				s, err := kpi.OpenBolt(path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			}
			return open(), open
		}},
		{"valkey", func(t *testing.T) (kpi.Store, func() kpi.Store) {
			addr := testredis.Addr(t)
			prefix := "kpitest" + sessions.NewID("")
			n := 0
			open := func() kpi.Store {
				client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(client.Close)
				n++
				// A lease of a minute: a test's leader keeps it while the
				// test runs, however loaded the machine.
				s, err := kpi.NewValkeyStore(client, kpi.ValkeyOptions{Prefix: prefix, Node: "node" + string(rune('0'+n)), Lease: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			return open(), open
		}},
	}
}

// TestStores: every store adds counts slot by slot, loads a range and,
// reopened, still has them; one node leads at a time.
func TestStores(t *testing.T) {
	t.Parallel()
	kinds := append(storeKinds(), storeKind{"memory", func(*testing.T) (kpi.Store, func() kpi.Store) {
		s := kpi.NewMemoryStore()
		return s, func() kpi.Store { return s }
	}})
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, reopen := k.open(t)
			t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC).Unix()
			slot := int64(kpi.Slot / time.Second)
			must(t, s.Add(ctx, map[int64]kpi.Counts{t0: {"a": 1, "b": 2}, t0 + slot: {"a": 5}}))
			must(t, s.Add(ctx, map[int64]kpi.Counts{t0: {"a": 10}, t0 + 2*slot: {"c": 7}}))
			got, err := s.Load(ctx, t0, t0+2*slot)
			must(t, err)
			if len(got) != 2 || got[t0]["a"] != 11 || got[t0]["b"] != 2 || got[t0+slot]["a"] != 5 {
				t.Fatalf("loaded %v", got)
			}
			if lead, err := s.Lead(ctx); err != nil || !lead {
				t.Fatalf("the only node does not lead: %v %v", lead, err)
			}
			if k.name == "bolt" {
				must(t, s.Close()) // one process at a time holds a bolt file
			}
			again := reopen()
			if got, err := again.Load(ctx, t0+2*slot, t0+3*slot); err != nil || got[t0+2*slot]["c"] != 7 {
				t.Fatalf("reopened: %v %v", got, err)
			}
			if k.name == "valkey" {
				if lead, err := again.Lead(ctx); err != nil || lead {
					t.Fatalf("a second node leads while the first holds the lease: %v %v", lead, err)
				}
				must(t, s.Close()) // gives the lease up
				if lead, err := again.Lead(ctx); err != nil || !lead {
					t.Fatalf("the second node does not take over the lease: %v %v", lead, err)
				}
			}
		})
	}
}

// TestRestartKeepsTheDay: the scripted day counted into a bolt file or
// Valkey, the engine stopped, a new engine (a restarted gateway, its
// feed empty) reports the same day and shows it live.
func TestRestartKeepsTheDay(t *testing.T) {
	t.Parallel()
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			day := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
			first, reopen := k.open(t)
			r := newRig(t, day.Add(8*time.Hour), first, kpi.Config{})
			scriptDay(r)
			r.svc.Close()
			r.engine.Close() // adds what it counted to the store
			must(t, first.Close())

			feed := sessions.NewMemoryStore()
			t.Cleanup(func() { _ = feed.Close() })
			e, err := kpi.New(kpi.Config{}, kpi.Options{Store: reopen(), Feed: feed, Router: dayRouter, Now: r.clock.Now})
			must(t, err)
			must(t, e.Start())
			t.Cleanup(e.Close)
			checkDay(t, func(q kpi.Query) []kpi.Row {
				rows, err := e.Report(context.Background(), q)
				must(t, err)
				return rows
			}, day)
			snap := e.Snapshot()
			if len(snap.Queues) != 1 || snap.Queues[0].Offered != 5 || *snap.Queues[0].ServiceLevel != 0.6 {
				t.Fatalf("live view after the restart: %+v", snap.Queues)
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestClusterCountsOnce: two nodes' engines follow the same feed and
// share Valkey; only the lease holder adds its counts, so the scripted
// day is counted once, and either node reports it.
func TestClusterCountsOnce(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	var kinds []storeKind
	for _, k := range storeKinds() {
		if k.name == "valkey" {
			kinds = append(kinds, k)
		}
	}
	first, second := kinds[0].open(t)
	// The first node leads from the start. Each node counts in its own
	// time: under the test's moved clock, a node that handles an event
	// after the clock moved on accrues the gap differently, so which node
	// leads must not be left to a race (in a real cluster both follow the
	// same wall clock).
	if lead, err := first.Lead(context.Background()); err != nil || !lead {
		t.Fatalf("first node's lease: %v, %v", lead, err)
	}
	r := newRig(t, day.Add(8*time.Hour), first, kpi.Config{})
	other, err := kpi.New(kpi.Config{}, kpi.Options{Store: second(), Feed: r.store, Router: dayRouter, Now: r.clock.Now})
	must(t, err)
	r.svc.OnRepState(other.RepState)
	must(t, other.Start())
	t.Cleanup(other.Close)
	scriptDay(r)
	// The second node has handled every event too before it reports.
	for _, cv := range r.convs {
		seq, err := r.store.LastSeq(context.Background(), cv.CustomerID)
		must(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		must(t, other.WaitHandled(ctx, cv.CustomerID, seq))
		cancel()
	}
	must(t, other.Flush(context.Background())) // not the leader: adds nothing
	for _, e := range []*kpi.Engine{r.engine, other} {
		checkDay(t, func(q kpi.Query) []kpi.Row {
			rows, err := e.Report(context.Background(), q)
			must(t, err)
			return rows
		}, day)
	}
}
