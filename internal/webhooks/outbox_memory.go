package webhooks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryOutbox keeps everything in memory: for tests, lost at exit.
type MemoryOutbox struct {
	mu         sync.Mutex
	closed     bool
	endpoints  map[string]Endpoint
	deliveries map[string]Delivery
	attempts   map[string][]Attempt // by endpoint, oldest first
	cursors    map[string]uint64
	checkpoint time.Time
}

var _ Outbox = (*MemoryOutbox)(nil)

// NewMemoryOutbox returns an empty outbox.
func NewMemoryOutbox() *MemoryOutbox {
	return &MemoryOutbox{endpoints: map[string]Endpoint{}, deliveries: map[string]Delivery{},
		attempts: map[string][]Attempt{}, cursors: map[string]uint64{}}
}

func (m *MemoryOutbox) lock() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

func (m *MemoryOutbox) PutEndpoint(ctx context.Context, ep Endpoint) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	ep.EventTypes = slices.Clone(ep.EventTypes)
	m.endpoints[ep.ID] = ep
	return nil
}

func (m *MemoryOutbox) Endpoint(ctx context.Context, id string) (Endpoint, error) {
	if err := m.lock(); err != nil {
		return Endpoint{}, err
	}
	defer m.mu.Unlock()
	ep, ok := m.endpoints[id]
	if !ok {
		return Endpoint{}, fmt.Errorf("%w: endpoint %s", ErrNotFound, id)
	}
	ep.EventTypes = slices.Clone(ep.EventTypes)
	return ep, nil
}

func (m *MemoryOutbox) Endpoints(ctx context.Context) ([]Endpoint, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make([]Endpoint, 0, len(m.endpoints))
	for _, ep := range m.endpoints {
		ep.EventTypes = slices.Clone(ep.EventTypes)
		out = append(out, ep)
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (m *MemoryOutbox) DeleteEndpoint(ctx context.Context, id string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.endpoints[id]; !ok {
		return fmt.Errorf("%w: endpoint %s", ErrNotFound, id)
	}
	delete(m.endpoints, id)
	delete(m.attempts, id)
	for k, d := range m.deliveries {
		if d.EndpointID == id {
			delete(m.deliveries, k)
		}
	}
	return nil
}

func (m *MemoryOutbox) MarkEndpoint(ctx context.Context, id string, ok bool, now time.Time, disableAfter time.Duration) (Endpoint, bool, error) {
	if err := m.lock(); err != nil {
		return Endpoint{}, false, err
	}
	defer m.mu.Unlock()
	ep, found := m.endpoints[id]
	if !found {
		return Endpoint{}, false, fmt.Errorf("%w: endpoint %s", ErrNotFound, id)
	}
	next, disable := markHealth(ep, ok, now, disableAfter)
	m.endpoints[id] = next
	if disable {
		for k, d := range m.deliveries {
			if d.EndpointID == id && d.State == StatePending {
				m.deliveries[k] = killed(d, now)
			}
		}
	}
	return next, disable, nil
}

// markHealth is MarkEndpoint's rule, shared by every outbox.
func markHealth(ep Endpoint, ok bool, now time.Time, disableAfter time.Duration) (Endpoint, bool) {
	switch {
	case ok:
		ep.FailingSince = time.Time{}
	case ep.Disabled:
	case ep.FailingSince.IsZero():
		ep.FailingSince = now
	case now.Sub(ep.FailingSince) >= disableAfter:
		ep.Disabled, ep.DisabledAt = true, now
		ep.DisabledReason = fmt.Sprintf("every delivery failed for %v (since %s)", now.Sub(ep.FailingSince).Round(time.Second),
			ep.FailingSince.UTC().Format(time.RFC3339))
		return ep, true
	}
	return ep, false
}

func killed(d Delivery, now time.Time) Delivery {
	d.State, d.NextAttempt, d.DeadAt, d.DeadReason = StateDead, time.Time{}, now, "endpoint disabled"
	return d
}

func (m *MemoryOutbox) Enqueue(ctx context.Context, ds []Delivery, cursors map[string]uint64, checkpoint time.Time) (int, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	added := 0
	for _, d := range ds {
		if _, ok := m.endpoints[d.EndpointID]; !ok {
			continue // deleted meanwhile
		}
		if _, dup := m.deliveries[d.ID]; dup {
			continue
		}
		m.deliveries[d.ID] = d
		added++
	}
	for c, seq := range cursors {
		if cur, ok := m.cursors[c]; !ok || seq > cur {
			m.cursors[c] = seq
		}
	}
	if checkpoint.After(m.checkpoint) {
		m.checkpoint = checkpoint
	}
	return added, nil
}

func (m *MemoryOutbox) Cursor(ctx context.Context, customerID string) (uint64, bool, error) {
	if err := m.lock(); err != nil {
		return 0, false, err
	}
	defer m.mu.Unlock()
	seq, ok := m.cursors[customerID]
	return seq, ok, nil
}

func (m *MemoryOutbox) Touch(ctx context.Context, customerID string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.cursors[customerID]; !ok {
		m.cursors[customerID] = 0
	}
	return nil
}

func (m *MemoryOutbox) EachCursor(ctx context.Context, fn func(string, uint64) error) error {
	if err := m.lock(); err != nil {
		return err
	}
	type kv struct {
		c   string
		seq uint64
	}
	list := make([]kv, 0, len(m.cursors))
	for c, seq := range m.cursors {
		list = append(list, kv{c, seq})
	}
	m.mu.Unlock()
	slices.SortFunc(list, func(a, b kv) int { return strings.Compare(a.c, b.c) })
	for _, e := range list {
		if err := fn(e.c, e.seq); err != nil {
			return err
		}
	}
	return nil
}

func (m *MemoryOutbox) Checkpoint(ctx context.Context) (time.Time, error) {
	if err := m.lock(); err != nil {
		return time.Time{}, err
	}
	defer m.mu.Unlock()
	return m.checkpoint, nil
}

func (m *MemoryOutbox) Due(ctx context.Context, now time.Time, limit int) ([]Delivery, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []Delivery
	for _, d := range m.deliveries {
		if d.State == StatePending && !d.NextAttempt.After(now) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Delivery) int {
		if c := a.NextAttempt.Compare(b.NextAttempt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *MemoryOutbox) Record(ctx context.Context, d Delivery, a Attempt) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.deliveries[d.ID]; !ok {
		return fmt.Errorf("%w: delivery %s", ErrNotFound, d.ID)
	}
	m.deliveries[d.ID] = d
	m.attempts[d.EndpointID] = append(m.attempts[d.EndpointID], a)
	return nil
}

func (m *MemoryOutbox) Delivery(ctx context.Context, id string) (Delivery, error) {
	if err := m.lock(); err != nil {
		return Delivery{}, err
	}
	defer m.mu.Unlock()
	d, ok := m.deliveries[id]
	if !ok {
		return Delivery{}, fmt.Errorf("%w: delivery %s", ErrNotFound, id)
	}
	return d, nil
}

func (m *MemoryOutbox) Deliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, string, error) {
	if err := m.lock(); err != nil {
		return nil, "", err
	}
	defer m.mu.Unlock()
	type keyed struct {
		k string
		d Delivery
	}
	var list []keyed
	for _, d := range m.deliveries {
		if d.EndpointID != q.EndpointID || (q.State != "" && d.State != q.State) {
			continue
		}
		k := listKey(d.CreatedAt, d.ID, 0)
		if q.Cursor != "" && k >= q.Cursor {
			continue
		}
		list = append(list, keyed{k, d})
	}
	slices.SortFunc(list, func(a, b keyed) int { return strings.Compare(b.k, a.k) })
	limit := pageLimit(q.Limit)
	next := ""
	if len(list) > limit {
		list = list[:limit]
		next = list[limit-1].k
	}
	out := make([]Delivery, len(list))
	for i, e := range list {
		out[i] = e.d
	}
	return out, next, nil
}

func (m *MemoryOutbox) Attempts(ctx context.Context, endpointID, cursor string, limit int) ([]Attempt, string, error) {
	if err := m.lock(); err != nil {
		return nil, "", err
	}
	defer m.mu.Unlock()
	limit = pageLimit(limit)
	all := m.attempts[endpointID]
	var out []Attempt
	next := ""
	for i := len(all) - 1; i >= 0; i-- {
		a := all[i]
		k := listKey(a.At, a.DeliveryID, a.N)
		if cursor != "" && k >= cursor {
			continue
		}
		if len(out) == limit {
			next = listKey(out[limit-1].At, out[limit-1].DeliveryID, out[limit-1].N)
			break
		}
		out = append(out, a)
	}
	return out, next, nil
}

func (m *MemoryOutbox) Replay(ctx context.Context, id string, now time.Time) (Delivery, error) {
	if err := m.lock(); err != nil {
		return Delivery{}, err
	}
	defer m.mu.Unlock()
	d, ok := m.deliveries[id]
	if !ok {
		return Delivery{}, fmt.Errorf("%w: delivery %s", ErrNotFound, id)
	}
	if d.State != StateDead {
		return Delivery{}, fmt.Errorf("%w: delivery %s is %s, not dead", ErrConflict, id, d.State)
	}
	d = replayed(d, now)
	m.deliveries[id] = d
	return d, nil
}

func replayed(d Delivery, now time.Time) Delivery {
	d.State, d.NextAttempt, d.WindowStart = StatePending, now, now
	d.DeadAt, d.DeadReason = time.Time{}, ""
	return d
}

func (m *MemoryOutbox) Prune(ctx context.Context, deliveredBefore, deadBefore time.Time) (int, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	n := 0
	for k, d := range m.deliveries {
		if (d.State == StateDelivered && d.DeliveredAt.Before(deliveredBefore)) ||
			(d.State == StateDead && d.DeadAt.Before(deadBefore)) {
			delete(m.deliveries, k)
			n++
		}
	}
	for ep, list := range m.attempts {
		m.attempts[ep] = slices.DeleteFunc(list, func(a Attempt) bool { return a.At.Before(deliveredBefore) })
	}
	return n, nil
}

func (m *MemoryOutbox) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// listKey orders list entries newest first: a fixed-width time, then the
// id. Pages resume below the last key returned (the cursor).
func listKey(t time.Time, id string, n int) string {
	return fmt.Sprintf("%016x%s%04x", uint64(t.UnixNano()), id, n)
}
