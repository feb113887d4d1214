package dialer

import (
	"context"
	"errors"
	"time"
)

// Outcome is how a call attempt ended, as the timeline, the retry rules
// and the contact ledger name it.
type Outcome string

const (
	// OutcomeAnswered: a person answered and was bridged to a rep.
	OutcomeAnswered Outcome = "answered"
	// OutcomeBusy: 486 Busy Here or 600 Busy Everywhere.
	OutcomeBusy Outcome = "busy"
	// OutcomeDeclined: 603 Decline, the customer refused the call.
	OutcomeDeclined Outcome = "declined"
	// OutcomeNoAnswer: nobody answered within the ring timeout (the
	// trunk cancelled the call: 487).
	OutcomeNoAnswer Outcome = "no_answer"
	// OutcomeUnavailable: 480 Temporarily Unavailable.
	OutcomeUnavailable Outcome = "unavailable"
	// OutcomeMachine: an answering machine answered (detected by the
	// trunk).
	OutcomeMachine Outcome = "machine"
	// OutcomeAbandoned: a person answered and no rep took the call in
	// time; it is the contact policy's OutcomeAbandoned.
	OutcomeAbandoned Outcome = "abandoned"
	// OutcomeFailed: every other failure; the SIP code is kept beside it.
	OutcomeFailed Outcome = "failed"
)

// Trunk places calls to customers. Implementations: the SIP trunk and
// SimTrunk.
type Trunk interface {
	// Dial places one call and returns at once; the call's progress
	// arrives on Call.Events. An error means no call was placed.
	Dial(ctx context.Context, d Dial) (Call, error)
}

// Dial is one call to place.
type Dial struct {
	// AttemptID is the dialer's attempt id. A trunk names its call after
	// it (the SIP Call-ID), so a call is traceable to its attempt.
	AttemptID string
	// To is the customer's number, E.164.
	To string
	// CallerID is the number presented to the customer, E.164.
	CallerID string
	// RingTimeout is how long the call may ring before the trunk cancels
	// it (OutcomeNoAnswer).
	RingTimeout time.Duration
}

// ProgressKind is a step of a call.
type ProgressKind string

const (
	ProgressRinging  ProgressKind = "ringing"
	ProgressAnswered ProgressKind = "answered"
	ProgressEnded    ProgressKind = "ended"
)

// Progress is one step of a call, in order: ringing (optional), answered
// (optional), ended (always last; the channel closes after it).
type Progress struct {
	Kind ProgressKind
	At   time.Time
	// Machine is set on an answer the trunk detected as a machine.
	Machine bool
	// With ProgressEnded: how the call ended, the final SIP code when
	// there was one, and who hung up ("customer", "rep", "gateway") for
	// an answered call.
	Outcome  Outcome
	SIPCode  int
	HungUpBy string
}

// RepLeg is the rep a call is bridged to.
type RepLeg struct {
	ID string
	// URI is the rep's sip_uri.
	URI string
}

// AbandonAction is what an answered customer gets when no rep is free:
// a recorded message (a WAV file the gateway plays) or a destination the
// call is sent to. Neither set means the call is ended at once.
type AbandonAction struct {
	Message     string `yaml:"message" json:"message,omitempty"`
	Destination string `yaml:"destination" json:"destination,omitempty"`
}

// Call is a call in progress.
type Call interface {
	// Events delivers the call's progress; closed after ProgressEnded.
	Events() <-chan Progress
	// Bridge joins the answered customer to rep, returning when the rep's
	// leg is up or failed. The call continues until either side hangs
	// up (ProgressEnded says who).
	Bridge(ctx context.Context, rep RepLeg) error
	// Abandon gives the answered customer the campaign's AbandonAction,
	// then ends the call (OutcomeAbandoned).
	Abandon(ctx context.Context, a AbandonAction) error
	// Hangup ends the call from the gateway's side, whatever its state.
	Hangup(ctx context.Context) error
}

// ErrTrunkBusy is returned by Dial when the trunk is at its limit of
// calls per second or concurrent calls: no call was placed; try later.
var ErrTrunkBusy = errors.New("dialer: trunk at its call limit")
