package contact

import (
	"context"
	"time"
)

// Direction of a touch.
type Direction string

const (
	Inbound  Direction = "in"
	Outbound Direction = "out"
)

// Touch is one contact with a customer, on any channel, in either
// direction: a message, a call attempt and its outcome, a campaign
// contact, an integrator-triggered notice.
type Touch struct {
	// ID is unique; recording a touch whose ID is stored changes nothing.
	ID         string    `json:"id"`
	CustomerID string    `json:"customer_id"`
	Channel    string    `json:"channel"` // sessions.Channel*
	Direction  Direction `json:"direction"`
	// Purpose: service, sales, collections, notice, or another configured
	// word.
	Purpose  string `json:"purpose"`
	Topic    string `json:"topic,omitempty"`
	Campaign string `json:"campaign,omitempty"`
	// Outcome of a call or send: answered, abandoned, no_answer, busy,
	// failed, sent...; empty when not known.
	Outcome string    `json:"outcome,omitempty"`
	At      time.Time `json:"at"`
}

// Limit is a counting rule that a Claim checks and records atomically:
// at most Max touches of the customer that match (Direction Outbound;
// Purpose, Channel, Topic, Campaign, Outcome each "" for any) with At
// after t.At-Window. Touches dated after t.At count too: two gateway
// nodes whose clocks differ by a moment race to contact one customer,
// and the claim of the one behind must see the other's. Max 0 means any
// match refuses (a lockout or a duplicate).
type Limit struct {
	// Name is the machine-readable reason when the limit is reached:
	// "frequency_cap", "duplicate_topic", "abandoned_lockout", ...
	Name     string        `json:"name"`
	Purpose  string        `json:"purpose,omitempty"`
	Channel  string        `json:"channel,omitempty"`
	Topic    string        `json:"topic,omitempty"`
	Campaign string        `json:"campaign,omitempty"`
	Outcome  string        `json:"outcome,omitempty"`
	Window   time.Duration `json:"window"`
	Max      int           `json:"max"`
}

// Reached is a limit a Claim found reached.
type Reached struct {
	Limit Limit `json:"limit"`
	// Count is how many matching touches are in the window.
	Count int `json:"count"`
	// First is the oldest matching touch in the window (for a duplicate:
	// the contact the refused one would repeat).
	First Touch `json:"first"`
	// Until is when the limit frees one place: the At of the touch that
	// leaves the window first, plus Window.
	Until time.Time `json:"until"`
}

// Claimed is the answer of a Claim.
type Claimed struct {
	// Recorded is true when t was recorded (no limit reached) or was
	// recorded before (same ID: a retry).
	Recorded bool      `json:"recorded"`
	Reached  []Reached `json:"reached,omitempty"`
}

// Ledger keeps every touch per customer. Implementations: MemoryLedger
// (tests), BoltLedger (single node), ValkeyLedger (cluster), one
// conformance suite.
type Ledger interface {
	// Claim records t unless one of limits is reached, atomically per
	// customer (across gateway processes for the Valkey ledger): two
	// claims racing under a Max of 0 or 1 record exactly one. Every
	// limit reached is reported, not just the first.
	Claim(ctx context.Context, t Touch, limits []Limit) (Claimed, error)
	// Record records t unconditionally (inbound touches, outcomes of
	// calls already made); idempotent by ID.
	Record(ctx context.Context, t Touch) error
	// Touches lists the customer's touches with At >= since, oldest
	// first, including those of customers merged into it.
	Touches(ctx context.Context, customerID string, since time.Time) ([]Touch, error)
	// Merge makes from's touches count for into (after a customer merge).
	Merge(ctx context.Context, into, from string) error
	Close() error
}
