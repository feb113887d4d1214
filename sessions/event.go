package sessions

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// EventKind says what happened.
type EventKind string

const (
	KindMessageIn      EventKind = "message_in"
	KindMessageOut     EventKind = "message_out"
	KindNote           EventKind = "note"
	KindAssignment     EventKind = "assignment"
	KindTransfer       EventKind = "transfer"
	KindStatusChange   EventKind = "status_change"
	KindCall           EventKind = "call"
	KindIdentityLinked EventKind = "identity_linked"
	KindMerged         EventKind = "customers_merged"
	KindIntegrator     EventKind = "integrator"
	KindDelivery       EventKind = "delivery_status"
	// KindOffer is a routing offer and its answer: the router offering
	// the conversation to a rep, the offer ending, or the rep accepting
	// or declining (see Offer).
	KindOffer EventKind = "offer"
	// KindProfileChanged records a change to a customer's profile (owner,
	// tier and VIP decide routing; name, tags, locale...): who changed
	// which field from what to what (ProfileChange).
	KindProfileChanged EventKind = "profile_changed"
	// KindChannelChoice records how best-channel contact chose the
	// channel for a message (or a callback): each channel considered and
	// why it was skipped (channels.Choice).
	KindChannelChoice EventKind = "channel_choice"
	// KindContactRefused records an outbound contact the contact policy
	// denied or deferred: nothing was sent, and this is the only trace
	// (ContactRefusal), so a rep sees why the customer was not told.
	KindContactRefused EventKind = "contact_refused"
)

var eventKinds = map[EventKind]bool{
	KindMessageIn: true, KindMessageOut: true, KindNote: true, KindAssignment: true,
	KindTransfer: true, KindStatusChange: true, KindCall: true, KindIdentityLinked: true,
	KindMerged: true, KindIntegrator: true, KindDelivery: true, KindOffer: true, KindProfileChanged: true,
	KindChannelChoice:  true,
	KindContactRefused: true,
}

// AuthorRouter is the author of what the router writes (assignments,
// offers, overflow): its own writes coming back on the feed are known by
// it, and the inbox says "Router".
const AuthorRouter = "router"

// Channel names used by more than one package.
const (
	ChannelSystem  = "system"
	ChannelWebchat = "webchat"
	ChannelWeChat  = "wechat"
	ChannelSMS     = "sms"
	ChannelVoice   = "voice"
	ChannelAPI     = "api"
)

// MaxPayload is the largest event payload a store accepts. Channels cap
// their own inputs lower; this is the last line.
const MaxPayload = 64 << 10

// Event is one thing that happened with a customer, on any channel.
type Event struct {
	CustomerID string `json:"customer_id"`
	// Seq is the position in the customer's timeline: 1, 2, 3, ... with no
	// gaps. Clients resume from the last Seq they saw.
	Seq            uint64    `json:"seq"`
	ID             string    `json:"id"`
	Time           time.Time `json:"time"`
	ConversationID string    `json:"conversation_id,omitempty"`
	Kind           EventKind `json:"kind"`
	Channel        string    `json:"channel"`
	// ExternalID is the channel's own id for the input (WeChat MsgId, SMS
	// MessageSid, the widget's client id, webhook-id). A second append with
	// the same channel and external id returns the first event.
	ExternalID string `json:"external_id,omitempty"`
	// Author is "customer", "rep:<id>", "admin:<id>", "system", "router"
	// or "integrator:<name>".
	Author  string          `json:"author,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	// Origin is set on events copied onto this timeline by a merge:
	// "<customer id>/<seq>" of the original, which stays where it was.
	// Copies keep the original's kind, channel, time, author, payload and
	// external id, so a retry of a pre-merge input is still deduplicated.
	Origin string `json:"origin,omitempty"`
}

// DedupKey is the idempotency key, empty when the event has no external id.
func (e Event) DedupKey() string {
	if e.ExternalID == "" {
		return ""
	}
	return e.Channel + "|" + e.ExternalID
}

// Validate checks an event before a store assigns its sequence.
func (e Event) Validate() error {
	switch {
	case e.CustomerID == "":
		return fmt.Errorf("%w: event has no customer", ErrInvalid)
	case !eventKinds[e.Kind]:
		return fmt.Errorf("%w: unknown event kind %q", ErrInvalid, e.Kind)
	case e.Channel == "":
		return fmt.Errorf("%w: event has no channel", ErrInvalid)
	case len(e.ExternalID) > 256:
		return fmt.Errorf("%w: external id longer than 256 bytes", ErrInvalid)
	case len(e.Payload) > MaxPayload:
		return fmt.Errorf("%w: payload larger than %d bytes", ErrInvalid, MaxPayload)
	case len(e.Payload) > 0 && !json.Valid(e.Payload):
		return fmt.Errorf("%w: payload is not JSON", ErrInvalid)
	}
	return nil
}

// stamp fills the fields a store owns, except Seq.
func (e *Event) stamp(now time.Time) {
	if e.ID == "" {
		e.ID = NewID("evt")
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
}

// Offer is what every offer event's payload says. The routing node's
// events carry its whole decision besides: Kind "offer" while the offer
// stands (to Rep, until ExpiresAt), "offer_expired", "offer_declined" or
// "offer_withdrawn" once it ended. A rep's answer (author "rep:<id>")
// has Response instead: the routing node acts on it; the answer alone
// assigns nothing.
type Offer struct {
	Kind      string    `json:"kind,omitempty"`
	Rep       string    `json:"rep"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Response  string    `json:"response,omitempty"`
}

// Answers to an offer, as Offer.Response.
const (
	OfferAccepted = "accepted"
	OfferDeclined = "declined"
)

// ContactRefusal is the payload of a contact_refused event.
type ContactRefusal struct {
	// Decision is "deny" or "defer".
	Decision string `json:"decision"`
	// Reasons are the policy's machine-readable words ("quiet_hours").
	Reasons []string `json:"reasons"`
	// Until is when a deferred contact may be made; absent on a deny.
	Until time.Time `json:"until,omitzero"`
	// Channel is the channel the contact would have gone out on.
	Channel string `json:"channel"`
	// Purpose is why it was to be sent ("reply", "notice", "sales").
	Purpose string `json:"purpose,omitempty"`
	// HandedOff says the policy handed the contact to the rep of the
	// customer's open work: the event is in that conversation, with the
	// message's text for the rep to use.
	HandedOff bool   `json:"handed_off,omitempty"`
	Text      string `json:"text,omitempty"`
	// No client_id: the refused message was not recorded, so its sender
	// may retry with the same id, and a client matching events to what
	// it shows as sending by client_id must not take this for it.
}

// Message is the payload of message_in, message_out and note events.
type Message struct {
	Text  string  `json:"text,omitempty"`
	Media []Media `json:"media,omitempty"`
	// ClientID is the sender's own id for the message (widget, inbox) so
	// its sender can match the echo to what it showed as "sending".
	ClientID string `json:"client_id,omitempty"`
}

// Media is an attachment.
type Media struct {
	// Type is image, voice, video, file, location or link.
	Type string `json:"type"`
	URL  string `json:"url,omitempty"`
	Name string `json:"name,omitempty"`
	// Text carries a caption, a voice recognition result or an address.
	Text string `json:"text,omitempty"`
}

// Merge is the payload of a customers_merged event.
type Merge struct {
	From string `json:"from"`
	Into string `json:"into"`
	// Evidence says why the merge was allowed: "verified_site_user",
	// "wechat_unionid", "phone_proven", "admin:<id>".
	Evidence string `json:"evidence"`
	// Copied is how many events of From were copied onto Into's timeline.
	Copied int `json:"copied"`
	// FirstSeq is where the copies start on Into's timeline (0 when none).
	FirstSeq uint64 `json:"first_seq,omitempty"`
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with types defined in this package
	}
	return b
}

// TimelineLimit returns the effective page size of a timeline read: zero
// means 100, and no page is larger than 1,000.
func TimelineLimit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

// MergedEvent is the customers_merged event that heads a merge on into's
// timeline, whose last sequence before the merge is lastSeq. The copies of
// from's copied events follow it directly.
func MergedEvent(into, from, evidence, author string, copied int, lastSeq uint64) Event {
	m := Merge{From: from, Into: into, Evidence: evidence, Copied: copied}
	if copied > 0 {
		m.FirstSeq = lastSeq + 2
	}
	return Event{CustomerID: into, Kind: KindMerged, Channel: ChannelSystem, Author: author, Payload: mustJSON(m)}
}

// CopyForMerge is ev as copied onto into's timeline by a merge; the store
// assigns its sequence.
func CopyForMerge(ev Event, into string) Event {
	ev.Origin = ev.CustomerID + "/" + strconv.FormatUint(ev.Seq, 10)
	ev.CustomerID, ev.ID, ev.Seq = into, NewID("evt"), 0
	return ev
}
