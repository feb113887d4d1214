package pacing

import "time"

// Snapshot is what a pacer sees at a decision: the campaign's reps and
// calls right now.
type Snapshot struct {
	Now time.Time
	// Ready counts reps logged in to the campaign, free, and not held for
	// a call in progress.
	Ready int
	// Talking has, for each rep on a call, how long the call has lasted.
	Talking []time.Duration
	// Wrapping has, for each rep in after-call work, how long it has
	// lasted so far.
	Wrapping []time.Duration
	// Ringing has, for each call placed and not yet answered or ended,
	// how long since it was dialed.
	Ringing []time.Duration
	// Waiting counts answered customers waiting for a rep now.
	Waiting int
}

// ObservationKind says what a pacer is told.
type ObservationKind string

const (
	// ObserveAnswered: a person answered after Duration of ringing.
	ObserveAnswered ObservationKind = "answered"
	// ObserveMachine: a machine answered after Duration (not a person).
	ObserveMachine ObservationKind = "machine"
	// ObserveUnanswered: the call ended unanswered (no answer, busy,
	// failed) after Duration.
	ObserveUnanswered ObservationKind = "unanswered"
	// ObserveAbandoned: an answered call no rep took (it also was an
	// ObserveAnswered).
	ObserveAbandoned ObservationKind = "abandoned"
	// ObserveTalk: a call with a rep ended after Duration of talk.
	ObserveTalk ObservationKind = "talk"
	// ObserveWrap: a rep's after-call work ended after Duration.
	ObserveWrap ObservationKind = "wrap"
)

// Observation is one finished step the pacer learns from.
type Observation struct {
	Kind     ObservationKind
	At       time.Time
	Duration time.Duration
}

// Pacer decides how many calls to place.
type Pacer interface {
	// Observe learns from a finished step.
	Observe(o Observation)
	// Decide answers how many new calls to place now (zero or more).
	Decide(s Snapshot) int
}

// Progressive places one call per ready rep not already covered by a
// ringing call: a customer who answers always finds a rep, and a rep
// waits the whole ring of every call.
type Progressive struct{}

func (Progressive) Observe(Observation) {}

func (Progressive) Decide(s Snapshot) int {
	return max(s.Ready-len(s.Ringing)-s.Waiting, 0)
}
