package sms

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/sessions"
)

// Errors of the SMS channel. None of their texts, nor of the errors that
// wrap them, quotes a phone number.
var (
	// ErrOptedOut means the number is on the SMS do-not-contact list (it
	// texted STOP, or the provider said so): nothing was sent and no
	// provider was called.
	// It wraps channels.ErrOptedOut.
	ErrOptedOut = fmt.Errorf("sms: the customer opted out of SMS (%w)", channels.ErrOptedOut)
	// ErrSignature means a webhook's signature is missing, wrong or stale:
	// answered 403 and not processed.
	ErrSignature = errors.New("sms: webhook signature invalid")
	// ErrMalformed means a webhook could not be read: answered 400.
	ErrMalformed = errors.New("sms: malformed webhook")
	// ErrRejected means the provider refused the message (a 4xx answer):
	// resending the same message will not help.
	ErrRejected = errors.New("sms: provider rejected the message")
)

// Provider is one SMS gateway account: it reads and authenticates the
// gateway's webhooks and hands it outbound messages. Implementations:
// twilioProvider (provider_twilio.go) and jsonProvider (provider_json.go).
// Safe for concurrent use.
type Provider interface {
	// Name is the provider's key in its webhook path and message ids.
	Name() string
	// Parse authenticates one webhook request whose whole (size-capped)
	// body is body, and decodes it. It returns ErrSignature or
	// ErrMalformed, wrapped, when it can't.
	Parse(r *http.Request, body []byte, now time.Time) (Webhook, error)
	// Ack answers a webhook that was processed (or deliberately dropped).
	Ack(w http.ResponseWriter)
	// Send hands one message to the gateway and returns the gateway's id
	// for it. Unreachable gateways and 5xx answers wrap
	// channels.ErrNoAdapter; refusals wrap ErrRejected, or ErrOptedOut
	// when the gateway says the recipient unsubscribed.
	Send(ctx context.Context, m Outgoing) (id string, err error)
}

// WebhookKind says what a provider webhook carries.
type WebhookKind int

const (
	// WebhookMessage is a message from a customer.
	WebhookMessage WebhookKind = iota + 1
	// WebhookStatus is a delivery report for a message Omnigate sent.
	WebhookStatus
)

// Webhook is one decoded provider webhook.
type Webhook struct {
	Kind WebhookKind
	// MessageID is the provider's id of the message (inbound: the new
	// message; status: the outbound message reported on).
	MessageID string
	// From and To are as the provider wrote them; the channel normalises.
	From, To string
	Text     string
	Media    []sessions.Media
	// Status is the provider's delivery state, lower case: queued, sent,
	// delivered, undelivered, failed, read...
	Status string
	// ErrorCode is the provider's code for a failed delivery.
	ErrorCode string
	// Ref is what Omnigate attached to the outbound message and the
	// provider echoed back with the report.
	Ref Ref
}

// Ref ties a delivery report to the timeline: Omnigate attaches it to every
// outbound message (in the status callback URL for Twilio, in metadata for
// the json provider) and the provider echoes it with each report.
type Ref struct {
	EventID        string `json:"event_id,omitempty"`
	ConversationID string `json:"conversation_id,omitempty"`
	Segments       int    `json:"segments,omitempty"`
}

// Outgoing is one message to hand a provider.
type Outgoing struct {
	// To is the customer's number, E.164.
	To string
	// From is the sender; empty means the provider's configured From.
	From  string
	Text  string
	Media []sessions.Media
	// Segments is how the text goes over the air (Count).
	Segments Segments
	// Ref comes back with delivery reports; Ref.EventID is also the
	// idempotency key where the provider takes one.
	Ref Ref
}

// DeliveryStatus is the payload of the delivery_status events the SMS
// channel records: one per provider report (queued, sent, delivered,
// failed...) and one per opt-out confirmation it sends itself. The fields
// the API's own delivery_status uses (event_id, status, provider_id, error)
// have the same names.
type DeliveryStatus struct {
	// EventID is the message_out event reported on; empty when the report
	// came without Omnigate's reference.
	EventID    string `json:"event_id,omitempty"`
	Status     string `json:"status"`
	ProviderID string `json:"provider_id,omitempty"`
	Provider   string `json:"provider"`
	// Error is the provider's error code for a failed delivery.
	Error    string   `json:"error,omitempty"`
	Segments int      `json:"segments,omitempty"`
	Encoding Encoding `json:"encoding,omitempty"`
}

// MessagePayload is the payload of the SMS channel's message_in and
// message_out events: sessions.Message plus how the text travelled.
type MessagePayload struct {
	sessions.Message
	Provider string   `json:"provider"`
	Segments int      `json:"segments,omitempty"`
	Encoding Encoding `json:"encoding,omitempty"`
}
