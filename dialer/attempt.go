package dialer

import (
	"fmt"
	"strings"
	"time"
)

// OutcomeInterrupted concludes an attempt found dialing after a restart:
// the call may or may not have been placed, so it is never placed again;
// the customer's next try follows the retry rules (as no_answer).
const OutcomeInterrupted Outcome = "interrupted"

// OutcomeSkipped and OutcomeDenied conclude attempts never dialed: a rep
// skipped the preview card, or the contact policy denied the contact.
const (
	OutcomeSkipped Outcome = "skipped"
	OutcomeDenied  Outcome = "denied"
)

// AttemptState is where one try to call one customer is.
//
//	held → due (a trial's rest, on Approve)
//	due → preview (a rep holds the card) → dialing
//	due → dialing → ringing → answered → bridged → done
//	due → due later (deferred by the policy or the schedule)
//	due → done (denied, skipped)
//
// The move to dialing is stored before the trunk is asked, so an attempt
// is dialed at most once: one found dialing after a restart is concluded
// (OutcomeInterrupted), never dialed again.
type AttemptState string

const (
	AttemptHeld     AttemptState = "held"
	AttemptDue      AttemptState = "due"
	AttemptPreview  AttemptState = "preview"
	AttemptDialing  AttemptState = "dialing"
	AttemptRinging  AttemptState = "ringing"
	AttemptAnswered AttemptState = "answered"
	AttemptBridged  AttemptState = "bridged"
	AttemptDone     AttemptState = "done"
)

// live reports a state whose call may be in progress.
func (s AttemptState) live() bool {
	return s == AttemptDialing || s == AttemptRinging || s == AttemptAnswered || s == AttemptBridged
}

// Attempt is one try to call one customer. Its id is
// "<campaign>.<customer index>.<try>", so it names its campaign, and the
// contact policy's touch for it has the same id.
type Attempt struct {
	ID         string `json:"id"`
	Campaign   string `json:"campaign"`
	CustomerID string `json:"customer_id"`
	// Number is the customer's number, E.164. Never shown to a rep or
	// logged: see MaskNumber.
	Number string       `json:"number"`
	Try    int          `json:"try"`
	State  AttemptState `json:"state"`
	Due    time.Time    `json:"due"`
	// Trial marks the trial sample's attempts.
	Trial bool `json:"trial,omitempty"`
	// Stratum is the trial stratum the customer is in.
	Stratum string `json:"stratum,omitempty"`

	DialedAt   time.Time     `json:"dialed_at,omitzero"`
	AnsweredAt time.Time     `json:"answered_at,omitzero"`
	EndedAt    time.Time     `json:"ended_at,omitzero"`
	Ring       time.Duration `json:"ring,omitempty"`
	Talk       time.Duration `json:"talk,omitempty"`
	Outcome    Outcome       `json:"outcome,omitempty"`
	SIPCode    int           `json:"sip_code,omitempty"`
	Rep        string        `json:"rep,omitempty"`
	// Node is the gateway node that placed the call and follows it.
	Node string `json:"node,omitempty"`
	// ConversationID is the conversation its timeline events go to (the
	// customer's of topic "campaign:<id>" when it was dialed), so a rep's
	// mark after the call joins the call's events even if the
	// conversation was resolved meanwhile.
	ConversationID string `json:"conversation_id,omitempty"`
	// RepOutcome and RepNote are what the rep marked after the call.
	RepOutcome string `json:"rep_outcome,omitempty"`
	RepNote    string `json:"rep_note,omitempty"`
	// Policy is the contact policy's decision (allow, deny, defer) and
	// its reasons' codes.
	Policy  string   `json:"policy,omitempty"`
	Reasons []string `json:"reasons,omitempty"`

	Version uint64 `json:"version"`
}

// attemptID names the try of the customer at index i of a campaign.
func attemptID(campaign string, i, try int) string {
	return fmt.Sprintf("%s.%06d.%d", campaign, i, try)
}

// campaignOf returns the campaign an attempt id names.
func campaignOf(attemptID string) string {
	c, _, _ := strings.Cut(attemptID, ".")
	return c
}

// next returns the customer's next try, due at due: the same customer
// index, the try number one more.
func (a Attempt) next(due time.Time) Attempt {
	base := a.ID[:strings.LastIndexByte(a.ID, '.')]
	return Attempt{ID: fmt.Sprintf("%s.%d", base, a.Try+1), Campaign: a.Campaign, CustomerID: a.CustomerID,
		Number: a.Number, Try: a.Try + 1, State: AttemptDue, Due: due, Trial: a.Trial, Stratum: a.Stratum}
}

// MaskNumber shows a number the way a rep may see it: the country code
// and the last two digits ("+86 ••• •• 78").
func MaskNumber(e164 string) string {
	if len(e164) < 6 {
		return "•••"
	}
	cc := e164[:3]
	if strings.HasPrefix(e164, "+1") || strings.HasPrefix(e164, "+7") {
		cc = e164[:2]
	}
	return cc + " ••• " + e164[len(e164)-2:]
}
