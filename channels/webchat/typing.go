package webchat

import "context"

// Typing carries typing indicators between a customer's visitor sockets
// and the reps looking at the customer. Indicators are not timeline events:
// they are worth nothing a few seconds later, so they are never stored and
// a lost one is fine. MemoryTyping serves one node; a cluster backs this
// with Valkey pub/sub so a rep on another node sees the visitor type.
//
// An "on" signal is repeated every few seconds while someone types;
// receivers turn the indicator off themselves after about 6 seconds
// without one, so a vanished typist never leaves it on.
type Typing interface {
	// Publish sends s to the subscribers of s.CustomerID. It must not
	// block on slow subscribers.
	Publish(ctx context.Context, s TypingSignal) error
	// Subscribe calls fn with every signal about the customer, or about
	// every customer when customerID is empty, until cancel is called. fn
	// must return quickly and must not call Publish or cancel.
	Subscribe(customerID string, fn func(TypingSignal)) (cancel func())
}

// TypingSignal says someone started or stopped typing to a customer.
type TypingSignal struct {
	CustomerID string `json:"customer_id"`
	// From is "customer" for the visitor, "rep:<id>" for a rep.
	From string `json:"from"`
	// RepName is the rep's display name, shown to the visitor; empty for
	// the visitor's own signals.
	RepName string `json:"rep_name,omitempty"`
	On      bool   `json:"on"`
}
