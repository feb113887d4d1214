package dialer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/internal/testredis"
)

// storeUnderTest is a fresh store and a way to make a lease of ttl lapse.
type storeUnderTest struct {
	store Store
	lapse func(t *testing.T, ttl time.Duration)
}

type openStore func(t *testing.T) storeUnderTest

func memoryStore(t *testing.T) storeUnderTest {
	clock := NewManualClock(t0)
	return storeUnderTest{NewMemoryStore(clock), func(_ *testing.T, ttl time.Duration) { clock.Advance(ttl) }}
}

func boltStore(t *testing.T) storeUnderTest {
	clock := NewManualClock(t0)
	s, err := OpenBoltStore(filepath.Join(t.TempDir(), "dialer.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return storeUnderTest{s, func(_ *testing.T, ttl time.Duration) { clock.Advance(ttl) }}
}

var prefixSeq atomic.Int64

func valkeyClient(tb testing.TB, addr string) valkey.Client {
	tb.Helper()
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

func valkeyOpener(t *testing.T) openStore {
	addr := testredis.Addr(t)
	return func(t *testing.T) storeUnderTest {
		s, err := NewValkeyStore(valkeyClient(t, addr), fmt.Sprintf("dialtest%d-%d", time.Now().UnixNano(), prefixSeq.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		// Valkey's own clock expires the lease: wait for it, bounded.
		return storeUnderTest{s, func(t *testing.T, ttl time.Duration) { time.Sleep(ttl + 20*time.Millisecond) }}
	}
}

func TestStoreMemory(t *testing.T) { runStoreConformance(t, memoryStore) }
func TestStoreBolt(t *testing.T)   { runStoreConformance(t, boltStore) }
func TestStoreValkey(t *testing.T) { runStoreConformance(t, valkeyOpener(t)) }

func att(campaign string, i int, state AttemptState, due time.Time) Attempt {
	return Attempt{ID: attemptID(campaign, i, 1), Campaign: campaign, CustomerID: fmt.Sprintf("cus%d", i),
		Number: "+8613800000000", Try: 1, State: state, Due: due}
}

func runStoreConformance(t *testing.T, open openStore) {
	ctx := context.Background()
	t.Run("campaigns compare and set", func(t *testing.T) {
		t.Parallel()
		s := open(t).store
		c, err := s.CreateCampaign(ctx, Campaign{Spec: Spec{ID: "spring"}, State: StateCreated})
		if err != nil || c.Version != 1 {
			t.Fatalf("create: %+v %v", c, err)
		}
		if _, err := s.CreateCampaign(ctx, Campaign{Spec: Spec{ID: "spring"}}); !errors.Is(err, ErrConflict) {
			t.Fatalf("create twice: %v", err)
		}
		c.State = StateRunning
		c2, err := s.SaveCampaign(ctx, c)
		if err != nil || c2.Version != 2 {
			t.Fatalf("save: %+v %v", c2, err)
		}
		c.State = StatePaused // stale: version 1
		if _, err := s.SaveCampaign(ctx, c); !errors.Is(err, ErrConflict) {
			t.Fatalf("stale save: %v", err)
		}
		if _, err := s.SaveCampaign(ctx, Campaign{Spec: Spec{ID: "nope"}, Version: 1}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("save unknown: %v", err)
		}
		if _, err := s.Campaign(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get unknown: %v", err)
		}
		if _, err := s.CreateCampaign(ctx, Campaign{Spec: Spec{ID: "autumn"}}); err != nil {
			t.Fatal(err)
		}
		cs, err := s.Campaigns(ctx)
		if err != nil || len(cs) != 2 || cs[0].ID() != "autumn" || cs[1].ID() != "spring" || cs[1].State != StateRunning {
			t.Fatalf("campaigns %+v %v", cs, err)
		}
	})

	t.Run("attempts are written all or nothing", func(t *testing.T) {
		t.Parallel()
		s := open(t).store
		saved, err := s.SaveAttempts(ctx, att("c", 1, AttemptDue, t0), att("c", 2, AttemptDue, t0))
		if err != nil || saved[0].Version != 1 || saved[1].Version != 1 {
			t.Fatalf("create: %+v %v", saved, err)
		}
		// One stale write in a batch refuses the batch: the new attempt
		// is not written either.
		dialing := saved[0]
		dialing.State = AttemptDialing
		if _, err := s.SaveAttempts(ctx, dialing, att("c", 3, AttemptDue, t0), att("c", 2, AttemptDue, t0)); !errors.Is(err, ErrConflict) {
			t.Fatalf("batch with a create of an existing attempt: %v", err)
		}
		if a, _ := s.Attempt(ctx, saved[0].ID); a.State != AttemptDue || a.Version != 1 {
			t.Fatalf("after a refused batch: %+v", a)
		}
		if _, err := s.Attempt(ctx, attemptID("c", 3, 1)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a refused batch wrote its new attempt: %v", err)
		}
		if due, _ := s.Due(ctx, "c", t0, 10); len(due) != 2 {
			t.Fatalf("due after a refused batch: %s", ids(due))
		}
		// Two writers from one version: exactly one wins.
		won, err1 := s.SaveAttempts(ctx, dialing)
		_, err2 := s.SaveAttempts(ctx, dialing)
		if err1 != nil || !errors.Is(err2, ErrConflict) || won[0].Version != 2 {
			t.Fatalf("first %v, second %v", err1, err2)
		}
		if _, err := s.Attempt(ctx, "c.000009.1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown attempt: %v", err)
		}
		if _, err := s.SaveAttempts(ctx, att("c", 3, AttemptDue, t0), att("d", 3, AttemptDue, t0)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a batch over two campaigns: %v", err)
		}
	})

	t.Run("attempts of a campaign and the due ones in order", func(t *testing.T) {
		t.Parallel()
		s := open(t).store
		for _, a := range []Attempt{att("a", 1, AttemptDue, t0.Add(2*time.Second)), att("a", 2, AttemptDue, t0),
			att("a", 3, AttemptHeld, t0), att("a", 4, AttemptDue, t0.Add(time.Hour)), att("a", 5, AttemptDue, t0),
			att("ab", 1, AttemptDue, t0)} {
			if _, err := s.SaveAttempts(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.Attempts(ctx, "a")
		if err != nil || len(all) != 5 || all[0].ID != "a.000001.1" || all[4].ID != "a.000005.1" {
			t.Fatalf("attempts %+v %v", all, err)
		}
		due, err := s.Due(ctx, "a", t0.Add(2*time.Second), 10)
		if err != nil || ids(due) != "a.000002.1 a.000005.1 a.000001.1" {
			t.Fatalf("due %s %v", ids(due), err)
		}
		if due, _ := s.Due(ctx, "a", t0.Add(2*time.Second), 2); ids(due) != "a.000002.1 a.000005.1" {
			t.Fatalf("due, limit 2: %s", ids(due))
		}
		// Leaving due leaves the index; a new due time moves it.
		first := due[0]
		first.State = AttemptDialing
		later := due[1]
		later.Due = t0.Add(time.Minute)
		if _, err := s.SaveAttempts(ctx, first, later); err != nil {
			t.Fatal(err)
		}
		if due, _ := s.Due(ctx, "a", t0.Add(time.Minute), 10); ids(due) != "a.000001.1 a.000005.1" {
			t.Fatalf("due after changes: %s", ids(due))
		}
	})

	t.Run("counts follow every write", func(t *testing.T) {
		t.Parallel()
		s := open(t).store
		if c, err := s.Counts(ctx, "k"); err != nil || len(c) != 0 {
			t.Fatalf("counts of nothing: %v %v", c, err)
		}
		trial := att("k", 1, AttemptDue, t0)
		trial.Trial = true
		saved, err := s.SaveAttempts(ctx, trial, att("k", 2, AttemptHeld, t0), att("k", 3, AttemptDue, t0))
		if err != nil {
			t.Fatal(err)
		}
		answered := saved[0]
		answered.State, answered.Outcome, answered.DialedAt, answered.AnsweredAt = AttemptDone, OutcomeAbandoned, t0, t0.Add(5*time.Second)
		if _, err := s.SaveAttempts(ctx, answered); err != nil {
			t.Fatal(err)
		}
		stale := saved[2]
		stale.Version = 0 // refused: the counts do not move
		if _, err := s.SaveAttempts(ctx, stale); !errors.Is(err, ErrConflict) {
			t.Fatalf("stale: %v", err)
		}
		want := Counts{"state:done": 1, "state:held": 1, "state:due": 1, "trial_state:done": 1, "outcome:abandoned": 1,
			"dialed": 1, "answered:2026-12-03": 1, "abandoned:2026-12-03": 1}
		got, err := s.Counts(ctx, "k")
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("counts %v %v, want %v", got, err, want)
		}
	})

	t.Run("a lease has one holder until it lapses", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		s := st.store
		ttl := 300 * time.Millisecond
		if ok, err := s.Lease(ctx, "c", "node-a", ttl); !ok || err != nil {
			t.Fatalf("a takes: %v %v", ok, err)
		}
		if ok, _ := s.Lease(ctx, "c", "node-b", ttl); ok {
			t.Fatal("b took a held lease")
		}
		if ok, _ := s.Lease(ctx, "c", "node-a", ttl); !ok {
			t.Fatal("a could not renew")
		}
		if ok, _ := s.Lease(ctx, "other", "node-b", ttl); !ok {
			t.Fatal("b could not take another campaign's lease")
		}
		st.lapse(t, ttl)
		if ok, _ := s.Lease(ctx, "c", "node-b", ttl); !ok {
			t.Fatal("b could not take a lapsed lease")
		}
		if ok, _ := s.Lease(ctx, "c", "node-a", ttl); ok {
			t.Fatal("a renewed a lease b took")
		}
		if err := s.Unlease(ctx, "c", "node-a"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Lease(ctx, "c", "node-a", ttl); ok {
			t.Fatal("a's unlease freed b's lease")
		}
		if err := s.Unlease(ctx, "c", "node-b"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Lease(ctx, "c", "node-a", ttl); !ok {
			t.Fatal("a could not take an unleased lease")
		}
	})
}

func ids(as []Attempt) string {
	s := ""
	for i, a := range as {
		if i > 0 {
			s += " "
		}
		s += a.ID
	}
	return s
}
