package voice

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"

	"github.com/omnigate/omnigate/sessions"
	"github.com/omnigate/omnigate/sessions/redact"
)

// AuthorVoice is the author of the call events after the caller's first
// one (which is the customer's: it is what the router routes).
const AuthorVoice = "voice"

// Steps of an inbound call, as CallEvent.Step.
const (
	StepIncoming = "incoming" // the call arrived; routed like a message
	StepRinging  = "ringing"  // a rep's phone rings
	StepMissed   = "missed"   // the rep's phone rang out or refused
	StepAnswered = "answered" // a rep answered: caller and rep are bridged
	StepOverflow = "overflow" // nobody answered in time: Outcome says what next
	StepEnded    = "ended"    // the call is over: Outcome, who hung up, times
)

// Outcomes of an inbound call, as CallEvent.Outcome on StepEnded (and on
// StepOverflow, what the overflow did).
const (
	OutcomeAnswered    = "answered"
	OutcomeAbandoned   = "abandoned"   // the caller hung up before a rep answered
	OutcomeVoicemail   = "voicemail"   // sent to Config.Voicemail
	OutcomeCallback    = "callback"    // told unavailable; a callback was requested
	OutcomeUnavailable = "unavailable" // ended by the gateway before anyone answered
)

// CallEvent is the payload of this package's sessions.KindCall events. Its
// field names are those of the dialer's CallEvent, so the inbox shows an
// inbound and an outbound call with one renderer; Direction tells them
// apart ("in" here). The number is masked: reps see this.
type CallEvent struct {
	Step      string `json:"step"`
	Direction string `json:"direction"`
	Number    string `json:"number"`
	// Verified says a trusted trunk asserted the number.
	Verified bool   `json:"verified,omitempty"`
	Outcome  string `json:"outcome,omitempty"`
	SIPCode  int    `json:"sip_code,omitempty"`
	// RingMS is how long the rep's phone rang; QueueMS how long the
	// caller had waited (at the answer, or when they hung up); TalkMS the
	// time from the answer to the hangup.
	RingMS   int64  `json:"ring_ms,omitempty"`
	QueueMS  int64  `json:"queue_ms,omitempty"`
	TalkMS   int64  `json:"talk_ms,omitempty"`
	Rep      string `json:"rep,omitempty"`
	HungUpBy string `json:"hung_up_by,omitempty"`
}

// callKey is the part of a call's external ids that names the call: its
// SIP Call-ID, hashed when long, so every id stays under the store's
// limit and a trunk's retransmission is recorded once.
func callKey(callID string) string {
	if len(callID) <= 128 {
		return callID
	}
	h := sha256.Sum256([]byte(callID))
	return hex.EncodeToString(h[:16])
}

// record appends a step of call c to its conversation. A failure is
// logged: the call goes on whatever the timeline says.
func (c *inbound) record(ctx context.Context, ext string, ev CallEvent) {
	ev.Direction, ev.Number, ev.Verified = "in", redact.Phone(c.number), c.ic.Verified
	payload, _ := json.Marshal(ev)
	_, _, err := c.a.o.Store.Append(context.WithoutCancel(ctx), sessions.Event{CustomerID: c.customer, ConversationID: c.conv,
		Kind: sessions.KindCall, Channel: sessions.ChannelVoice, Author: AuthorVoice,
		ExternalID: "call:" + callKey(c.ic.CallID) + ":" + ext, Payload: payload})
	if err != nil {
		c.a.log.LogAttrs(ctx, slog.LevelWarn, "voice: call event not written", slog.String("step", ev.Step),
			slog.String("conversation", c.conv), slog.Any("error", err))
	}
}
