package kpi

import (
	"context"
	"sync"
)

var _ Store = (*MemoryStore)(nil)

// MemoryStore keeps counts in memory: for tests and a gateway with no
// data directory to keep them in.
type MemoryStore struct {
	mu     sync.Mutex
	slots  map[int64]Counts
	closed bool
}

func NewMemoryStore() *MemoryStore { return &MemoryStore{slots: map[int64]Counts{}} }

func (s *MemoryStore) Add(_ context.Context, deltas map[int64]Counts) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for slot, d := range deltas {
		c := s.slots[slot]
		if c == nil {
			c = Counts{}
			s.slots[slot] = c
		}
		c.merge(d)
	}
	return nil
}

func (s *MemoryStore) Load(_ context.Context, from, to int64) (map[int64]Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := map[int64]Counts{}
	for slot, c := range s.slots {
		if slot >= from && slot < to {
			cp := Counts{}
			cp.merge(c)
			out[slot] = cp
		}
	}
	return out, nil
}

func (s *MemoryStore) Lead(context.Context) (bool, error) { return true, nil }

func (s *MemoryStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}
