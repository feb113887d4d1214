package router

import (
	"context"
	"fmt"
	"maps"
	"sync"
)

var _ State = (*MemoryState)(nil)

// MemoryState is the State of a single gateway process.
type MemoryState struct {
	mu       sync.Mutex
	waiting  map[string]string // conversation -> queue
	claims   map[string]memClaim
	used     map[string]int // rep -> units
	presence map[string]Presence
}

type memClaim struct {
	rep   string
	units int
}

// NewMemoryState returns an empty state.
func NewMemoryState() *MemoryState {
	return &MemoryState{waiting: map[string]string{}, claims: map[string]memClaim{}, used: map[string]int{},
		presence: map[string]Presence{}}
}

func (s *MemoryState) Push(_ context.Context, queue, conv string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.waiting[conv]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicate, conv)
	}
	if _, ok := s.claims[conv]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicate, conv)
	}
	s.waiting[conv] = queue
	return nil
}

func (s *MemoryState) Claim(_ context.Context, c Claim) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.waiting[c.ConversationID]; !ok || q != c.Queue {
		return fmt.Errorf("%w: %s", ErrTaken, c.ConversationID)
	}
	if s.used[c.RepID]+c.Units > c.Limit {
		return fmt.Errorf("%w: %s has %d of %d, needs %d", ErrCapacity, c.RepID, s.used[c.RepID], c.Limit, c.Units)
	}
	delete(s.waiting, c.ConversationID)
	s.claims[c.ConversationID] = memClaim{rep: c.RepID, units: c.Units}
	s.used[c.RepID] += c.Units
	return nil
}

func (s *MemoryState) Unclaim(_ context.Context, conv, requeue string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freeLocked(conv)
	if requeue != "" {
		s.waiting[conv] = requeue
	} else {
		delete(s.waiting, conv)
	}
	return nil
}

func (s *MemoryState) freeLocked(conv string) {
	if c, ok := s.claims[conv]; ok {
		delete(s.claims, conv)
		s.used[c.rep] -= c.units
		if s.used[c.rep] <= 0 {
			delete(s.used, c.rep)
		}
	}
}

func (s *MemoryState) Drop(_ context.Context, queue, conv string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiting[conv] == queue {
		delete(s.waiting, conv)
	}
	return nil
}

func (s *MemoryState) Used(_ context.Context, rep string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used[rep], nil
}

func (s *MemoryState) Adopt(_ context.Context, c Claim) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freeLocked(c.ConversationID)
	delete(s.waiting, c.ConversationID)
	s.claims[c.ConversationID] = memClaim{rep: c.RepID, units: c.Units}
	s.used[c.RepID] += c.Units
	return nil
}

func (s *MemoryState) Holds(_ context.Context, conv, rep string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.claims[conv]
	return ok && c.rep == rep, nil
}

func (s *MemoryState) Loads(context.Context) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.used), nil
}

func (s *MemoryState) SetPresence(_ context.Context, rep string, p Presence) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.presence[rep] = p
	return nil
}

func (s *MemoryState) Presences(context.Context) (map[string]Presence, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.presence), nil
}
