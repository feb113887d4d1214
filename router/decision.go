package router

import (
	"encoding/json"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// Kind says what a Decision is.
type Kind string

const (
	// KindAssign gives the task to the rep now (direct assignment).
	KindAssign Kind = "assign"
	// KindOffer offers the task to the rep, who must Accept or Decline
	// before the queue's accept timeout.
	KindOffer Kind = "offer"
	// KindAccepted confirms an offer the rep accepted; it carries the
	// offer's explanation.
	KindAccepted Kind = "accepted"
	// KindQueued says no rep could take the task now; it waits.
	KindQueued Kind = "queued"
	// KindOfferExpired, KindOfferDeclined and KindOfferWithdrawn end an
	// offer (timed out; declined; the rep went away or the customer left):
	// the inbox should drop it. The task is routed again.
	KindOfferExpired   Kind = "offer_expired"
	KindOfferDeclined  Kind = "offer_declined"
	KindOfferWithdrawn Kind = "offer_withdrawn"
	// KindOverflow reports the overflow action. After "callback" or
	// "message" the router has dropped the task; after "move" the task
	// waits (or is assigned) in the target channel's queue.
	KindOverflow Kind = "overflow"
	// KindTaken: with a shared State, another gateway node claimed the
	// task first; this router has forgotten it.
	KindTaken Kind = "taken"
)

// Ring names how far out the router had to look.
type Ring string

const (
	RingSticky   Ring = "sticky"
	RingOwner    Ring = "owner"
	RingExact    Ring = "exact"
	RingRelaxed  Ring = "relaxed"
	RingOverflow Ring = "overflow"
)

// Reasons a rep was not eligible, as Candidate.Excluded and the keys of
// Decision.Excluded.
const (
	ReasonOffline    = "offline"
	ReasonAway       = "away"
	ReasonOnCall     = "on_call"
	ReasonWrapUp     = "wrap_up"
	ReasonCapacity   = "no_capacity"
	ReasonChannel    = "channel"
	ReasonSkill      = "skill"
	ReasonLevel      = "skill_level"
	ReasonLanguage   = "language"
	ReasonTier       = "tier"
	ReasonDeclined   = "declined"
	ReasonOwnerWait  = "owner_wait"
	ReasonRingClosed = "ring_not_open"
)

// Decision is one thing the router decided, with why. It is JSON for the
// payload of the assignment event on the customer's timeline (see Event).
type Decision struct {
	Kind           Kind   `json:"kind"`
	ConversationID string `json:"conversation_id"`
	CustomerID     string `json:"customer_id,omitempty"`
	Queue          string `json:"queue"`
	Channel        string `json:"channel"`
	// Priority is the task's base priority (VIP, tier, boost).
	Priority int `json:"priority"`
	// Ring is the ring the rep was found in, or the ring the task waits in.
	Ring Ring `json:"ring,omitempty"`
	// RepID is the rep assigned, offered, or whose offer ended.
	RepID string `json:"rep_id,omitempty"`
	// Select is the policy that chose among eligible reps.
	Select Select `json:"select,omitempty"`
	// Why says in words why the winner won, or why nobody did.
	Why string `json:"why"`
	// WaitedMS is how long the customer had waited, in milliseconds.
	WaitedMS int64 `json:"waited_ms"`
	// Considered is the number of reps looked at; Excluded counts those not
	// eligible, by reason.
	Considered int            `json:"considered"`
	Excluded   map[string]int `json:"excluded,omitempty"`
	// Candidates lists reps considered: the winner first, then other
	// eligible reps in the order the policy ranks them, then excluded reps
	// nearest to eligible first (capped by Config.MaxCandidates).
	Candidates []Candidate `json:"candidates,omitempty"`
	// Overflow is set on KindOverflow.
	Overflow *Overflow `json:"overflow,omitempty"`
	// RepAway is set on KindOfferExpired when the miss set the rep away.
	RepAway bool      `json:"rep_away,omitempty"`
	At      time.Time `json:"at"`
}

// Candidate is one rep considered for a task.
type Candidate struct {
	RepID string `json:"rep_id"`
	// Ring is the innermost ring the rep belongs to for this task; empty
	// when the rep is in none.
	Ring Ring `json:"ring,omitempty"`
	// Excluded is why the rep could not take the task; empty if eligible.
	Excluded string `json:"excluded,omitempty"`
	// IdleMS is how long since the rep's work last changed.
	IdleMS    int64 `json:"idle_ms"`
	Active    int   `json:"active"`
	FreeUnits int   `json:"free_units"`
}

// Overflow is the overflow action taken.
type Overflow struct {
	Action Action `json:"action"`
	// FromChannel and ToChannel, ToQueue are set for a move.
	FromChannel string `json:"from_channel,omitempty"`
	ToChannel   string `json:"to_channel,omitempty"`
	ToQueue     string `json:"to_queue,omitempty"`
}

// Assigns reports whether the decision puts the task in a rep's hands
// (assigned, or accepted after an offer).
func (d Decision) Assigns() bool { return d.Kind == KindAssign || d.Kind == KindAccepted }

// Event is the timeline event recording d: an assignment event whose
// payload is d. The caller appends it with the conversation update.
func (d Decision) Event() sessions.Event {
	payload, err := json.Marshal(d)
	if err != nil {
		panic(err) // Decision holds only JSON-safe types
	}
	return sessions.Event{
		CustomerID:     d.CustomerID,
		ConversationID: d.ConversationID,
		Kind:           sessions.KindAssignment,
		Channel:        sessions.ChannelSystem,
		Author:         sessions.AuthorRouter,
		Payload:        payload,
		Time:           d.At,
	}
}
