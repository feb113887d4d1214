package dialer

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A campaign of 100k customers in the bolt store: what a tick's Due and
// a Progress (which reads every attempt) cost.
func benchBolt(b *testing.B, n int) *BoltStore {
	b.Helper()
	s, err := OpenBoltStore(filepath.Join(b.TempDir(), "dialer.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	all := make([]Attempt, n)
	for i := range all {
		all[i] = att("big", i, AttemptDue, t0.Add(time.Duration(i)*time.Millisecond))
	}
	for batch := range slices.Chunk(all, maxBatch) {
		if _, err := s.SaveAttempts(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkBoltDue50Of100k(b *testing.B) {
	s := benchBolt(b, 100_000)
	for b.Loop() {
		if due, err := s.Due(context.Background(), "big", t0.Add(time.Hour), 50); err != nil || len(due) != 50 {
			b.Fatal(len(due), err)
		}
	}
}

func BenchmarkBoltAttempts100k(b *testing.B) {
	s := benchBolt(b, 100_000)
	for b.Loop() {
		if as, err := s.Attempts(context.Background(), "big"); err != nil || len(as) != 100_000 {
			b.Fatal(len(as), err)
		}
	}
}

func BenchmarkBoltDialStep(b *testing.B) {
	s := benchBolt(b, 1)
	a, _ := s.Attempt(context.Background(), attemptID("big", 0, 1))
	for b.Loop() {
		a.State = AttemptRinging
		saved, err := s.SaveAttempts(context.Background(), a)
		if err != nil {
			b.Fatal(err)
		}
		a = saved[0]
	}
}

func BenchmarkBoltCounts100k(b *testing.B) {
	s := benchBolt(b, 100_000)
	for b.Loop() {
		if n, err := s.Counts(context.Background(), "big"); err != nil || n["state:due"] != 100_000 {
			b.Fatal(n, err)
		}
	}
}
