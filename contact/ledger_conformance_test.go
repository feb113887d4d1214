package contact

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/testredis"
	"github.com/valkey-io/valkey-go"
)

// openLedger makes an empty ledger for one test.
type openLedger func(t *testing.T, opts LedgerOptions) Ledger

func memoryLedger(t *testing.T, opts LedgerOptions) Ledger { return NewMemoryLedger(opts) }

func boltLedger(t *testing.T, opts LedgerOptions) Ledger {
	l, err := OpenBoltLedger(filepath.Join(t.TempDir(), "contact.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// valkeyClient connects to the test server; closed when t ends.
func valkeyClient(tb testing.TB, addr string) valkey.Client {
	tb.Helper()
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

var prefixSeq atomic.Int64

// testPrefix is a key prefix no other test uses, so tests can share a
// server (OMNIGATE_VALKEY_ADDR) without seeing each other's keys.
func testPrefix() string {
	return "lt" + strconv.FormatInt(time.Now().UnixNano(), 36) + "_" + strconv.FormatInt(prefixSeq.Add(1), 10)
}

func valkeyLedgerOpener(t *testing.T) openLedger {
	addr := testredis.Addr(t)
	return func(t *testing.T, opts LedgerOptions) Ledger {
		l, err := NewValkeyLedger(valkeyClient(t, addr), testPrefix(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
}

func TestLedgerMemory(t *testing.T) { runLedgerConformance(t, memoryLedger) }
func TestLedgerBolt(t *testing.T)   { runLedgerConformance(t, boltLedger) }
func TestLedgerValkey(t *testing.T) { runLedgerConformance(t, valkeyLedgerOpener(t)) }

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// out is an outbound sales SMS of customer c at at.
func out(id, c string, at time.Time) Touch {
	return Touch{ID: id, CustomerID: c, Channel: "sms", Direction: Outbound, Purpose: "sales", At: at}
}

func runLedgerConformance(t *testing.T, open openLedger) {
	ctx := context.Background()
	capWeek := Limit{Name: "frequency_cap", Purpose: "sales", Window: 7 * day, Max: 1}

	claim := func(t *testing.T, l Ledger, tc Touch, limits ...Limit) Claimed {
		t.Helper()
		c, err := l.Claim(ctx, tc, limits)
		if err != nil {
			t.Fatalf("Claim %s: %v", tc.ID, err)
		}
		return c
	}
	ids := func(t *testing.T, l Ledger, customer string, since time.Time) []string {
		t.Helper()
		ts, err := l.Touches(ctx, customer, since)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, u := range ts {
			out = append(out, u.ID)
		}
		return out
	}
	same := func(t *testing.T, got []string, want ...string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("touches %v, want %v", got, want)
		}
	}

	t.Run("records when no limit is reached", func(t *testing.T) {
		l := open(t, LedgerOptions{})
		c := claim(t, l, out("t1", "c1", t0), capWeek)
		if !c.Recorded || len(c.Reached) != 0 {
			t.Fatalf("%+v, want recorded", c)
		}
		ts, err := l.Touches(ctx, "c1", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 1 || ts[0] != out("t1", "c1", t0) {
			t.Fatalf("touches %+v", ts)
		}
	})

	t.Run("a cap of 1 in 7 days refuses the second until the first leaves", func(t *testing.T) {
		l := open(t, LedgerOptions{})
		first := out("t1", "c1", t0)
		claim(t, l, first, capWeek)
		c := claim(t, l, out("t2", "c1", t0.Add(3*day)), capWeek)
		if c.Recorded || len(c.Reached) != 1 {
			t.Fatalf("%+v, want one limit reached", c)
		}
		r := c.Reached[0]
		if r.Limit != capWeek || r.Count != 1 || r.First != first || !r.Until.Equal(t0.Add(7*day)) {
			t.Fatalf("reached %+v, want count 1, first t1, until %v", r, t0.Add(7*day))
		}
		if c := claim(t, l, out("t3", "c1", t0.Add(7*day)), capWeek); !c.Recorded {
			t.Fatalf("at Until: %+v, want recorded", c)
		}
		same(t, ids(t, l, "c1", time.Time{}), "t1", "t3")
	})

	t.Run("each filter field matters", func(t *testing.T) {
		fields := []struct {
			name string
			set  func(*Touch, string)
			lim  func(*Limit, string)
		}{
			{"purpose", func(u *Touch, v string) { u.Purpose = v }, func(l *Limit, v string) { l.Purpose = v }},
			{"channel", func(u *Touch, v string) { u.Channel = v }, func(l *Limit, v string) { l.Channel = v }},
			{"topic", func(u *Touch, v string) { u.Topic = v }, func(l *Limit, v string) { l.Topic = v }},
			{"campaign", func(u *Touch, v string) { u.Campaign = v }, func(l *Limit, v string) { l.Campaign = v }},
			{"outcome", func(u *Touch, v string) { u.Outcome = v }, func(l *Limit, v string) { l.Outcome = v }},
		}
		for _, f := range fields {
			t.Run(f.name, func(t *testing.T) {
				l := open(t, LedgerOptions{})
				lim := Limit{Name: "cap", Window: day, Max: 1}
				f.lim(&lim, "x")
				other := out("t1", "c1", t0)
				f.set(&other, "y")
				claim(t, l, other)
				if c := claim(t, l, out("t2", "c1", t0.Add(time.Hour)), lim); !c.Recorded {
					t.Fatalf("a touch with %s y counted for a limit on %s x: %+v", f.name, f.name, c)
				}
				match := out("t3", "c2", t0)
				f.set(&match, "x")
				claim(t, l, match)
				if c := claim(t, l, out("t4", "c2", t0.Add(time.Hour)), lim); c.Recorded || len(c.Reached) != 1 || c.Reached[0].First != match {
					t.Fatalf("a touch with %s x did not count for a limit on %s x: %+v", f.name, f.name, c)
				}
			})
		}
		t.Run("inbound touches never count", func(t *testing.T) {
			l := open(t, LedgerOptions{})
			in := out("t1", "c1", t0)
			in.Direction = Inbound
			claim(t, l, in)
			if c := claim(t, l, out("t2", "c1", t0.Add(time.Hour)), capWeek); !c.Recorded {
				t.Fatalf("%+v, want recorded", c)
			}
		})
	})

	t.Run("max 0 refuses any match and reports the first", func(t *testing.T) {
		l := open(t, LedgerOptions{})
		dup := Limit{Name: "duplicate_topic", Topic: "order-42", Window: 3 * day}
		first := out("t1", "c1", t0)
		first.Topic = "order-42"
		claim(t, l, first)
		second := first
		second.ID, second.At = "t2", t0.Add(time.Minute)
		if err := l.Record(ctx, second); err != nil {
			t.Fatal(err)
		}
		again := out("t3", "c1", t0.Add(time.Hour))
		c := claim(t, l, again, dup)
		if c.Recorded || len(c.Reached) != 1 {
			t.Fatalf("%+v, want refused", c)
		}
		// Every match must leave the window before the claim can pass.
		if r := c.Reached[0]; r.First != first || r.Count != 2 || !r.Until.Equal(second.At.Add(3*day)) {
			t.Fatalf("reached %+v, want first t1, count 2, until %v", r, second.At.Add(3*day))
		}
	})

	t.Run("every reached limit is reported", func(t *testing.T) {
		l := open(t, LedgerOptions{})
		call := out("t1", "c1", t0)
		call.Channel, call.Outcome = "voice", "abandoned"
		claim(t, l, call)
		limits := []Limit{
			{Name: "abandoned_lockout", Outcome: "abandoned", Window: 72 * time.Hour},
			{Name: "sms_cap", Channel: "sms", Window: day, Max: 1},
			capWeek,
		}
		c := claim(t, l, out("t2", "c1", t0.Add(time.Hour)), limits...)
		if c.Recorded || len(c.Reached) != 2 || c.Reached[0].Limit.Name != "abandoned_lockout" || c.Reached[1].Limit.Name != "frequency_cap" {
			t.Fatalf("%+v, want abandoned_lockout and frequency_cap", c)
		}
		if !c.Reached[0].Until.Equal(t0.Add(72*time.Hour)) || !c.Reached[1].Until.Equal(t0.Add(7*day)) {
			t.Fatalf("until %v and %v", c.Reached[0].Until, c.Reached[1].Until)
		}
	})

	t.Run("a retry with the same id adds nothing", func(t *testing.T) {
		l := open(t, LedgerOptions{})
		claim(t, l, out("t1", "c1", t0), capWeek)
		if c := claim(t, l, out("t1", "c1", t0), capWeek); !c.Recorded || len(c.Reached) != 0 {
			t.Fatalf("retry: %+v, want recorded", c)
		}
		if err := l.Record(ctx, out("t1", "c1", t0.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		same(t, ids(t, l, "c1", time.Time{}), "t1")
	})

	t.Run("window edges", func(t *testing.T) {
		l := open(t, LedgerOptions{})
		lim := Limit{Name: "cap", Window: time.Hour, Max: 1}
		claim(t, l, out("t1", "c1", t0))
		if c := claim(t, l, out("t2", "c1", t0.Add(time.Hour-time.Microsecond)), lim); c.Recorded {
			t.Fatalf("1µs inside the window: %+v, want refused", c)
		}
		if c := claim(t, l, out("t3", "c1", t0.Add(time.Hour)), lim); !c.Recorded {
			t.Fatalf("exactly a window later: %+v, want recorded", c)
		}
		// A touch dated after the claimed time counts too: two nodes whose
		// clocks differ by a moment race, and the one behind must not pass.
		if c := claim(t, l, out("t4", "c2", t0.Add(time.Millisecond)), lim); !c.Recorded {
			t.Fatal(c)
		}
		if c := claim(t, l, out("t5", "c2", t0), lim); c.Recorded {
			t.Fatalf("a touch a moment later was not counted: %+v", c)
		}
	})

	t.Run("touches are listed oldest first from since", func(t *testing.T) {
		l := open(t, LedgerOptions{})
		for i, off := range []time.Duration{3, 1, 2, 0} {
			u := out("t"+strconv.Itoa(i), "c1", t0.Add(off*time.Hour))
			u.Direction = Inbound
			if err := l.Record(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Record(ctx, out("ta", "c1", t0.Add(2*time.Hour))); err != nil {
			t.Fatal(err)
		}
		same(t, ids(t, l, "c1", time.Time{}), "t3", "t1", "t2", "ta", "t0")
		same(t, ids(t, l, "c1", t0.Add(2*time.Hour)), "t2", "ta", "t0")
		same(t, ids(t, l, "c1", t0.Add(2*time.Hour+time.Nanosecond)), "t0")
		same(t, ids(t, l, "nobody", time.Time{}))
		// Times come back in UTC to the microsecond.
		u := out("tz", "c2", time.Date(2026, 3, 2, 18, 0, 0, 1234567, time.FixedZone("CST", 8*3600)))
		if err := l.Record(ctx, u); err != nil {
			t.Fatal(err)
		}
		ts, _ := l.Touches(ctx, "c2", time.Time{})
		if len(ts) != 1 || ts[0].At != time.Date(2026, 3, 2, 10, 0, 0, 1234000, time.UTC) {
			t.Fatalf("%+v", ts)
		}
	})

	t.Run("merge", func(t *testing.T) {
		l := open(t, LedgerOptions{})
		claim(t, l, out("a1", "a", t0))
		claim(t, l, out("b1", "b", t0.Add(time.Hour)))
		shared := out("s", "a", t0.Add(2*time.Hour))
		claim(t, l, shared)
		shared.CustomerID = "b"
		claim(t, l, shared) // the same touch on both: kept once
		if err := l.Merge(ctx, "b", "a"); err != nil {
			t.Fatal(err)
		}
		same(t, ids(t, l, "b", time.Time{}), "a1", "b1", "s")
		same(t, ids(t, l, "a", time.Time{}), "a1", "b1", "s")
		// a's touches count for b's claims, and claims for a land on b.
		lim := Limit{Name: "cap", Window: day, Max: 3}
		if c := claim(t, l, out("b2", "b", t0.Add(3*time.Hour)), lim); c.Recorded || c.Reached[0].First.ID != "a1" {
			t.Fatalf("%+v, want refused by a1, b1 and s", c)
		}
		if c := claim(t, l, out("a2", "a", t0.Add(3*time.Hour)), lim); c.Recorded {
			t.Fatalf("claim for the merged customer: %+v, want refused", c)
		}
		if err := l.Record(ctx, out("a3", "a", t0.Add(4*time.Hour))); err != nil {
			t.Fatal(err)
		}
		same(t, ids(t, l, "b", time.Time{}), "a1", "b1", "s", "a3")
		if err := l.Merge(ctx, "b", "a"); err != nil {
			t.Fatalf("merging again: %v", err)
		}
		if err := l.Merge(ctx, "a", "b"); err != nil {
			t.Fatalf("merging back: %v", err)
		}
		// Chains: b into c counts a's touches for c too.
		if err := l.Merge(ctx, "c", "b"); err != nil {
			t.Fatal(err)
		}
		same(t, ids(t, l, "a", time.Time{}), "a1", "b1", "s", "a3")
		if err := l.Merge(ctx, "d", "a"); !errors.Is(err, ErrMergeConflict) {
			t.Fatalf("merging a merged customer elsewhere: %v, want ErrMergeConflict", err)
		}
		if err := l.Merge(ctx, "e", "e"); !errors.Is(err, ErrInvalidTouch) {
			t.Fatalf("merging into itself: %v", err)
		}
	})

	t.Run("retention", func(t *testing.T) {
		l := open(t, LedgerOptions{Retention: 30 * day})
		claim(t, l, out("t1", "c1", t0))
		claim(t, l, out("t2", "c1", t0.Add(30*day)))
		same(t, ids(t, l, "c1", time.Time{}), "t1", "t2")
		claim(t, l, out("t3", "c1", t0.Add(30*day+time.Microsecond)))
		same(t, ids(t, l, "c1", time.Time{}), "t2", "t3")
		_, err := l.Claim(ctx, out("t4", "c1", t0.Add(31*day)), []Limit{{Name: "long", Window: 31 * day}})
		if !errors.Is(err, ErrInvalidLimit) {
			t.Fatalf("a window longer than the retention: %v, want ErrInvalidLimit", err)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		l := open(t, LedgerOptions{})
		mod := func(f func(*Touch)) Touch {
			u := out("t1", "c1", t0)
			f(&u)
			return u
		}
		for _, tc := range []struct {
			name   string
			touch  Touch
			limits []Limit
			want   error
		}{
			{"empty customer", mod(func(u *Touch) { u.CustomerID = "" }), nil, ErrInvalidTouch},
			{"customer with a brace", mod(func(u *Touch) { u.CustomerID = "c{1}" }), nil, ErrInvalidTouch},
			{"empty id", mod(func(u *Touch) { u.ID = "" }), nil, ErrInvalidTouch},
			{"unknown direction", mod(func(u *Touch) { u.Direction = "sideways" }), nil, ErrInvalidTouch},
			{"no time", mod(func(u *Touch) { u.At = time.Time{} }), nil, ErrInvalidTouch},
			{"negative window", out("t1", "c1", t0), []Limit{{Name: "cap", Window: -time.Hour, Max: 1}}, ErrInvalidLimit},
			{"zero window", out("t1", "c1", t0), []Limit{{Name: "cap", Max: 1}}, ErrInvalidLimit},
			{"negative max", out("t1", "c1", t0), []Limit{{Name: "cap", Window: time.Hour, Max: -1}}, ErrInvalidLimit},
			{"unnamed limit", out("t1", "c1", t0), []Limit{{Window: time.Hour, Max: 1}}, ErrInvalidLimit},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, err := l.Claim(ctx, tc.touch, tc.limits)
				if !errors.Is(err, tc.want) || c.Recorded {
					t.Fatalf("Claim: %+v, %v; want %v", c, err, tc.want)
				}
				if tc.limits == nil {
					if err := l.Record(ctx, tc.touch); !errors.Is(err, tc.want) {
						t.Fatalf("Record: %v, want %v", err, tc.want)
					}
				}
			})
		}
		same(t, ids(t, l, "c1", time.Time{}))
		if _, err := l.Touches(ctx, "", time.Time{}); !errors.Is(err, ErrInvalidTouch) {
			t.Fatalf("Touches of no customer: %v", err)
		}
	})
}

// raceClaims has two claimers race for one customer per trial under a cap
// of 1; exactly one must record, every trial.
func raceClaims(t *testing.T, a, b Ledger, trials int) {
	ctx := context.Background()
	lim := []Limit{{Name: "frequency_cap", Purpose: "sales", Window: 7 * day, Max: 1}}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range trials {
		customer := "race" + strconv.Itoa(i)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var recorded atomic.Int64
			var inner sync.WaitGroup
			for j, l := range []Ledger{a, b} {
				inner.Add(1)
				go func() {
					defer inner.Done()
					c, err := l.Claim(ctx, out(customer+"-"+strconv.Itoa(j), customer, t0), lim)
					if err != nil {
						t.Error(err)
					}
					if c.Recorded {
						recorded.Add(1)
					}
				}()
			}
			inner.Wait()
			ts, err := a.Touches(ctx, customer, time.Time{})
			if n := recorded.Load(); err != nil || n != 1 || len(ts) != 1 {
				failed.Add(1)
				t.Errorf("trial %d: %d recorded, %d stored (%v), want 1", i, n, len(ts), err)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d trials did not record exactly one", n, trials)
	}
}

func TestLedgerRaceMemory(t *testing.T) {
	l := NewMemoryLedger(LedgerOptions{})
	raceClaims(t, l, l, 1000)
}

func TestLedgerRaceBolt(t *testing.T) {
	l := boltLedger(t, LedgerOptions{})
	raceClaims(t, l, l, 1000)
}

// TestLedgerRaceValkey is the cluster test: two ledgers on their
// own clients stand for two gateway processes on one Valkey.
func TestLedgerRaceValkey(t *testing.T) {
	addr := testredis.Addr(t)
	prefix := testPrefix()
	a, err := NewValkeyLedger(valkeyClient(t, addr), prefix, LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewValkeyLedger(valkeyClient(t, addr), prefix, LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raceClaims(t, a, b, 1000)
}
