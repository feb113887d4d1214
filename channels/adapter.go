package channels

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/omnigate/omnigate/sessions"
)

// ErrNoAdapter means no adapter is connected for the channel: it is not
// built yet, not configured, or its network is unreachable. The HTTP API
// answers 503 channel_unavailable.
var ErrNoAdapter = errors.New("channels: channel not connected")

// ErrOptedOut means the customer asked not to be contacted on the channel
// (an SMS STOP): nothing was sent, and retrying will not help until they
// opt in again. Adapters wrap it in their own sentinel; the HTTP API
// answers 409 opted_out.
var ErrOptedOut = errors.New("channels: the customer opted out of this channel")

// ErrRateLimited means the network refused the message because too many
// went to the customer without a reply from them (WeChat's 45047): wait
// for the customer to write. The HTTP API answers 429 rate_limited.
var ErrRateLimited = errors.New("channels: too many messages to the customer without a reply")

// Adapter sends messages to customers over one channel.
type Adapter interface {
	// Name is the channel name events carry ("webchat", "wechat", "sms",
	// ...), the key the Registry files the adapter under.
	Name() string
	// Send delivers one message. It picks the customer's address on its
	// network from o.Identities (a phone for SMS, the OpenID of the right
	// official account for WeChat) and returns ErrNoAdapter, wrapped, when
	// the customer has no address it can use or the network is down. Send
	// must honour ctx and be safe for concurrent use. Its errors are logged:
	// they must not quote the customer's address (phone, OpenID).
	Send(ctx context.Context, o Outbound) (Receipt, error)
	// CanSend returns the error Send would return for this customer
	// without calling the network (no address on it, an opt-out, a closed
	// WeChat window), or nil when Send would try. The Sender calls it
	// before recording a message, so one that can't go out is refused
	// with nothing recorded. It is part of the interface, not an optional
	// extra, so a new adapter can't skip the check by omission; an adapter
	// that knows nothing in advance returns nil. Same rules as Send for
	// ctx, concurrency and addresses in errors.
	CanSend(ctx context.Context, customerID string, ids []sessions.Identity) error
}

// Outbound is one message to one customer.
type Outbound struct {
	CustomerID     string
	ConversationID string
	// EventID is the id of the message_out event recorded for this send.
	// Adapters whose provider takes an idempotency key pass it on, so a
	// resend of the same event is not delivered twice.
	EventID string
	// Identities are every identity the customer has; the adapter picks the
	// one that addresses the customer on its network.
	Identities []sessions.Identity
	Message    sessions.Message
}

// Receipt is what the channel gave back for an accepted message.
type Receipt struct {
	// ID is the provider's id for the message (SMS MessageSid, WeChat
	// msgid); empty when the provider returns none. Later delivery reports
	// refer to it.
	ID string `json:"id,omitempty"`
}

// Registry maps channel names to connected adapters.
type Registry struct {
	m map[string]Adapter
}

// NewRegistry files adapters under their names. Two adapters with one name
// is a wiring mistake and an error.
func NewRegistry(adapters ...Adapter) (*Registry, error) {
	r := &Registry{m: make(map[string]Adapter, len(adapters))}
	for _, a := range adapters {
		name := a.Name()
		if _, dup := r.m[name]; dup {
			return nil, fmt.Errorf("channels: two adapters named %q", name)
		}
		r.m[name] = a
	}
	return r, nil
}

// Get returns the adapter for the channel, or ErrNoAdapter. A nil Registry
// has no adapters.
func (r *Registry) Get(name string) (Adapter, error) {
	if r != nil {
		if a, ok := r.m[name]; ok {
			return a, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrNoAdapter, name)
}

// Names lists the connected channels, sorted.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
