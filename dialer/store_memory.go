package dialer

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore keeps everything in process memory: for tests, and the
// reference the conformance suite holds the others to. One mutex guards
// it all. Leases use the clock given (a test moves it to lapse one).
type MemoryStore struct {
	localLeases

	mu        sync.Mutex
	campaigns map[string]Campaign
	attempts  map[string]Attempt
	counts    map[string]Counts
}

// localLeases are leases held in the process: the memory store's, and
// the bolt store's (its file lock keeps it to one process anyway).
type localLeases struct {
	clock  Clock
	mu     sync.Mutex
	leases map[string]localLease
}

type localLease struct {
	holder string
	until  time.Time
}

func newLocalLeases(clock Clock) localLeases {
	if clock == nil {
		clock = SystemClock{}
	}
	return localLeases{clock: clock, leases: map[string]localLease{}}
}

func (l *localLeases) Lease(ctx context.Context, campaign, holder string, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if cur, ok := l.leases[campaign]; ok && cur.holder != holder && now.Before(cur.until) {
		return false, nil
	}
	l.leases[campaign] = localLease{holder: holder, until: now.Add(ttl)}
	return true, nil
}

func (l *localLeases) Unlease(ctx context.Context, campaign, holder string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leases[campaign].holder == holder {
		delete(l.leases, campaign)
	}
	return nil
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store; clock nil is the system clock.
func NewMemoryStore(clock Clock) *MemoryStore {
	return &MemoryStore{localLeases: newLocalLeases(clock), campaigns: map[string]Campaign{}, attempts: map[string]Attempt{},
		counts: map[string]Counts{}}
}

func (m *MemoryStore) CreateCampaign(ctx context.Context, c Campaign) (Campaign, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.campaigns[c.ID()]; ok || c.Version != 0 {
		return Campaign{}, fmt.Errorf("%w: campaign %s exists", ErrConflict, c.ID())
	}
	c.Version = 1
	m.campaigns[c.ID()] = c
	return c, nil
}

func (m *MemoryStore) SaveCampaign(ctx context.Context, c Campaign) (Campaign, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.campaigns[c.ID()]
	if !ok {
		return Campaign{}, fmt.Errorf("%w: campaign %s", ErrNotFound, c.ID())
	}
	if old.Version != c.Version {
		return Campaign{}, fmt.Errorf("%w: campaign %s is at version %d, not %d", ErrConflict, c.ID(), old.Version, c.Version)
	}
	c.Version++
	m.campaigns[c.ID()] = c
	return c, nil
}

func (m *MemoryStore) Campaign(ctx context.Context, id string) (Campaign, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.campaigns[id]
	if !ok {
		return Campaign{}, fmt.Errorf("%w: campaign %s", ErrNotFound, id)
	}
	return c, nil
}

func (m *MemoryStore) Campaigns(ctx context.Context) ([]Campaign, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Campaign, 0, len(m.campaigns))
	for _, c := range m.campaigns {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Campaign) int { return cmp.Compare(a.ID(), b.ID()) })
	return out, nil
}

func (m *MemoryStore) SaveAttempts(ctx context.Context, as ...Attempt) ([]Attempt, error) {
	if err := checkBatch(as); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range as {
		if err := casAttempt(a, m.attempts[a.ID].Version); err != nil {
			return nil, err
		}
	}
	out := make([]Attempt, len(as))
	c := m.counts[as[0].Campaign]
	if c == nil {
		c = Counts{}
		m.counts[as[0].Campaign] = c
	}
	for i, a := range as {
		if old, ok := m.attempts[a.ID]; ok {
			for _, k := range countKeys(old) {
				c[k]--
			}
		}
		for _, k := range countKeys(a) {
			c[k]++
		}
		a.Version++
		m.attempts[a.ID] = a
		out[i] = a
	}
	return out, nil
}

func (m *MemoryStore) Counts(ctx context.Context, campaign string) (Counts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := Counts{}
	for k, v := range m.counts[campaign] {
		if v != 0 {
			out[k] = v
		}
	}
	return out, nil
}

func (m *MemoryStore) Attempt(ctx context.Context, id string) (Attempt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.attempts[id]
	if !ok {
		return Attempt{}, fmt.Errorf("%w: attempt %s", ErrNotFound, id)
	}
	return a, nil
}

func (m *MemoryStore) Attempts(ctx context.Context, campaign string) ([]Attempt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Attempt
	for _, a := range m.attempts {
		if a.Campaign == campaign {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Attempt) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (m *MemoryStore) Due(ctx context.Context, campaign string, at time.Time, limit int) ([]Attempt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Attempt
	for _, a := range m.attempts {
		if a.Campaign == campaign && a.State == AttemptDue && !a.Due.After(at) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, dueOrder)
	return out[:min(limit, len(out))], nil
}

func (m *MemoryStore) Close() error { return nil }

// dueOrder is the order Due answers in.
func dueOrder(a, b Attempt) int {
	return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.ID, b.ID))
}

// checkBatch refuses a SaveAttempts that spans campaigns or names an
// attempt twice.
func checkBatch(as []Attempt) error {
	seen := make(map[string]bool, len(as))
	for _, a := range as {
		switch {
		case a.ID == "" || campaignOf(a.ID) != a.Campaign:
			return fmt.Errorf("%w: attempt id %q does not name its campaign %q", ErrInvalid, a.ID, a.Campaign)
		case a.Campaign != as[0].Campaign:
			return fmt.Errorf("%w: one save spans campaigns %s and %s", ErrInvalid, as[0].Campaign, a.Campaign)
		case seen[a.ID]:
			return fmt.Errorf("%w: attempt %s twice in one save", ErrInvalid, a.ID)
		}
		seen[a.ID] = true
	}
	return nil
}

// casAttempt checks a's Version against the stored one (0: none).
func casAttempt(a Attempt, stored uint64) error {
	if a.Version != stored {
		return fmt.Errorf("%w: attempt %s is at version %d, not %d", ErrConflict, a.ID, stored, a.Version)
	}
	return nil
}
