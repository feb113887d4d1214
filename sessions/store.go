package sessions

import (
	"context"
	"errors"
)

// Errors every Store returns, wrapped with the id it was working on.
var (
	ErrNotFound      = errors.New("sessions: not found")
	ErrInvalid       = errors.New("sessions: invalid input")
	ErrIdentityTaken = errors.New("sessions: identity belongs to another customer")
	ErrMerged        = errors.New("sessions: customer was merged into another")
	ErrConflict      = errors.New("sessions: another active conversation has this topic")
	ErrClosed        = errors.New("sessions: store closed")
	ErrSlow          = errors.New("sessions: subscriber fell behind")
)

// Store keeps customers, identities, conversations and timelines.
// Implementations: MemoryStore (tests only), BoltStore (single node
// default), ValkeyStore (cluster). See the package doc for the guarantees.
type Store interface {
	// ResolveCustomer returns the customer that owns id, creating the
	// customer (from seed: name, tier, locale...) and linking id when no one
	// owns it. Atomic: concurrent calls with one identity create one
	// customer. A customer created here gets no timeline event; the
	// caller's first append is the first event.
	ResolveCustomer(ctx context.Context, id Identity, seed Customer) (c Customer, created bool, err error)
	// LinkIdentity adds id to the customer and appends an identity_linked
	// event (author from ev.Author) atomically. Linking an identity the
	// customer already has is a no-op (upgrading it to verified if id is
	// verified) and returns appended=false. An identity owned by another
	// customer gives ErrIdentityTaken: merging is the caller's decision.
	LinkIdentity(ctx context.Context, customerID string, id Identity, author string) (ev Event, appended bool, err error)
	// Merge moves everything of from into into: identities and
	// conversations are re-pointed, from's events are copied onto into's
	// timeline (from's own timeline is kept), and a customers_merged event
	// with the evidence comes first. from is marked MergedInto and takes no
	// more writes (ErrMerged). When both had an active conversation on the
	// same topic, from's is resolved so the rule of one per topic holds.
	Merge(ctx context.Context, into, from, evidence, author string) (Event, error)

	Customer(ctx context.Context, id string) (Customer, error)
	UpdateCustomer(ctx context.Context, id string, u CustomerUpdate) (Customer, error)
	Identities(ctx context.Context, customerID string) ([]Identity, error)
	// IdentityOwner returns the customer id that owns the identity.
	IdentityOwner(ctx context.Context, id Identity) (string, error)
	FindCustomers(ctx context.Context, q CustomerQuery) ([]Customer, error)

	// Append adds ev to its customer's timeline and returns it with Seq, ID
	// and Time set. With an external id already stored for the customer it
	// returns the stored event and appended=false. When ev names a
	// conversation, it must be the customer's, and its UpdatedAt and
	// LastSeq move.
	Append(ctx context.Context, ev Event) (stored Event, appended bool, err error)
	// Timeline returns up to limit events with Seq > after, in order.
	Timeline(ctx context.Context, customerID string, after uint64, limit int) ([]Event, error)
	// LastSeq is the sequence of the customer's latest event (0 when the
	// timeline is empty), so a reader can show the latest page.
	LastSeq(ctx context.Context, customerID string) (uint64, error)

	// Intake appends ev, a customer's inbound event, to the customer's
	// active conversation on topic, opening one on ev.Channel (with its
	// status_change event, author ChannelSystem, as OpenConversation does)
	// when there is none, all in one atomic write: the event never lands in
	// a conversation that was resolved before it was appended.
	// ev.ConversationID must be empty. Idempotent like Append: an external
	// id already stored returns the stored event, appended=false, and the
	// conversation it is in (zero if none), opening nothing. For a new
	// event, conv is as the write left it: its LastSeq is the event's.
	Intake(ctx context.Context, topic string, ev Event) (conv Conversation, stored Event, appended bool, err error)

	// OpenConversation returns the customer's active conversation for the
	// topic, or opens one on channel and appends its status_change event
	// atomically. Never two active conversations per customer and topic.
	OpenConversation(ctx context.Context, customerID, topic, channel string) (c Conversation, created bool, err error)
	Conversation(ctx context.Context, id string) (Conversation, error)
	// Conversations lists matches, newest first (by id, which sorts by
	// creation time, so pages stay stable while conversations change); next
	// is the cursor of the next page, empty on the last page.
	Conversations(ctx context.Context, q ConversationQuery) (page []Conversation, next string, err error)
	// UpdateConversation applies u and appends its event atomically.
	// Reopening a conversation whose topic has another active one gives
	// ErrConflict.
	UpdateConversation(ctx context.Context, id string, u ConversationUpdate) (Conversation, Event, error)

	// Subscribe delivers every event appended from now on, by any node
	// sharing the store, in per-customer order. See Subscription.
	Subscribe(ctx context.Context) (*Subscription, error)

	// Ping reports whether the backend answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
