package channels

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Policy decides whether a message may go to a customer now: consent and
// do-not-contact lists, quiet hours in the customer's time zone, frequency
// caps across channels, suppression while the customer has open work. The
// Sender asks it once per message, after choosing the channel and after
// the channel's adapter said it can send (CanSend), before recording
// anything. The contact package implements it (contact.Policy); tests
// pass AllowAll.
type Policy interface {
	// Check returns the verdict for one contact. An error means the policy
	// could not decide (its ledger is unreachable); the Sender then sends
	// nothing and records nothing, and returns the error, which is not a
	// refusal. Check must be safe for concurrent use.
	Check(ctx context.Context, c Contact) (Verdict, error)
}

// Contact is what the Policy is asked about: one message to one customer.
type Contact struct {
	CustomerID string
	// ConversationID is the conversation the message goes into; empty for
	// a message on the timeline outside any conversation.
	ConversationID string
	// Channel is the channel the Sender chose (ReplyChannel).
	Channel string
	// Purpose is why the message is sent (PurposeReply, PurposeNotice,
	// ...): a rep's reply to a customer who just wrote is judged
	// differently from a notice the customer did not ask for.
	Purpose string
	// Author is who sends it: "rep:alice", "integrator:crm".
	Author string
	// ID is the message's own id (its client id), the same on every retry
	// of it, so a policy that counts contacts counts a retry once.
	ID string
	// Topic is the topic of the conversation the message goes into (an
	// order, a ticket); empty for none, or outside a conversation.
	Topic string
}

// Purposes the gateway's callers use. Any other lowercase word is
// accepted and passed to the Policy.
const (
	PurposeReply  = "reply"  // a rep's answer in a conversation
	PurposeNotice = "notice" // a proactive message from an integrator
)

// Decision is a Verdict's answer.
type Decision string

const (
	Allow Decision = "allow"
	// Deny: not now and not later without a change (do-not-contact, no
	// consent, a duplicate of what the customer was already told).
	Deny Decision = "deny"
	// Defer: not now, but from Verdict.Until (quiet hours, a frequency cap
	// that resets).
	Defer Decision = "defer"
)

// Verdict is a Policy's answer for one Contact.
type Verdict struct {
	Decision Decision
	// Reasons say why a message was denied or deferred, as
	// machine-readable words ("quiet_hours", "do_not_contact",
	// "frequency_cap"); the HTTP API lists them to the caller.
	Reasons []string
	// Until is when a deferred message may be sent; required with Defer,
	// ignored otherwise.
	Until time.Time
	// HandoffTo, on a refusal, is the conversation (the customer's open
	// work) whose rep the contact is handed to instead: the caller records
	// the refusal there, as a task for that rep. Empty means no handoff.
	HandoffTo string
}

// validate catches a policy's own mistakes, which must not pass as an
// allow or a refusal.
func (v Verdict) validate() error {
	switch v.Decision {
	case Allow, Deny:
		return nil
	case Defer:
		if v.Until.IsZero() {
			return fmt.Errorf("channels: policy deferred without a time")
		}
		return nil
	}
	return fmt.Errorf("channels: policy answered %q, not allow, deny or defer", v.Decision)
}

// AllowAll is the Policy that allows every message, for tests and
// programs without a contact policy.
type AllowAll struct{}

// Check allows c.
func (AllowAll) Check(context.Context, Contact) (Verdict, error) {
	return Verdict{Decision: Allow}, nil
}

// RefusedError is a message the Policy denied or deferred. Nothing was
// recorded or sent.
type RefusedError struct {
	// Channel is the channel the message would have gone out on.
	Channel string
	Verdict Verdict
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	b.WriteString("channels: the contact policy ")
	if e.Verdict.Decision == Defer {
		fmt.Fprintf(&b, "deferred the message until %s", e.Verdict.Until.UTC().Format(time.RFC3339))
	} else {
		b.WriteString("refused the message")
	}
	if len(e.Verdict.Reasons) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(e.Verdict.Reasons, ", "))
	}
	return b.String()
}
