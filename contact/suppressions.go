package contact

import (
	"context"
	"time"
)

// The types below are engineer L's (CONTACT.md), copied verbatim so the
// policy compiles on its own branch; at merge L's suppressions.go, with the
// implementations and the CSV import and export, replaces this file.

type Suppression struct {
	Kind    string    `json:"kind"`  // "customer", "phone", "email", "wechat_openid"
	Value   string    `json:"value"` // customer id, E.164, email, "<account>:<openid>"
	Channel string    `json:"channel,omitempty"`
	Purpose string    `json:"purpose,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Source  string    `json:"source,omitempty"`
	At      time.Time `json:"at"`
}

type Suppressions interface {
	Add(ctx context.Context, s Suppression) error // idempotent by (Kind, Value, Channel, Purpose)
	Remove(ctx context.Context, kind, value, channel, purpose string) error
	// Match returns every entry that applies to a contact with one of keys
	// (kind+value pairs: the customer id and its identities) on channel
	// for purpose (entries with "" apply to all).
	Match(ctx context.Context, keys []Key, channel, purpose string) ([]Suppression, error)
	List(ctx context.Context, cursor string, limit int) ([]Suppression, string, error)
	Close() error
}
type Key struct{ Kind, Value string }
