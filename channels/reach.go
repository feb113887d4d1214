package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/omnigate/omnigate/sessions"
)

// Presence is an adapter that knows whether a customer sees a message the
// moment it is sent (web chat: an open widget). Best-channel contact
// (Reach) skips a channel whose adapter has it and answers false.
type Presence interface {
	Online(customerID string) bool
}

// ReachStore is what Reach needs of a sessions.Store besides the Sender's
// Store: the customer, and the conversation the contact goes into.
type ReachStore interface {
	Store
	Customer(ctx context.Context, id string) (sessions.Customer, error)
	Conversation(ctx context.Context, id string) (sessions.Conversation, error)
	OpenConversation(ctx context.Context, customerID, topic, channel string) (sessions.Conversation, bool, error)
	UpdateConversation(ctx context.Context, id string, u sessions.ConversationUpdate) (sessions.Conversation, sessions.Event, error)
}

// Reasons best-channel contact skips a channel for, besides the Sender's
// (not_connected, channel_unavailable, window_closed, opted_out, ...).
const (
	// ReasonNoLiveSession: the channel reaches the customer only while
	// they are on it (web chat: no open widget).
	ReasonNoLiveSession Reason = "no_live_session"
	// ReasonUnverifiedPhone: SMS goes to verified numbers only, and the
	// customer's are not.
	ReasonUnverifiedPhone Reason = "unverified_phone"
	// ReasonConversationElsewhere: the customer has an active
	// conversation on the topic and wrote in it on another channel; the
	// Sender answers a conversation where the customer last wrote in it.
	ReasonConversationElsewhere Reason = "conversation_elsewhere"
)

// CallbackRequested is the type of the integrator event that asks for a
// callback (Reach's last resort): the routing service routes it like a
// customer's message, on channel voice.
const CallbackRequested = "callback_requested"

// reachOrder is the default order of ReachRequest.Channels: the channels
// that reach the customer soonest first, a callback last.
var reachOrder = []string{sessions.ChannelWebchat, sessions.ChannelWeChat, sessions.ChannelSMS, sessions.ChannelVoice}

// ReachRequest is "reach this customer about Topic for Purpose with this
// text".
type ReachRequest struct {
	// CustomerID is who to reach. Required.
	CustomerID string
	// Topic is what it is about (an order, a ticket); the message goes
	// into the customer's active conversation on it, and the policy sees
	// it. Empty is the customer's general conversation.
	Topic string
	// Purpose is passed to the Policy, as in Request. Required.
	Purpose string
	// Message is what to send; its ClientID is required and makes Reach
	// idempotent (see Reach).
	Message sessions.Message
	// Author is recorded on every event ("integrator:crm"). Required.
	Author string
	// Channels are the channels to consider, in order: webchat, wechat,
	// sms, and voice for a callback. Nil means all four in that order; a
	// list without voice never asks for a callback.
	Channels []string
}

func (r ReachRequest) validate() error {
	send := Request{CustomerID: r.CustomerID, Message: r.Message, Author: r.Author, Purpose: r.Purpose}
	if err := send.validate(); err != nil {
		return err
	}
	if err := sessions.ValidateTopic(r.Topic, sessions.ChannelVoice); err != nil {
		return err
	}
	if r.Channels != nil && len(r.Channels) == 0 {
		return fmt.Errorf("%w: channels: an empty list of channels reaches no one", sessions.ErrInvalid)
	}
	for i, ch := range r.Channels {
		if !slices.Contains(reachOrder, ch) {
			return fmt.Errorf("%w: channels: %q is not one of %s", sessions.ErrInvalid, ch, strings.Join(reachOrder, ", "))
		}
		if slices.Contains(r.Channels[:i], ch) {
			return fmt.Errorf("%w: channels: %q is listed twice", sessions.ErrInvalid, ch)
		}
	}
	return nil
}

// Skip is a channel Reach considered and did not use, and why.
type Skip struct {
	Channel string `json:"channel"`
	Reason  Reason `json:"reason"`
}

// Choice is what Reach chose and why: the payload of the channel_choice
// event, which the inbox shows like the router's "why this rep".
type Choice struct {
	// Channel is the channel chosen: webchat, wechat or sms for a message,
	// voice for a callback.
	Channel string `json:"channel"`
	// Callback is true when no channel could take the message now and a
	// rep is asked to call the customer back.
	Callback bool   `json:"callback,omitempty"`
	Topic    string `json:"topic,omitempty"`
	Purpose  string `json:"purpose"`
	ClientID string `json:"client_id"`
	// Text is the message, so a retry with the client id is told apart
	// from a reuse of it.
	Text string `json:"text"`
	// Skipped are the channels considered before Channel, in order.
	Skipped []Skip `json:"skipped,omitempty"`
}

// Reached is what Reach did.
type Reached struct {
	Choice Choice
	// ChoiceEvent is the channel_choice event.
	ChoiceEvent sessions.Event
	// Event is the message_out, or the callback request (an integrator
	// event of type callback_requested); zero when the message was refused
	// before it was recorded.
	Event sessions.Event
	// Conversation is where Event went; zero with Event.
	Conversation sessions.Conversation
	// Receipt is the channel's answer; nil for a callback and a replay.
	Receipt *Receipt
	// Replay is true when the client id was seen before: nothing new was
	// sent or asked for.
	Replay bool
}

// UnreachableError is a customer that no channel of the request can
// reach, not even by a callback. Nothing was recorded.
type UnreachableError struct {
	Skipped []Skip
}

func (e *UnreachableError) Error() string {
	parts := make([]string, len(e.Skipped))
	for i, s := range e.Skipped {
		parts[i] = s.Channel + ": " + string(s.Reason)
	}
	return "channels: no channel can reach the customer (" + strings.Join(parts, ", ") + ")"
}

// Reach is best-channel contact: it picks the channel the customer can
// receive on now, records the choice, and sends through Send, or asks for
// a callback when no channel can take the message.
//
// The channels of r.Channels are tried in order. A message channel is
// skipped when its adapter is not connected, its CanSend refuses (no
// address, opted out, a closed WeChat window), it is a Presence that says
// the customer is not there (web chat without an open widget), it is SMS
// and no phone number is verified, or the customer has an active
// conversation on the topic and wrote in it on another channel (the
// Sender answers where they wrote). Voice, a callback, is skipped only
// when the customer has no phone number. Nothing is recorded before the
// choice; a customer no channel can reach gets an *UnreachableError.
//
// The choice is a channel_choice event (payload Choice) on the customer's
// timeline, appended before anything is sent, with the client id as its
// external id: a retry with the client id finds it and answers what was
// done (Replay), sending nothing twice even if the customer's channels
// changed meanwhile. A retry after a crash between the choice and the send
// completes the send on the channel chosen.
//
// A message goes into the customer's active conversation on the topic;
// without one, it goes on the timeline outside any conversation (the
// message needs no rep, and a conversation opened for it would be routed
// to one, or shown closed in the widget if resolved at once). The
// customer's answer opens or continues a conversation as any message
// does.
//
// The Sender asks the Policy. Its refusal ends Reach (a *RefusedError,
// with the choice recorded): a deny or defer is about the customer and
// the purpose, not the channel. That holds for do_not_contact too: the
// verdict does not say whether an entry is for one channel or all, and
// contacting the customer on the next channel when it was for all is the
// one mistake that must not happen. Channel-specific refusals are the
// adapters' (opted_out, window_closed), which the walk skips before the
// policy is asked.
//
// A callback is an integrator event of type callback_requested (channel
// voice) in the customer's active conversation on the topic, opened on
// voice when there is none (reopened when pending): the routing service
// routes it to a rep like a customer's message. No message is sent and the
// policy is not asked: the call is a contact, and the dialer asks the
// policy when it dials.
func (s *Sender) Reach(ctx context.Context, st ReachStore, r ReachRequest) (Reached, error) {
	if err := r.validate(); err != nil {
		return Reached{}, err
	}
	cust, err := st.Customer(ctx, r.CustomerID)
	if err != nil {
		return Reached{}, err
	}
	if cust.MergedInto != "" {
		return Reached{}, fmt.Errorf("%w: customer %s was merged into %s; contact that one", sessions.ErrMerged, r.CustomerID, cust.MergedInto)
	}
	ids, err := st.Identities(ctx, r.CustomerID)
	if err != nil {
		return Reached{}, err
	}
	conv, err := activeOnTopic(ctx, st, r.CustomerID, r.Topic)
	if err != nil {
		return Reached{}, err
	}
	wrote := ""
	if conv.ID != "" {
		if wrote, err = ReplyChannel(ctx, st, r.CustomerID, conv.ID, ""); err != nil {
			return Reached{}, err
		}
	}
	choice := Choice{Topic: r.Topic, Purpose: r.Purpose, ClientID: r.Message.ClientID, Text: r.Message.Text}
	order := r.Channels
	if order == nil {
		order = reachOrder
	}
	for _, ch := range order {
		if why := s.skip(ctx, r.CustomerID, ch, ids, wrote); why != "" {
			choice.Skipped = append(choice.Skipped, Skip{Channel: ch, Reason: why})
			continue
		}
		choice.Channel, choice.Callback = ch, ch == sessions.ChannelVoice
		break
	}
	if choice.Channel == "" {
		return Reached{}, &UnreachableError{Skipped: choice.Skipped}
	}

	payload, err := json.Marshal(choice)
	if err != nil {
		return Reached{}, err
	}
	cev, appended, err := st.Append(ctx, sessions.Event{
		CustomerID: r.CustomerID, ConversationID: conv.ID, Kind: sessions.KindChannelChoice,
		Channel: sessions.ChannelSystem, ExternalID: r.Message.ClientID, Author: r.Author, Payload: payload,
	})
	if err != nil {
		return Reached{}, err
	}
	out := Reached{Choice: choice, ChoiceEvent: cev}
	if !appended {
		if err := json.Unmarshal(cev.Payload, &out.Choice); cev.Kind != sessions.KindChannelChoice || err != nil ||
			out.Choice.Text != choice.Text || out.Choice.Purpose != choice.Purpose || out.Choice.Topic != choice.Topic {
			return Reached{}, fmt.Errorf("%w: %q", ErrClientIDReused, r.Message.ClientID)
		}
		done, err := s.replayed(ctx, st, out)
		if err != nil || done.Replay {
			return done, err
		}
		// The choice was recorded and the action was not: finish it.
	}
	// The request is recorded: finish it even if the caller goes.
	ctx = context.WithoutCancel(ctx)
	if out.Choice.Callback {
		return s.callback(ctx, st, r, out)
	}
	return s.message(ctx, r, conv, out)
}

// skip says why ch can't take the message now, or "" when it can.
func (s *Sender) skip(ctx context.Context, customerID, ch string, ids []sessions.Identity, wrote string) Reason {
	if ch == sessions.ChannelVoice {
		if !hasPhone(ids, false) {
			return ReasonUnreachable
		}
		return ""
	}
	if wrote != "" && wrote != ch {
		return ReasonConversationElsewhere
	}
	a, err := s.chans.Get(ch)
	if err != nil {
		return ReasonNotConnected
	}
	if err := a.CanSend(ctx, customerID, ids); err != nil {
		return reasonOf(err)
	}
	if p, ok := a.(Presence); ok && !p.Online(customerID) {
		return ReasonNoLiveSession
	}
	if ch == sessions.ChannelSMS && !hasPhone(ids, true) {
		return ReasonUnverifiedPhone
	}
	return ""
}

// hasPhone reports whether ids hold a valid phone number (a verified one
// when verified is set).
func hasPhone(ids []sessions.Identity, verified bool) bool {
	return slices.ContainsFunc(ids, func(id sessions.Identity) bool {
		return id.Kind == sessions.IdentityPhone && (id.Verified || !verified) && sessions.CheckPhone(id.Value) == nil
	})
}

// activeOnTopic is the customer's active conversation on topic, or the
// zero Conversation.
func activeOnTopic(ctx context.Context, st Store, customerID, topic string) (sessions.Conversation, error) {
	q := sessions.ConversationQuery{CustomerID: customerID, Limit: 500}
	for {
		page, next, err := st.Conversations(ctx, q)
		if err != nil {
			return sessions.Conversation{}, err
		}
		for _, c := range page {
			if c.Status.Active() && c.Topic == topic {
				return c, nil
			}
		}
		if next == "" {
			return sessions.Conversation{}, nil
		}
		q.Cursor = next
	}
}

// message sends the message on the chosen channel, into conv, or outside
// any conversation when the customer has none on the topic.
func (s *Sender) message(ctx context.Context, r ReachRequest, conv sessions.Conversation, out Reached) (Reached, error) {
	req := Request{CustomerID: r.CustomerID, Message: r.Message, Author: r.Author, Purpose: r.Purpose}
	if conv.ID == "" {
		req.Channel, req.Topic = out.Choice.Channel, r.Topic
	} else {
		// The Sender sends where the customer last wrote in the
		// conversation, else on its Channel: the walk made sure they wrote
		// on the chosen channel or not at all, so this is it.
		target := conv
		target.Channel = out.Choice.Channel
		req.Conversation = &target
	}
	res, err := s.Send(ctx, req)
	out.Event, out.Receipt = res.Event, res.Receipt
	if res.Event.ID != "" {
		out.Conversation = conv
	}
	return out, err
}

// callbackPayload is the callback request's payload, shaped like an
// integrator event's (type and data), so the inbox and webhooks read it
// as one.
type callbackPayload struct {
	Type string       `json:"type"`
	Data callbackData `json:"data"`
}

type callbackData struct {
	Topic    string `json:"topic,omitempty"`
	Purpose  string `json:"purpose"`
	Text     string `json:"text"`
	ClientID string `json:"client_id"`
}

// callback asks a rep to call the customer back: a callback_requested
// event in the topic's conversation, which routing routes.
func (s *Sender) callback(ctx context.Context, st ReachStore, r ReachRequest, out Reached) (Reached, error) {
	conv, _, err := st.OpenConversation(ctx, r.CustomerID, r.Topic, sessions.ChannelVoice)
	if err != nil {
		return out, err
	}
	payload, err := json.Marshal(callbackPayload{Type: CallbackRequested, Data: callbackData{
		Topic: r.Topic, Purpose: r.Purpose, Text: r.Message.Text, ClientID: r.Message.ClientID}})
	if err != nil {
		return out, err
	}
	ev := sessions.Event{CustomerID: r.CustomerID, ConversationID: conv.ID, Kind: sessions.KindIntegrator,
		Channel: sessions.ChannelVoice, ExternalID: r.Message.ClientID, Author: r.Author, Payload: payload}
	if conv.Status == sessions.StatusPending {
		// Routing routes open conversations only: reopen it with the
		// request, in one write.
		open := sessions.StatusOpen
		conv, out.Event, err = st.UpdateConversation(ctx, conv.ID, sessions.ConversationUpdate{Status: &open, Event: ev})
	} else {
		out.Event, _, err = st.Append(ctx, ev)
	}
	if err != nil {
		return out, err
	}
	out.Conversation = conv
	return out, nil
}

// replayTail bounds how far after its choice a retry looks for what was
// done: the send or the callback request follows the choice at once.
const replayTail = 200

// replayed finds what a recorded choice led to: the message_out or the
// callback request with the client id, after the choice on the timeline.
// Found, it is the answer (Replay); not found, the caller finishes the
// action.
func (s *Sender) replayed(ctx context.Context, st ReachStore, out Reached) (Reached, error) {
	evs, err := st.Timeline(ctx, out.ChoiceEvent.CustomerID, out.ChoiceEvent.Seq, replayTail)
	if err != nil {
		return out, err
	}
	for _, ev := range evs {
		if ev.ExternalID != out.Choice.ClientID || ev.Channel != out.Choice.Channel ||
			(ev.Kind != sessions.KindMessageOut && ev.Kind != sessions.KindIntegrator) {
			continue
		}
		out.Event, out.Replay = ev, true
		if ev.ConversationID == "" {
			return out, nil // sent outside any conversation
		}
		if out.Conversation, err = st.Conversation(ctx, ev.ConversationID); err != nil {
			return out, err
		}
		return out, nil
	}
	return out, nil
}
