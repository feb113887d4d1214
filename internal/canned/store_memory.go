package canned

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// MemoryStore keeps responses in memory, for tests.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]map[string]Response
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string]map[string]Response{}} }

func (s *MemoryStore) List(_ context.Context, owner string) ([]Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Response, 0, len(s.m[owner]))
	for _, r := range s.m[owner] {
		out = append(out, r)
	}
	sortResponses(out)
	return out, nil
}

func (s *MemoryStore) Put(_ context.Context, owner string, r Response) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[owner] == nil {
		s.m[owner] = map[string]Response{}
	}
	s.m[owner][r.ID] = r
	return nil
}

func (s *MemoryStore) Delete(_ context.Context, owner, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[owner][id]
	delete(s.m[owner], id)
	return ok, nil
}

func (s *MemoryStore) Close() error { return nil }

func sortResponses(rs []Response) {
	slices.SortFunc(rs, func(a, b Response) int {
		return cmpOr(strings.Compare(a.Shortcut, b.Shortcut), strings.Compare(a.ID, b.ID))
	})
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}
