package dialer

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/sessions"
)

// AuthorDialer is the author of the dialer's timeline events.
const AuthorDialer = "dialer"

// CallStep is what a CallEvent records.
type CallStep string

const (
	StepDialed   CallStep = "dialed"
	StepOutcome  CallStep = "outcome" // the call ended (or was interrupted)
	StepDeferred CallStep = "deferred"
	StepSkipped  CallStep = "skipped" // the policy denied it, or a rep skipped it
	StepMarked   CallStep = "marked"  // the rep marked the outcome
)

// CallEvent is the payload of the dialer's sessions.KindCall events, one
// per step of an attempt, in the customer's conversation of topic
// "campaign:<id>". The number is masked: the inbox shows this to reps.
type CallEvent struct {
	Step     CallStep `json:"step"`
	Campaign string   `json:"campaign"`
	Attempt  string   `json:"attempt"`
	Try      int      `json:"try"`
	Number   string   `json:"number"` // masked (MaskNumber)
	Outcome  Outcome  `json:"outcome,omitempty"`
	SIPCode  int      `json:"sip_code,omitempty"`
	RingMS   int64    `json:"ring_ms,omitempty"`
	TalkMS   int64    `json:"talk_ms,omitempty"`
	Rep      string   `json:"rep,omitempty"`
	// RepOutcome and Note are the rep's marks (StepMarked).
	RepOutcome string `json:"rep_outcome,omitempty"`
	Note       string `json:"note,omitempty"`
	// Policy, Reasons and Until are the contact policy's decision when
	// it held the contact back (StepSkipped, StepDeferred); a rep's skip
	// has Reasons [{code: "rep_skipped", detail}].
	Policy  string           `json:"policy,omitempty"`
	Reasons []contact.Reason `json:"reasons,omitempty"`
	Until   time.Time        `json:"until,omitzero"`
	// NextTry is when the customer is tried again, if ever.
	NextTry time.Time `json:"next_try,omitzero"`
}

// Topic is the conversation topic of a campaign's calls.
func Topic(campaign string) string { return "campaign:" + campaign }

// conversation opens (or finds) the customer's conversation of the
// campaign.
func (s *Service) conversation(ctx context.Context, a Attempt) (sessions.Conversation, error) {
	conv, _, err := s.o.Sessions.OpenConversation(ctx, a.CustomerID, Topic(a.Campaign), sessions.ChannelVoice)
	return conv, err
}

// record appends ev for a to the customer's timeline, in the attempt's
// conversation (opened when it has none). The external id is
// the attempt and step, so a step written twice (a retry after an error)
// is one event. A failure is logged, not returned: the attempt's state
// in the dialer's store is the record that matters for exactly-once.
func (s *Service) record(ctx context.Context, a Attempt, ev CallEvent) {
	ev.Campaign, ev.Attempt, ev.Try, ev.Number = a.Campaign, a.ID, a.Try, MaskNumber(a.Number)
	if ev.Rep == "" {
		ev.Rep = a.Rep
	}
	ext := "dialer:" + a.ID + ":" + string(ev.Step)
	if ev.Step == StepMarked {
		ext += ":" + strconv.FormatUint(a.Version, 10) // a rep may mark again
	}
	payload, _ := json.Marshal(ev)
	ctx = context.WithoutCancel(ctx)
	convID, err := a.ConversationID, error(nil)
	if convID == "" {
		var conv sessions.Conversation
		conv, err = s.conversation(ctx, a)
		convID = conv.ID
	}
	if err == nil {
		_, _, err = s.o.Sessions.Append(ctx, sessions.Event{CustomerID: a.CustomerID, ConversationID: convID,
			Kind: sessions.KindCall, Channel: sessions.ChannelVoice, Author: AuthorDialer,
			ExternalID: ext, Payload: payload})
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "dialer: timeline event not written", slog.String("attempt", a.ID),
			slog.String("step", string(ev.Step)), slog.Any("error", err))
	}
}
