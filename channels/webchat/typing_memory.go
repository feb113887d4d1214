package webchat

import (
	"context"
	"sync"
)

// MemoryTyping is the in-process Typing: signals reach subscribers of this
// process only.
type MemoryTyping struct {
	mu   sync.RWMutex
	next uint64
	subs map[string]map[uint64]func(TypingSignal) // by customer id; "" is everyone
}

var _ Typing = (*MemoryTyping)(nil)

// NewMemoryTyping returns a Typing with no subscribers.
func NewMemoryTyping() *MemoryTyping {
	return &MemoryTyping{subs: map[string]map[uint64]func(TypingSignal){}}
}

// Publish calls the subscribers of the customer and of everyone in the
// caller's goroutine; they must not block (see Typing).
func (t *MemoryTyping) Publish(ctx context.Context, s TypingSignal) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, fn := range t.subs[s.CustomerID] {
		fn(s)
	}
	if s.CustomerID != "" {
		for _, fn := range t.subs[""] {
			fn(s)
		}
	}
	return nil
}

// Subscribe registers fn; see Typing.
func (t *MemoryTyping) Subscribe(customerID string, fn func(TypingSignal)) func() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	id := t.next
	if t.subs[customerID] == nil {
		t.subs[customerID] = map[uint64]func(TypingSignal){}
	}
	t.subs[customerID][id] = fn
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			delete(t.subs[customerID], id)
			if len(t.subs[customerID]) == 0 {
				delete(t.subs, customerID)
			}
		})
	}
}
