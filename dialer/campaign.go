package dialer

import (
	"errors"
	"slices"
	"time"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/sessions"
)

// Errors the Service returns; each is wrapped with the id worked on and,
// for ErrInvalid, with every problem found.
var (
	ErrInvalid  = errors.New("dialer: invalid")
	ErrNotFound = errors.New("dialer: not found")
	// ErrState: the campaign or attempt is not in a state that allows the
	// action (approving a campaign that is not waiting for it, dialing an
	// attempt another rep holds).
	ErrState = errors.New("dialer: wrong state for this")
	// ErrConflict: a store's compare-and-set lost to another writer.
	ErrConflict = errors.New("dialer: changed by another writer")
)

// Spec is a campaign as its author writes it (YAML or JSON; unknown keys
// are refused). Validate reports every problem at once.
type Spec struct {
	// ID names the campaign: 1-64 of a-z, 0-9, '-' and '_'. Required.
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name,omitempty"`
	// Audience is who is called. Required.
	Audience Audience `yaml:"audience" json:"audience"`
	// Mode is preview, progressive, predictive; ratio:X (a fixed number
	// of lines per ready rep) and vici are there for comparison. Empty
	// means progressive.
	Mode string `yaml:"mode" json:"mode,omitempty"`
	// Purpose is the contact policy's purpose (sales, collections...);
	// required, and it must be configured.
	Purpose string `yaml:"purpose" json:"purpose"`
	// Schedule are the windows calls may be placed in; empty means any
	// time (the contact policy's own hours still apply).
	Schedule []Window `yaml:"schedule" json:"schedule,omitempty"`
	// RingTimeout is how long a call may ring; zero means 25s, under 15s
	// is refused.
	RingTimeout contact.Duration `yaml:"ring_timeout" json:"ring_timeout,omitempty"`
	// Attempts is the most tries per customer; zero means 3.
	Attempts int `yaml:"attempts" json:"attempts,omitempty"`
	// Retry says when an outcome is tried again; unset outcomes get
	// DefaultRetry's.
	Retry Retry `yaml:"retry" json:"retry,omitzero"`
	// AbandonTarget is the most abandoned calls per answered call, over
	// the campaign and over each rolling 30 days; zero means 0.03, above
	// 0.03 is refused.
	AbandonTarget float64 `yaml:"abandon_target" json:"abandon_target,omitempty"`
	// Reps lists rep ids that take the campaign's calls; Skills adds every
	// rep with these skills (skill to minimum level). One is required.
	Reps   []string       `yaml:"reps" json:"reps,omitempty"`
	Skills map[string]int `yaml:"skills" json:"skills,omitempty"`
	// CallerID is the number customers see, E.164. Required.
	CallerID string `yaml:"caller_id" json:"caller_id"`
	// Abandon is what an answered customer no rep takes gets.
	Abandon AbandonAction `yaml:"abandon" json:"abandon,omitzero"`
	// Trial, when set, dials a stratified sample first and waits for
	// Approve before the rest.
	Trial *Trial `yaml:"trial" json:"trial,omitempty"`
}

// Audience is who a campaign calls: listed customers, a segment, or
// phone numbers from a CSV; the union of those given.
type Audience struct {
	Customers []string `yaml:"customers" json:"customers,omitempty"`
	Segment   *Segment `yaml:"segment" json:"segment,omitempty"`
	// CSV is the text of a CSV file whose first column holds phone
	// numbers (a header line is allowed; other columns: name). Each
	// number resolves to the customer with that phone identity, or
	// creates one. Bad lines are reported by line number.
	CSV string `yaml:"csv" json:"csv,omitempty"`
	// Region reads CSV numbers written without a country code (ISO 3166,
	// "CN"); empty means every number must start with +.
	Region string `yaml:"region" json:"region,omitempty"`
}

// Segment selects customers by profile; set fields are ANDed.
type Segment struct {
	Tiers []sessions.Tier `yaml:"tiers" json:"tiers,omitempty"`
	// Tags: the customer has every one.
	Tags  []string `yaml:"tags" json:"tags,omitempty"`
	VIP   *bool    `yaml:"vip" json:"vip,omitempty"`
	Owner string   `yaml:"owner" json:"owner,omitempty"`
}

// Matches reports whether the segment selects c: what an Options.Segment
// implementation filters with.
func (s Segment) Matches(c sessions.Customer) bool {
	if c.MergedInto != "" || len(s.Tiers) > 0 && !slices.Contains(s.Tiers, c.Tier) ||
		s.VIP != nil && *s.VIP != c.VIP || s.Owner != "" && s.Owner != c.Owner {
		return false
	}
	for _, t := range s.Tags {
		if !slices.Contains(c.Tags, t) {
			return false
		}
	}
	return true
}

// Window is a time the campaign dials: days of the week (mon..sun; empty
// means every day) from From to To (HH:MM, local to Zone).
type Window struct {
	Days []string `yaml:"days" json:"days,omitempty"`
	From string   `yaml:"from" json:"from"`
	To   string   `yaml:"to" json:"to"`
	// Zone is an IANA zone; empty means UTC.
	Zone string `yaml:"zone" json:"zone,omitempty"`
}

// Retry says, per outcome, how long until the customer is tried again:
// a duration ("30m", "1d") or "never". Empty means DefaultRetry's.
type Retry struct {
	Busy        string `yaml:"busy" json:"busy,omitempty"`
	NoAnswer    string `yaml:"no_answer" json:"no_answer,omitempty"`
	Failed      string `yaml:"failed" json:"failed,omitempty"`
	Machine     string `yaml:"machine" json:"machine,omitempty"`
	Unavailable string `yaml:"unavailable" json:"unavailable,omitempty"`
}

// DefaultRetry is the retry rule of an outcome a Spec leaves unset.
// An attempt interrupted by a crash is retried like no_answer: whether
// the phone rang is unknown. Answered, declined and abandoned calls are
// never retried (an abandoned customer is locked out by the policy).
var DefaultRetry = Retry{Busy: "15m", NoAnswer: "2h", Failed: "never", Machine: "4h", Unavailable: "1h"}

// Trial is the sample run before the rest of a campaign.
type Trial struct {
	// Sample is the fraction of the audience dialed first, 0.03-0.05.
	Sample float64 `yaml:"sample" json:"sample"`
}

// State is where a campaign is in its life.
type State string

const (
	StateCreated   State = "created"
	StateTrial     State = "trial"      // dialing the trial sample
	StateTrialDone State = "trial_done" // waiting for Approve or Reject
	StateRunning   State = "running"
	StatePaused    State = "paused"
	StateStopped   State = "stopped"  // by Stop; final
	StateRejected  State = "rejected" // trial rejected; final
	StateDone      State = "done"     // every attempt concluded; final
)

// Campaign is a validated Spec and its state.
type Campaign struct {
	// Spec is as created, with its defaults filled, less the audience's
	// customer list and CSV text: the attempts hold those.
	Spec  Spec  `json:"spec"`
	State State `json:"state"`
	// PausedIn is the state Resume returns to.
	PausedIn State `json:"paused_in,omitempty"`
	// RejectReason is Reject's reason.
	RejectReason string `json:"reject_reason,omitempty"`
	// Audience counts customers; TrialSize those in the trial sample.
	Audience  int `json:"audience"`
	TrialSize int `json:"trial_size,omitempty"`
	// NoPhone counts listed customers left out for having no phone
	// number; NewCustomers those a CSV's numbers created.
	NoPhone      int       `json:"no_phone,omitempty"`
	NewCustomers int       `json:"new_customers,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	// Version is the store's compare-and-set counter.
	Version uint64 `json:"version"`
}

// ID is the campaign's id.
func (c Campaign) ID() string { return c.Spec.ID }

// Final reports a state nothing follows.
func (s State) Final() bool { return s == StateStopped || s == StateRejected || s == StateDone }

// dialing reports a state whose due attempts are dialed.
func (s State) dialing() bool { return s == StateTrial || s == StateRunning }
