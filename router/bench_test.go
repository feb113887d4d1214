package router

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// BenchmarkDecision measures decision latency at scale: 1,000 reps, every
// one busy, and 10,000 tasks waiting across skills, languages and
// priorities. Each iteration ends a call (Release: the freed rep gets the
// first waiting task it is eligible for, with the full explanation) and
// enqueues a new task (which waits: every rep is evaluated and the queued
// decision explained). p50/p99 of each come from a histogram of every
// call. Timers run every 100 iterations, untimed.
func BenchmarkDecision(b *testing.B) { benchDecision(b, NewMemoryState()) }

// BenchmarkDecisionValkey is BenchmarkDecision claiming through a real
// Valkey/Redis server (OMNIGATE_VALKEY_ADDR, or a redis-server started for
// the benchmark), as a gateway node does (NewValkeyNodeState, with its
// lease): an assignment is one Lua round trip to release the call and one
// to claim the next task. assignments/s is the throughput of one router
// (one node) doing both.
func BenchmarkDecisionValkey(b *testing.B) {
	st, err := NewValkeyNodeState(valkeyClient(b), testPrefix(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Heartbeat(context.Background(), time.Hour); err != nil {
		b.Fatal(err)
	}
	benchDecision(b, st)
}

func benchDecision(b *testing.B, st State) {
	const nReps, nWaiting = 1000, 10_000
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	skills := []string{"support", "sales", "billing", "tech", "retention"}
	langs := []string{"en", "zh", "es"}
	clk := NewManualClock(t0)
	cfg := Config{Queues: []QueueConfig{{Name: "voice", Owner: OwnerConfig{Wait: 20 * time.Second},
		AnyTier: true, Relaxed: RelaxedConfig{After: time.Hour, IgnoreLevels: true}}}}
	for i := range nReps {
		rep := Rep{ID: fmt.Sprintf("rep%04d", i), Tier: 1 + i%5/4, Skills: map[string]int{}, Languages: []string{"en", langs[i%3]}}
		for j, s := range skills {
			if (i+j)%2 == 0 {
				rep.Skills[s] = 1 + rng.IntN(10)
			}
		}
		cfg.Reps = append(cfg.Reps, rep)
	}
	r, err := New(cfg, Options{Clock: clk, State: st})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	task := func() Task {
		n++
		t := Task{ConversationID: fmt.Sprint("c", n), CustomerID: fmt.Sprint("k", n), Channel: sessions.ChannelVoice,
			VIP: rng.IntN(20) == 0, Tier: []sessions.Tier{"", "A", "B", "C", "D"}[rng.IntN(5)],
			Skills: map[string]int{skills[rng.IntN(len(skills))]: 1 + rng.IntN(5)}, Language: langs[rng.IntN(3)]}
		if rng.IntN(4) == 0 {
			t.Owner = fmt.Sprintf("rep%04d", rng.IntN(nReps))
		}
		return t
	}
	// Fill every rep with a call each (tasks anyone can take), then queue.
	var active []string
	for _, rep := range cfg.Reps {
		if _, err := r.SetPresence(ctx, rep.ID, PresenceAvailable); err != nil {
			b.Fatal(err)
		}
	}
	for _, rep := range cfg.Reps {
		n++
		conv := fmt.Sprint("c", n)
		d, err := r.Enqueue(ctx, Task{ConversationID: conv, Channel: sessions.ChannelVoice, Assignee: rep.ID})
		if err != nil || d.Kind != KindAssign {
			b.Fatalf("%v %+v", err, d)
		}
		active = append(active, conv)
	}
	for range nWaiting {
		clk.Advance(time.Millisecond)
		if _, err := r.Enqueue(ctx, task()); err != nil {
			b.Fatal(err)
		}
	}
	var rel, enq []time.Duration
	var relTotal time.Duration
	b.ResetTimer()
	for i := range b.N {
		now := clk.Advance(10 * time.Millisecond)
		if i%100 == 0 {
			// Timers (owner waits ending) run as in production, untimed.
			ds, err := r.Tick(ctx, now)
			if err != nil {
				b.Fatal(err)
			}
			for _, d := range ds {
				if d.Kind == KindAssign {
					active = append(active, d.ConversationID)
				}
			}
		}
		k := rng.IntN(len(active))
		start := time.Now()
		ds, err := r.Release(ctx, active[k])
		el := time.Since(start)
		rel = append(rel, el)
		relTotal += el
		if err != nil {
			b.Fatal(err)
		}
		active[k] = active[len(active)-1]
		active = active[:len(active)-1]
		for _, d := range ds {
			if d.Kind == KindAssign {
				active = append(active, d.ConversationID)
			}
		}
		t := task()
		start = time.Now()
		d, err := r.Enqueue(ctx, t)
		enq = append(enq, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if d.Kind == KindAssign {
			active = append(active, t.ConversationID)
		}
		if i%1000 == 999 {
			b.StopTimer()
			if w := r.Waiting(); w < nWaiting-500 || w > nWaiting+500 {
				b.Fatalf("waiting drifted to %d", w)
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	report := func(name string, xs []time.Duration) {
		slices.Sort(xs)
		b.ReportMetric(float64(xs[len(xs)/2].Nanoseconds())/1e3, name+"_p50_µs")
		b.ReportMetric(float64(xs[min(len(xs)-1, len(xs)*99/100)].Nanoseconds())/1e3, name+"_p99_µs")
		b.ReportMetric(float64(xs[len(xs)*90/100].Nanoseconds())/1e3, name+"_p90_µs")
		b.ReportMetric(float64(xs[len(xs)*95/100].Nanoseconds())/1e3, name+"_p95_µs")
	}
	b.ReportMetric(float64(len(rel))/relTotal.Seconds(), "assignments/s")
	report("release", rel)
	report("enqueue", enq)
}
