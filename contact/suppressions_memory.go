package contact

import (
	"context"
	"maps"
	"slices"
	"sync"
)

// MemorySuppressions keeps the list in process memory, for tests.
type MemorySuppressions struct {
	mu      sync.Mutex
	entries map[string]Suppression // by entryKey
}

var _ Suppressions = (*MemorySuppressions)(nil)

// NewMemorySuppressions returns an empty list.
func NewMemorySuppressions() *MemorySuppressions {
	return &MemorySuppressions{entries: make(map[string]Suppression)}
}

func (m *MemorySuppressions) Add(ctx context.Context, s Suppression) error {
	s, err := normalizeSuppression(s)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[s.key()]; !ok {
		m.entries[s.key()] = s
	}
	return nil
}

func (m *MemorySuppressions) Remove(ctx context.Context, kind, value, channel, purpose string) error {
	k, err := removeKey(kind, value, channel, purpose)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[k]; !ok {
		return ErrNoSuppression
	}
	delete(m.entries, k)
	return nil
}

func (m *MemorySuppressions) Match(ctx context.Context, keys []Key, channel, purpose string) ([]Suppression, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	eks := matchKeys(keys, channel, purpose)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Suppression
	for _, k := range eks {
		if s, ok := m.entries[k]; ok {
			out = append(out, s)
		}
	}
	return out, nil
}

func (m *MemorySuppressions) List(ctx context.Context, cursor string, limit int) ([]Suppression, string, error) {
	after, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := slices.Sorted(maps.Keys(m.entries))
	i, found := slices.BinarySearch(keys, after)
	if found {
		i++
	}
	n := pageSize(limit)
	var out []Suppression
	for _, k := range keys[i:min(i+n, len(keys))] {
		out = append(out, m.entries[k])
	}
	if i+n >= len(keys) {
		return out, "", nil
	}
	return out, encodeCursor(keys[i+n-1]), nil
}

// Close does nothing: the list lives as long as it is referenced.
func (m *MemorySuppressions) Close() error { return nil }
