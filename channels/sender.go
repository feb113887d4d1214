package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/sessions"
)

// Timeline is what ReplyChannel reads of a store.
type Timeline interface {
	LastSeq(ctx context.Context, customerID string) (uint64, error)
	Timeline(ctx context.Context, customerID string, after uint64, limit int) ([]sessions.Event, error)
}

// Store is what the Sender needs of a sessions.Store.
type Store interface {
	Timeline
	Identities(ctx context.Context, customerID string) ([]sessions.Identity, error)
	Conversations(ctx context.Context, q sessions.ConversationQuery) ([]sessions.Conversation, string, error)
	Append(ctx context.Context, ev sessions.Event) (sessions.Event, bool, error)
}

// replyTail bounds how far back ReplyChannel looks for the customer's
// last message: one page read per message.
const replyTail = 200

// ReplyChannel is the one rule for the channel a message to a customer
// goes out on: the channel of the customer's newest message_in among their
// last 200 events, within conversationID when it is not empty (any
// conversation when it is), else fallback. The message follows the
// customer: a conversation opened on webchat that the customer continued
// on WeChat is answered on WeChat, where they are now. The Sender uses it
// for every message, and WeChat typing (whether a rep's typing is shown to
// the customer) uses it with no conversation.
func ReplyChannel(ctx context.Context, tl Timeline, customerID, conversationID, fallback string) (string, error) {
	last, err := tl.LastSeq(ctx, customerID)
	if err != nil {
		return "", err
	}
	evs, err := tl.Timeline(ctx, customerID, last-min(last, replyTail), replyTail)
	if err != nil {
		return "", err
	}
	for _, ev := range slices.Backward(evs) {
		if ev.Kind == sessions.KindMessageIn && ev.Channel != "" &&
			(conversationID == "" || ev.ConversationID == conversationID) {
			return ev.Channel, nil
		}
	}
	return fallback, nil
}

// ErrClientIDReused means a Request's client id is already on the
// customer's timeline for a different message: a client bug, not a retry.
// Nothing was recorded or sent.
var ErrClientIDReused = errors.New("channels: client id already used for a different message")

// Reason says, in words the timeline and the HTTP API share, why a
// channel did not take a message.
type Reason string

const (
	// ReasonNoChannel: no channel is known for the customer (they never
	// wrote, and there is no conversation to fall back on).
	ReasonNoChannel Reason = "no_channel"
	// ReasonNotConnected: no adapter is connected for the chosen channel.
	ReasonNotConnected Reason = "not_connected"
	// ReasonUnreachable: the adapter can't address the customer (no
	// identity on its network) or its network is down (ErrNoAdapter).
	ReasonUnreachable Reason = "channel_unavailable"
	// ReasonWindowClosed: the channel can reach the customer only after
	// they write again; the error names the next best channel
	// (Unreachable).
	ReasonWindowClosed Reason = "window_closed"
	ReasonOptedOut     Reason = "opted_out"    // ErrOptedOut
	ReasonRateLimited  Reason = "rate_limited" // ErrRateLimited
	ReasonTimeout      Reason = "timeout"      // the send timed out
	ReasonRejected     Reason = "rejected"     // anything else
)

// reasonOf classifies an adapter's error.
func reasonOf(err error) Reason {
	if Unreachable(err) != nil {
		return ReasonWindowClosed
	}
	switch {
	case errors.Is(err, ErrOptedOut):
		return ReasonOptedOut
	case errors.Is(err, ErrRateLimited):
		return ReasonRateLimited
	case errors.Is(err, ErrNoAdapter):
		return ReasonUnreachable
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	}
	return ReasonRejected
}

// Unreachable returns the error in err's chain that names the customer's
// next best channel (wechat.UnreachableError, through a NextChannel
// method), or nil: the channel can't reach them now, another may. Its text
// names that channel and never an address.
func Unreachable(err error) error {
	e, _ := errors.AsType[interface {
		error
		NextChannel() string
	}](err)
	return e
}

// SendError is a message a channel did not take. When Event is nil the
// refusal came before anything was recorded (no channel, no adapter, or
// the adapter's CanSend refused); otherwise Event is the message_out,
// recorded with a failed delivery_status. errors.Is and errors.As see the
// adapter's error (ErrNoAdapter, ErrOptedOut, ErrRateLimited,
// wechat.UnreachableError).
type SendError struct {
	// Channel is the channel chosen; empty with ReasonNoChannel.
	Channel string
	Reason  Reason
	Event   *sessions.Event
	Err     error
}

func (e *SendError) Error() string {
	if e.Event != nil {
		return fmt.Sprintf("channels: %s did not take message %s: %v", e.Channel, e.Event.ID, e.Err)
	}
	return fmt.Sprintf("channels: not sent on %q: %v", e.Channel, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// Request is one message to send.
type Request struct {
	// CustomerID is who the message is for. Required.
	CustomerID string
	// Conversation is the conversation the message answers (the caller has
	// checked it is the customer's and may be answered). Nil sends into the
	// customer's active conversation (the one with the newest event) if
	// they have one, else onto their timeline outside any conversation:
	// opening one would queue it for a rep, and a notice is not a contact
	// that needs one. The customer's answer opens a conversation as usual.
	Conversation *sessions.Conversation
	// Message is what to send; its ClientID is required and makes the
	// send idempotent: a retry with it returns the recorded message and
	// sends nothing.
	Message sessions.Message
	// Author is recorded on the message_out ("rep:alice"). Required.
	Author string
	// Purpose is passed to the Policy (PurposeReply, PurposeNotice, or
	// another lowercase word of up to 64 letters, digits, _ and -).
	// Required.
	Purpose string
	// Channel, with no Conversation, sends on that channel outside any
	// conversation (best-channel contact chose it, and a conversation
	// opened for the message would be work for a rep). Empty means the
	// rules above.
	Channel string
	// Topic is what a message outside any conversation is about, for the
	// Policy; a conversation's own topic is used otherwise.
	Topic string
}

func (r Request) validate() error {
	switch {
	case r.CustomerID == "":
		return fmt.Errorf("%w: channels: customer id is required", sessions.ErrInvalid)
	case r.Conversation != nil && r.Conversation.CustomerID != r.CustomerID:
		return fmt.Errorf("%w: channels: conversation %s is not customer %s's", sessions.ErrInvalid, r.Conversation.ID, r.CustomerID)
	case r.Conversation != nil && r.Channel != "":
		return fmt.Errorf("%w: channels: a channel is chosen only for a message outside any conversation", sessions.ErrInvalid)
	case r.Message.Text == "" && len(r.Message.Media) == 0:
		return fmt.Errorf("%w: channels: empty message", sessions.ErrInvalid)
	case r.Message.ClientID == "":
		return fmt.Errorf("%w: channels: client id is required, so a retry is not sent twice", sessions.ErrInvalid)
	case r.Author == "":
		return fmt.Errorf("%w: channels: author is required", sessions.ErrInvalid)
	case !validPurpose(r.Purpose):
		return fmt.Errorf("%w: purpose %q is not a lowercase word of up to 64 letters, digits, _ and -", sessions.ErrInvalid, r.Purpose)
	}
	return nil
}

func validPurpose(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for _, c := range p {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// Result is a message the Sender recorded.
type Result struct {
	// Event is the message_out.
	Event sessions.Event
	// Receipt is the channel's answer; nil on a replay of a client id.
	Receipt *Receipt
}

// SenderOptions are a Sender's dependencies.
type SenderOptions struct {
	Store Store // required
	// Channels are the connected adapters; nil means none, and every
	// message is refused with ReasonNotConnected.
	Channels *Registry
	// Policy is asked about every message. Required: pass AllowAll
	// deliberately, so a forgotten policy can't allow everything.
	Policy Policy
	// SendTimeout bounds one adapter's Send. Zero means 30 seconds.
	SendTimeout time.Duration
	// Metrics receives the send counter; nil means none.
	Metrics prometheus.Registerer
	// Logger gets failures to record a delivery status; nil discards.
	Logger *slog.Logger
}

// Sender is the one outbound path: every message to a customer (a rep's
// reply, an integrator's notice, later the dialer's) goes through Send.
// It is safe for concurrent use.
type Sender struct {
	store   Store
	chans   *Registry
	policy  Policy
	timeout time.Duration
	log     *slog.Logger
	sends   *prometheus.CounterVec // nil without metrics
}

// NewSender builds a Sender and registers its metric.
func NewSender(o SenderOptions) (*Sender, error) {
	if o.Store == nil || o.Policy == nil {
		return nil, errors.New("channels: Sender needs a Store and a Policy")
	}
	if o.SendTimeout < 0 {
		return nil, fmt.Errorf("channels: send timeout %v is negative", o.SendTimeout)
	}
	s := &Sender{store: o.Store, chans: o.Channels, policy: o.Policy, timeout: o.SendTimeout, log: o.Logger}
	if s.timeout == 0 {
		s.timeout = 30 * time.Second
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics != nil {
		// The name predates the Sender (the HTTP API counted its replies);
		// it is kept so dashboards don't break.
		s.sends = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnigate", Subsystem: "api", Name: "outbound_messages_total",
			Help: "Messages sent through channel adapters, by channel and result (sent, failed).",
		}, []string{"channel", "result"})
		if err := o.Metrics.Register(s.sends); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// deliveryStatus is the payload of the delivery_status event recorded
// after every send attempt.
type deliveryStatus struct {
	EventID string `json:"event_id"`
	// Status is "sent" or "failed".
	Status     string `json:"status"`
	ProviderID string `json:"provider_id,omitempty"`
	// Error is the Reason, not the adapter's text, which may quote an
	// address.
	Error Reason `json:"error,omitempty"`
}

// Send chooses the channel (ReplyChannel), asks the Policy, records the
// message_out, sends it through the channel's adapter and records a
// delivery_status.
//
// Order: refuse what can be refused first, then append, then send. The
// adapter is looked up, its CanSend checked and the Policy asked before
// anything is recorded, so a message that can't or may not go out leaves
// no trace (*RefusedError, or a *SendError with no Event). CanSend comes
// before the Policy because a policy that allows also records the contact
// in its ledger (contact.Policy claims it): a message the channel would
// refuse (an SMS opt-out, WeChat's closed window) must not count as a
// contact, and the channel's own refusal is the more precise answer.
// Appending before sending means that by the time anything reaches the
// customer the message is on the timeline (durable, with its sequence), so
// a crash after sending can't leave a message the customer read and no rep
// can see, and a retry with the same client id finds the stored event and
// sends nothing: at most one delivery per client id, which is what a
// customer would expect of "never contacted twice for the same thing". The
// price is that a crash between append and send leaves a message recorded
// but not sent; the missing delivery_status shows it, and the sender can
// resend with a new client id. Sending first would instead risk the worse
// failure: a delivered message with no record and a retry that delivers it
// again.
//
// A replay (the client id is already recorded for this message) returns
// the recorded event with a nil Receipt. The refusals before the append
// come first, so a retry the channel or the policy would now refuse is
// refused rather than answered from the record.
func (s *Sender) Send(ctx context.Context, r Request) (Result, error) {
	if err := r.validate(); err != nil {
		return Result{}, err
	}
	conv, err := s.target(ctx, r)
	if err != nil {
		return Result{}, err
	}
	ch, topic := r.Channel, r.Topic
	if ch == "" {
		if ch, err = ReplyChannel(ctx, s.store, r.CustomerID, conv.ID, conv.Channel); err != nil {
			return Result{}, err
		}
	}
	if conv.ID != "" {
		topic = conv.Topic
	}
	if ch == "" {
		return Result{}, &SendError{Reason: ReasonNoChannel,
			Err: fmt.Errorf("customer %s has not written in their last %d events and has no active conversation", r.CustomerID, replyTail)}
	}
	adapter, err := s.chans.Get(ch)
	if err != nil {
		return Result{}, &SendError{Channel: ch, Reason: ReasonNotConnected, Err: err}
	}
	ids, err := s.store.Identities(ctx, r.CustomerID)
	if err != nil {
		return Result{}, err
	}
	if err := adapter.CanSend(ctx, r.CustomerID, ids); err != nil {
		return Result{}, &SendError{Channel: ch, Reason: reasonOf(err), Err: err}
	}
	v, err := s.policy.Check(ctx, Contact{CustomerID: r.CustomerID, ConversationID: conv.ID, Channel: ch,
		Purpose: r.Purpose, Author: r.Author, ID: r.Message.ClientID, Topic: topic})
	if err == nil {
		err = v.validate()
	}
	if err != nil {
		return Result{}, fmt.Errorf("channels: contact policy for customer %s: %w", r.CustomerID, err)
	}
	if v.Decision != Allow {
		return Result{}, &RefusedError{Channel: ch, Verdict: v}
	}
	payload, err := json.Marshal(r.Message)
	if err != nil {
		return Result{}, err
	}
	ev, appended, err := s.store.Append(ctx, sessions.Event{
		CustomerID: r.CustomerID, ConversationID: conv.ID, Kind: sessions.KindMessageOut,
		Channel: ch, ExternalID: r.Message.ClientID, Author: r.Author, Payload: payload,
	})
	if err != nil {
		return Result{}, err
	}
	if !appended {
		if !r.sameMessage(ev) {
			return Result{}, fmt.Errorf("%w: %q", ErrClientIDReused, r.Message.ClientID)
		}
		return Result{Event: ev}, nil
	}

	// The message is recorded: finish the send even if the caller goes.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	receipt, sendErr := adapter.Send(ctx, Outbound{
		CustomerID: r.CustomerID, ConversationID: conv.ID, EventID: ev.ID, Identities: ids, Message: r.Message,
	})
	ds := deliveryStatus{EventID: ev.ID, Status: "sent", ProviderID: receipt.ID}
	if sendErr != nil {
		ds = deliveryStatus{EventID: ev.ID, Status: "failed", Error: reasonOf(sendErr)}
	}
	s.count(ch, ds.Status)
	dsPayload, _ := json.Marshal(ds)
	if _, _, err := s.store.Append(ctx, sessions.Event{
		CustomerID: r.CustomerID, ConversationID: conv.ID, Kind: sessions.KindDelivery,
		Channel: ch, Author: sessions.ChannelSystem, Payload: dsPayload,
	}); err != nil {
		// The message went out (or didn't) whatever happens to its
		// status record; the answer below is still the truth.
		s.log.LogAttrs(ctx, slog.LevelWarn, "recording delivery status failed",
			slog.String("event_id", ev.ID), slog.String("channel", ch), slog.Any("error", err))
	}
	if sendErr != nil {
		return Result{Event: ev}, &SendError{Channel: ch, Reason: ds.Error, Event: &ev, Err: sendErr}
	}
	return Result{Event: ev, Receipt: &receipt}, nil
}

// target is the conversation r goes into: r.Conversation, else the
// customer's active conversation with the newest event, else none (the
// zero Conversation).
func (s *Sender) target(ctx context.Context, r Request) (sessions.Conversation, error) {
	if r.Conversation != nil {
		return *r.Conversation, nil
	}
	if r.Channel != "" {
		return sessions.Conversation{}, nil // outside any conversation
	}
	var best sessions.Conversation
	q := sessions.ConversationQuery{CustomerID: r.CustomerID, Limit: 500}
	for {
		page, next, err := s.store.Conversations(ctx, q)
		if err != nil {
			return sessions.Conversation{}, err
		}
		for _, c := range page {
			if c.Status.Active() && (best.ID == "" || c.LastSeq > best.LastSeq) {
				best = c
			}
		}
		if next == "" {
			return best, nil
		}
		q.Cursor = next
	}
}

// sameMessage reports whether the stored event found by r's client id is
// r again (a retry), not a reuse of the id. A message r sends into a
// conversation of its choosing may find the retry in another conversation
// (the customer wrote in between and one opened), which is still a retry.
func (r Request) sameMessage(ev sessions.Event) bool {
	var got sessions.Message
	return ev.Kind == sessions.KindMessageOut &&
		(r.Conversation == nil || ev.ConversationID == r.Conversation.ID) &&
		json.Unmarshal(ev.Payload, &got) == nil && got.Text == r.Message.Text && got.ClientID == r.Message.ClientID
}

func (s *Sender) count(channel, result string) {
	if s.sends != nil {
		s.sends.WithLabelValues(channel, result).Inc()
	}
}
