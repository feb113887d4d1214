package contact

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryLedger keeps the ledger in process memory: for tests, and the
// reference the conformance suite holds the others to. One mutex guards
// everything, so a Claim is atomic with every other call; it is held for
// a binary search and a short scan, well under a microsecond at the sizes
// a customer's history reaches.
type MemoryLedger struct {
	retention time.Duration

	mu        sync.Mutex
	customers map[string]*memoryHistory
	// merged maps a customer merged away to the customer it went into.
	merged map[string]string
}

// memoryHistory is one customer's touches, in touchOrder, and their ids.
type memoryHistory struct {
	touches []Touch
	ids     map[string]struct{}
}

var _ Ledger = (*MemoryLedger)(nil)

// NewMemoryLedger returns an empty ledger.
func NewMemoryLedger(opts LedgerOptions) *MemoryLedger {
	return &MemoryLedger{
		retention: opts.retention(),
		customers: make(map[string]*memoryHistory),
		merged:    make(map[string]string),
	}
}

// resolve follows merges from id to the customer that holds its touches.
func (m *MemoryLedger) resolve(id string) (string, error) {
	for range maxMergeHops {
		into, ok := m.merged[id]
		if !ok {
			return id, nil
		}
		id = into
	}
	return "", fmt.Errorf("contact: customer %s: merges go on for more than %d customers", id, maxMergeHops)
}

func (m *MemoryLedger) Claim(ctx context.Context, t Touch, limits []Limit) (Claimed, error) {
	t, err := normalizeTouch(t)
	if err != nil {
		return Claimed{}, err
	}
	if err := checkLimits(limits, m.retention); err != nil {
		return Claimed{}, err
	}
	if err := ctx.Err(); err != nil {
		return Claimed{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	owner, err := m.resolve(t.CustomerID)
	if err != nil {
		return Claimed{}, err
	}
	h := m.customers[owner]
	if h == nil {
		h = &memoryHistory{ids: make(map[string]struct{})}
		m.customers[owner] = h
	}
	if _, ok := h.ids[t.ID]; ok {
		return Claimed{Recorded: true}, nil
	}
	if len(limits) > 0 {
		lo, _ := slices.BinarySearchFunc(h.touches, t.At.Add(-widest(limits)), func(u Touch, at time.Time) int {
			if u.At.After(at) {
				return 1
			}
			return -1 // the window's start is out: search past touches at it
		})
		if r := evaluate(h.touches[lo:], t.At, limits); len(r) > 0 {
			return Claimed{Reached: r}, nil
		}
	}
	h.add(t, t.At.Add(-m.retention))
	return Claimed{Recorded: true}, nil
}

// add inserts t in order and drops what is older than cutoff.
func (h *memoryHistory) add(t Touch, cutoff time.Time) {
	i, _ := slices.BinarySearchFunc(h.touches, t, touchOrder)
	h.touches = slices.Insert(h.touches, i, t)
	h.ids[t.ID] = struct{}{}
	old := 0
	for old < len(h.touches) && h.touches[old].At.Before(cutoff) {
		delete(h.ids, h.touches[old].ID)
		old++
	}
	h.touches = slices.Delete(h.touches, 0, old)
}

func (m *MemoryLedger) Record(ctx context.Context, t Touch) error {
	_, err := m.Claim(ctx, t, nil)
	return err
}

func (m *MemoryLedger) Touches(ctx context.Context, customerID string, since time.Time) ([]Touch, error) {
	if err := checkCustomerID(customerID); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	owner, err := m.resolve(customerID)
	if err != nil {
		return nil, err
	}
	h := m.customers[owner]
	if h == nil {
		return nil, nil
	}
	i, _ := slices.BinarySearchFunc(h.touches, since, func(u Touch, at time.Time) int {
		if u.At.Before(at) {
			return -1
		}
		return 1
	})
	return slices.Clone(h.touches[i:]), nil
}

func (m *MemoryLedger) Merge(ctx context.Context, into, from string) error {
	if err := checkMerge(into, from); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	root, err := m.resolve(into)
	if err != nil {
		return err
	}
	if cur, ok := m.merged[from]; ok {
		if r, err := m.resolve(cur); err != nil || r != root {
			return fmt.Errorf("%w: %s went into %s, not %s", ErrMergeConflict, from, cur, into)
		}
		return nil
	}
	if root == from {
		return nil // into was merged into from: from already holds both
	}
	m.merged[from] = root
	src := m.customers[from]
	delete(m.customers, from)
	if src == nil {
		return nil
	}
	dst := m.customers[root]
	if dst == nil {
		dst = &memoryHistory{ids: make(map[string]struct{})}
		m.customers[root] = dst
	}
	for _, t := range src.touches {
		if _, ok := dst.ids[t.ID]; !ok {
			dst.add(t, time.Time{})
		}
	}
	return nil
}

// Close does nothing: the ledger lives as long as it is referenced.
func (m *MemoryLedger) Close() error { return nil }

// checkMerge refuses a merge of a customer into itself or with a bad id.
func checkMerge(into, from string) error {
	if err := checkCustomerID(into); err != nil {
		return err
	}
	if err := checkCustomerID(from); err != nil {
		return err
	}
	if into == from {
		return fmt.Errorf("%w: cannot merge customer %s into itself", ErrInvalidTouch, into)
	}
	return nil
}
