package sessions

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryStore keeps everything in maps behind one mutex. It is for unit
// tests of other packages and is never the gateway's default: nothing in it
// survives the process.
type MemoryStore struct {
	mu            sync.Mutex
	closed        bool
	customers     map[string]*Customer
	identities    map[string]Identity // by Identity.Key()
	timelines     map[string][]Event  // index i holds Seq i+1
	dedup         map[string]map[string]uint64
	conversations map[string]*Conversation
	hub           *hub
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		customers:     map[string]*Customer{},
		identities:    map[string]Identity{},
		timelines:     map[string][]Event{},
		dedup:         map[string]map[string]uint64{},
		conversations: map[string]*Conversation{},
		hub:           newHub(),
	}
}

func (m *MemoryStore) lock() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// writable returns the customer if it exists and takes writes.
func (m *MemoryStore) writable(id string) (*Customer, error) {
	c, ok := m.customers[id]
	if !ok {
		return nil, fmt.Errorf("customer %s: %w", id, ErrNotFound)
	}
	if c.MergedInto != "" {
		return nil, fmt.Errorf("customer %s into %s: %w", id, c.MergedInto, ErrMerged)
	}
	return c, nil
}

func (m *MemoryStore) ResolveCustomer(ctx context.Context, id Identity, seed Customer) (Customer, bool, error) {
	if err := id.Validate(); err != nil {
		return Customer{}, false, err
	}
	if err := m.lock(); err != nil {
		return Customer{}, false, err
	}
	defer m.mu.Unlock()
	if owner, ok := m.identities[id.Key()]; ok {
		return *m.customers[owner.CustomerID], false, nil
	}
	now := time.Now().UTC()
	c := seed
	c.ID = NewID("cus")
	c.MergedInto = ""
	c.CreatedAt, c.UpdatedAt = now, now
	m.customers[c.ID] = &c
	id.CustomerID, id.LinkedAt = c.ID, now
	m.identities[id.Key()] = id
	return c, true, nil
}

func (m *MemoryStore) LinkIdentity(ctx context.Context, customerID string, id Identity, author string) (Event, bool, error) {
	if err := id.Validate(); err != nil {
		return Event{}, false, err
	}
	if err := m.lock(); err != nil {
		return Event{}, false, err
	}
	defer m.mu.Unlock()
	if _, err := m.writable(customerID); err != nil {
		return Event{}, false, err
	}
	now := time.Now().UTC()
	if have, ok := m.identities[id.Key()]; ok {
		if have.CustomerID != customerID {
			return Event{}, false, fmt.Errorf("%s to %s: %w", id.Kind, customerID, ErrIdentityTaken)
		}
		if id.Verified && !have.Verified {
			have.Verified = true
			m.identities[id.Key()] = have
		}
		return Event{}, false, nil
	}
	id.CustomerID, id.LinkedAt = customerID, now
	m.identities[id.Key()] = id
	ev := m.appendLocked(Event{CustomerID: customerID, Kind: KindIdentityLinked, Channel: ChannelSystem,
		Author: author, Payload: mustJSON(id)}, now)
	m.hub.publish(ev)
	return ev, true, nil
}

func (m *MemoryStore) Merge(ctx context.Context, into, from, evidence, author string) (Event, error) {
	if into == from {
		return Event{}, fmt.Errorf("%w: cannot merge %s into itself", ErrInvalid, into)
	}
	if evidence == "" {
		return Event{}, fmt.Errorf("%w: merge needs evidence", ErrInvalid)
	}
	if err := m.lock(); err != nil {
		return Event{}, err
	}
	defer m.mu.Unlock()
	if _, err := m.writable(into); err != nil {
		return Event{}, err
	}
	src, err := m.writable(from)
	if err != nil {
		return Event{}, err
	}
	now := time.Now().UTC()
	for k, id := range m.identities {
		if id.CustomerID == from {
			id.CustomerID = into
			m.identities[k] = id
		}
	}
	// Conversations move first so the copies below update them; a
	// duplicate active topic is resolved after the copies, so the timeline
	// reads: merge, the other profile's history, then the clean-up.
	var dupes []*Conversation
	for _, cv := range m.conversations {
		if cv.CustomerID != from {
			continue
		}
		if cv.Status.Active() && m.activeTopic(into, cv.Topic, cv.ID) != nil {
			dupes = append(dupes, cv)
		}
		cv.CustomerID = into
	}
	slices.SortFunc(dupes, func(a, b *Conversation) int { return strings.Compare(a.ID, b.ID) })
	old := m.timelines[from]
	merged := m.appendLocked(MergedEvent(into, from, evidence, author, len(old), uint64(len(m.timelines[into]))), now)
	out := []Event{merged}
	for _, ev := range old {
		out = append(out, m.appendLocked(CopyForMerge(ev, into), now))
	}
	resolved := StatusResolved
	for _, cv := range dupes {
		ev := ConversationUpdate{Status: &resolved, Event: Event{Author: author}}.Apply(cv, now)
		out = append(out, m.appendLocked(ev, now))
	}
	src.MergedInto, src.UpdatedAt = into, now
	m.hub.publish(out...)
	return merged, nil
}

func (m *MemoryStore) Customer(ctx context.Context, id string) (Customer, error) {
	if err := m.lock(); err != nil {
		return Customer{}, err
	}
	defer m.mu.Unlock()
	c, ok := m.customers[id]
	if !ok {
		return Customer{}, fmt.Errorf("customer %s: %w", id, ErrNotFound)
	}
	return cloneCustomer(*c), nil
}

func (m *MemoryStore) UpdateCustomer(ctx context.Context, id string, u CustomerUpdate) (Customer, error) {
	if err := u.Validate(); err != nil {
		return Customer{}, err
	}
	if err := m.lock(); err != nil {
		return Customer{}, err
	}
	defer m.mu.Unlock()
	c, err := m.writable(id)
	if err != nil {
		return Customer{}, err
	}
	now := time.Now().UTC()
	next := cloneCustomer(*c)
	ev, changed := u.Change(&next, now)
	*c = next
	if changed {
		m.hub.publish(m.appendLocked(ev, now))
	}
	return cloneCustomer(next), nil
}

func (m *MemoryStore) Identities(ctx context.Context, customerID string) ([]Identity, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if _, ok := m.customers[customerID]; !ok {
		return nil, fmt.Errorf("customer %s: %w", customerID, ErrNotFound)
	}
	var out []Identity
	for _, id := range m.identities {
		if id.CustomerID == customerID {
			out = append(out, id)
		}
	}
	SortIdentities(out)
	return out, nil
}

func (m *MemoryStore) IdentityOwner(ctx context.Context, id Identity) (string, error) {
	if err := m.lock(); err != nil {
		return "", err
	}
	defer m.mu.Unlock()
	have, ok := m.identities[id.Key()]
	if !ok {
		return "", fmt.Errorf("identity %s: %w", id.Kind, ErrNotFound)
	}
	return have.CustomerID, nil
}

func (m *MemoryStore) FindCustomers(ctx context.Context, q CustomerQuery) ([]Customer, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []Customer
	for _, c := range m.customers {
		if q.Phone != "" && m.identities[Identity{Kind: IdentityPhone, Value: q.Phone}.Key()].CustomerID != c.ID {
			continue
		}
		if q.Email != "" && m.identities[Identity{Kind: IdentityEmail, Value: q.Email}.Key()].CustomerID != c.ID {
			continue
		}
		if !q.Matches(*c) || c.MergedInto != "" {
			continue
		}
		out = append(out, cloneCustomer(*c))
	}
	slices.SortFunc(out, func(a, b Customer) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(len(out), q.limit())], nil
}

func (m *MemoryStore) Append(ctx context.Context, ev Event) (Event, bool, error) {
	if err := ev.Validate(); err != nil {
		return Event{}, false, err
	}
	if err := m.lock(); err != nil {
		return Event{}, false, err
	}
	defer m.mu.Unlock()
	if _, err := m.writable(ev.CustomerID); err != nil {
		return Event{}, false, err
	}
	if stored, ok := m.duplicate(ev); ok {
		return stored, false, nil
	}
	if ev.ConversationID != "" {
		cv, ok := m.conversations[ev.ConversationID]
		if !ok || cv.CustomerID != ev.CustomerID {
			return Event{}, false, fmt.Errorf("%w: conversation %s is not customer %s's", ErrInvalid, ev.ConversationID, ev.CustomerID)
		}
	}
	ev.Origin = ""
	stored := m.appendLocked(ev, time.Now().UTC())
	m.hub.publish(stored)
	return stored, true, nil
}

// duplicate returns the stored event with ev's external id, if any. The
// caller holds mu.
func (m *MemoryStore) duplicate(ev Event) (Event, bool) {
	if k := ev.DedupKey(); k != "" {
		if seq, ok := m.dedup[ev.CustomerID][k]; ok {
			return m.timelines[ev.CustomerID][seq-1], true
		}
	}
	return Event{}, false
}

// appendLocked assigns the next sequence and records dedup and conversation
// activity. The caller holds mu and has checked the customer.
func (m *MemoryStore) appendLocked(ev Event, now time.Time) Event {
	ev.stamp(now)
	tl := m.timelines[ev.CustomerID]
	ev.Seq = uint64(len(tl)) + 1
	m.timelines[ev.CustomerID] = append(tl, ev)
	if k := ev.DedupKey(); k != "" {
		if m.dedup[ev.CustomerID] == nil {
			m.dedup[ev.CustomerID] = map[string]uint64{}
		}
		if _, dup := m.dedup[ev.CustomerID][k]; !dup {
			m.dedup[ev.CustomerID][k] = ev.Seq
		}
	}
	if cv, ok := m.conversations[ev.ConversationID]; ok && cv.CustomerID == ev.CustomerID {
		cv.LastSeq, cv.UpdatedAt = ev.Seq, now
	}
	return ev
}

func (m *MemoryStore) Timeline(ctx context.Context, customerID string, after uint64, limit int) ([]Event, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	if _, ok := m.customers[customerID]; !ok {
		return nil, fmt.Errorf("customer %s: %w", customerID, ErrNotFound)
	}
	tl := m.timelines[customerID]
	if after >= uint64(len(tl)) {
		return nil, nil
	}
	page := tl[after:]
	return slices.Clone(page[:min(len(page), TimelineLimit(limit))]), nil
}

func (m *MemoryStore) LastSeq(ctx context.Context, customerID string) (uint64, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	if _, ok := m.customers[customerID]; !ok {
		return 0, fmt.Errorf("customer %s: %w", customerID, ErrNotFound)
	}
	return uint64(len(m.timelines[customerID])), nil
}

func (m *MemoryStore) activeTopic(customerID, topic, except string) *Conversation {
	for _, cv := range m.conversations {
		if cv.CustomerID == customerID && cv.Topic == topic && cv.Status.Active() && cv.ID != except {
			return cv
		}
	}
	return nil
}

func (m *MemoryStore) OpenConversation(ctx context.Context, customerID, topic, channel string) (Conversation, bool, error) {
	if err := ValidateTopic(topic, channel); err != nil {
		return Conversation{}, false, err
	}
	if err := m.lock(); err != nil {
		return Conversation{}, false, err
	}
	defer m.mu.Unlock()
	if _, err := m.writable(customerID); err != nil {
		return Conversation{}, false, err
	}
	if cv := m.activeTopic(customerID, topic, ""); cv != nil {
		return *cv, false, nil
	}
	cv, ev := m.open(customerID, topic, channel, time.Now().UTC())
	m.hub.publish(ev)
	return *cv, true, nil
}

// open records a new active conversation on topic and appends its opening
// event, which the caller publishes. The caller holds mu and has checked
// the customer and that the topic has no active conversation.
func (m *MemoryStore) open(customerID, topic, channel string, now time.Time) (*Conversation, Event) {
	cv := &Conversation{ID: NewID("cnv"), CustomerID: customerID, Status: StatusOpen, Channel: channel,
		Topic: topic, CreatedAt: now, UpdatedAt: now}
	m.conversations[cv.ID] = cv
	return cv, m.appendLocked(OpenedEvent(*cv), now)
}

func (m *MemoryStore) Intake(ctx context.Context, topic string, ev Event) (Conversation, Event, bool, error) {
	if err := validateIntake(topic, ev); err != nil {
		return Conversation{}, Event{}, false, err
	}
	if err := m.lock(); err != nil {
		return Conversation{}, Event{}, false, err
	}
	defer m.mu.Unlock()
	if _, err := m.writable(ev.CustomerID); err != nil {
		return Conversation{}, Event{}, false, err
	}
	if stored, ok := m.duplicate(ev); ok {
		var cv Conversation
		if in, ok := m.conversations[stored.ConversationID]; ok {
			cv = *in
		}
		return cv, stored, false, nil
	}
	now := time.Now().UTC()
	var evs []Event
	cv := m.activeTopic(ev.CustomerID, topic, "")
	if cv == nil {
		var opened Event
		cv, opened = m.open(ev.CustomerID, topic, ev.Channel, now)
		evs = append(evs, opened)
	}
	ev.ConversationID, ev.Origin = cv.ID, ""
	stored := m.appendLocked(ev, now)
	m.hub.publish(append(evs, stored)...)
	return *cv, stored, true, nil
}

func (m *MemoryStore) Conversation(ctx context.Context, id string) (Conversation, error) {
	if err := m.lock(); err != nil {
		return Conversation{}, err
	}
	defer m.mu.Unlock()
	cv, ok := m.conversations[id]
	if !ok {
		return Conversation{}, fmt.Errorf("conversation %s: %w", id, ErrNotFound)
	}
	return *cv, nil
}

func (m *MemoryStore) Conversations(ctx context.Context, q ConversationQuery) ([]Conversation, string, error) {
	if err := m.lock(); err != nil {
		return nil, "", err
	}
	defer m.mu.Unlock()
	var all []Conversation
	for _, cv := range m.conversations {
		if q.Matches(*cv) && (q.Cursor == "" || cv.ID < q.Cursor) {
			all = append(all, *cv)
		}
	}
	slices.SortFunc(all, func(a, b Conversation) int { return strings.Compare(b.ID, a.ID) })
	limit := PageLimit(q.Limit)
	if len(all) <= limit {
		return all, "", nil
	}
	return all[:limit], all[limit-1].ID, nil
}

func (m *MemoryStore) UpdateConversation(ctx context.Context, id string, u ConversationUpdate) (Conversation, Event, error) {
	if err := u.Validate(); err != nil {
		return Conversation{}, Event{}, err
	}
	if err := m.lock(); err != nil {
		return Conversation{}, Event{}, err
	}
	defer m.mu.Unlock()
	cv, ok := m.conversations[id]
	if !ok {
		return Conversation{}, Event{}, fmt.Errorf("conversation %s: %w", id, ErrNotFound)
	}
	if _, err := m.writable(cv.CustomerID); err != nil {
		return Conversation{}, Event{}, err
	}
	if u.Status != nil && u.Status.Active() && !cv.Status.Active() && m.activeTopic(cv.CustomerID, cv.Topic, cv.ID) != nil {
		return Conversation{}, Event{}, fmt.Errorf("reopen %s: %w", id, ErrConflict)
	}
	now := time.Now().UTC()
	next := *cv
	ev := u.Apply(&next, now)
	*cv = next
	ev = m.appendLocked(ev, now)
	m.hub.publish(ev)
	return *cv, ev, nil
}

func (m *MemoryStore) Subscribe(ctx context.Context) (*Subscription, error) {
	return m.hub.subscribe(ctx)
}

func (m *MemoryStore) Ping(ctx context.Context) error {
	if err := m.lock(); err != nil {
		return err
	}
	m.mu.Unlock()
	return nil
}

func (m *MemoryStore) Close() error {
	if err := m.lock(); err != nil {
		return err
	}
	m.closed = true
	m.mu.Unlock()
	m.hub.close()
	return nil
}

func cloneCustomer(c Customer) Customer {
	c.Tags = slices.Clone(c.Tags)
	if c.Attributes != nil {
		attrs := make(map[string]string, len(c.Attributes))
		for k, v := range c.Attributes {
			attrs[k] = v
		}
		c.Attributes = attrs
	}
	return c
}
