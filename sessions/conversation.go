package sessions

import (
	"fmt"
	"strings"
	"time"
)

// ConversationStatus is where a piece of work stands.
type ConversationStatus string

const (
	// StatusOpen needs (or has) a human.
	StatusOpen ConversationStatus = "open"
	// StatusPending waits on the customer or a third party; it still counts
	// as open work for the topic and suppresses duplicate outbound contact.
	StatusPending ConversationStatus = "pending"
	// StatusResolved is done; a new contact on the topic opens a new one.
	StatusResolved ConversationStatus = "resolved"
)

// Active reports whether the status counts as open work.
func (s ConversationStatus) Active() bool { return s == StatusOpen || s == StatusPending }

// Valid reports whether s is a known status.
func (s ConversationStatus) Valid() bool {
	return s == StatusOpen || s == StatusPending || s == StatusResolved
}

// Conversation is one piece of work with one owner, whatever channels the
// customer uses while it is open.
type Conversation struct {
	ID         string             `json:"id"`
	CustomerID string             `json:"customer_id"`
	Status     ConversationStatus `json:"status"`
	// Channel is the channel the conversation started on ("webchat",
	// "wechat", "sms", "voice", "api", ...); replies go to the channel the
	// customer last used, which the timeline tells.
	Channel string `json:"channel"`
	// Assignee is the rep id working on it; empty means unassigned.
	Assignee string `json:"assignee,omitempty"`
	// Topic groups contacts about one thing (an order number, a ticket);
	// empty is the customer's general conversation.
	Topic      string    `json:"topic,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// LastSeq is the timeline sequence of the last event in it.
	LastSeq uint64 `json:"last_seq"`
}

// ConversationUpdate changes a conversation and records why as one event,
// atomically. Nil fields are left as they are.
type ConversationUpdate struct {
	Status   *ConversationStatus
	Assignee *string
	// Event describes the change for the timeline: Kind (assignment,
	// transfer, status_change), Author and Payload. The store fills
	// customer, conversation, sequence, id and time. A zero Kind is derived:
	// status_change when Status is set, else assignment.
	Event Event
}

// Validate rejects updates that change nothing or set unknown values.
func (u ConversationUpdate) Validate() error {
	if u.Status == nil && u.Assignee == nil {
		return fmt.Errorf("%w: update changes nothing", ErrInvalid)
	}
	if u.Status != nil && !u.Status.Valid() {
		return fmt.Errorf("%w: status %q", ErrInvalid, *u.Status)
	}
	return nil
}

// Apply writes u onto c and returns the event to record, with the kind
// derived when the caller left it empty. It does not check the topic rule
// (one active conversation per topic); stores do, since only they can see
// the other conversations atomically.
func (u ConversationUpdate) Apply(c *Conversation, now time.Time) Event {
	ev := u.Event
	if ev.Kind == "" {
		if u.Status != nil {
			ev.Kind = KindStatusChange
		} else {
			ev.Kind = KindAssignment
		}
	}
	if u.Status != nil && *u.Status != c.Status {
		c.Status = *u.Status
		if c.Status == StatusResolved {
			c.ResolvedAt = now
		} else {
			c.ResolvedAt = time.Time{}
		}
	}
	if u.Assignee != nil {
		c.Assignee = *u.Assignee
	}
	c.UpdatedAt = now
	ev.CustomerID = c.CustomerID
	ev.ConversationID = c.ID
	if ev.Channel == "" {
		ev.Channel = ChannelSystem
	}
	if ev.Payload == nil {
		ev.Payload = mustJSON(ConversationChange{Status: c.Status, Assignee: c.Assignee})
	}
	return ev
}

// ConversationChange is the default payload of a status or assignment event.
type ConversationChange struct {
	Status   ConversationStatus `json:"status"`
	Assignee string             `json:"assignee,omitempty"`
	// SnoozeUntil, on a change to pending, is when the conversation opens
	// again by itself (the gateway's snooze timer); zero means it waits
	// for a person or the customer.
	SnoozeUntil time.Time `json:"snooze_until,omitzero"`
	// Reason says why the system changed the status ("snooze_ended",
	// "customer_replied"); empty for a person's change.
	Reason string `json:"reason,omitempty"`
}

// ConversationQuery lists conversations. Empty fields match everything.
type ConversationQuery struct {
	Status     ConversationStatus
	Assignee   string
	Unassigned bool
	Channel    string
	CustomerID string
	// Cursor is the opaque value returned with the previous page.
	Cursor string
	// Limit caps the page; zero means 50, and no page is larger than 500.
	Limit int
}

// Matches reports whether c passes the query's filters (not the cursor).
func (q ConversationQuery) Matches(c Conversation) bool {
	return (q.Status == "" || c.Status == q.Status) &&
		(q.Assignee == "" || c.Assignee == q.Assignee) &&
		(!q.Unassigned || c.Assignee == "") &&
		(q.Channel == "" || c.Channel == q.Channel) &&
		(q.CustomerID == "" || c.CustomerID == q.CustomerID)
}

// PageLimit returns the effective page size.
func PageLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 500:
		return 500
	}
	return n
}

// MaxTopic is the longest topic key accepted.
const MaxTopic = 200

// ValidateTopic checks the arguments of OpenConversation.
func ValidateTopic(topic, channel string) error {
	switch {
	case channel == "":
		return fmt.Errorf("%w: conversation needs a channel", ErrInvalid)
	case len(topic) > MaxTopic:
		return fmt.Errorf("%w: topic longer than %d bytes", ErrInvalid, MaxTopic)
	case strings.ContainsAny(topic, "|\n\r"):
		return fmt.Errorf("%w: topic has a control character", ErrInvalid)
	}
	return nil
}

// validateIntake checks the arguments of Intake.
func validateIntake(topic string, ev Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	if ev.ConversationID != "" {
		return fmt.Errorf("%w: intake chooses the conversation, the event names %s", ErrInvalid, ev.ConversationID)
	}
	return ValidateTopic(topic, ev.Channel)
}

// OpenedEvent is the status_change event that records a new conversation.
func OpenedEvent(c Conversation) Event {
	return Event{CustomerID: c.CustomerID, ConversationID: c.ID, Kind: KindStatusChange,
		Channel: c.Channel, Author: ChannelSystem, Payload: mustJSON(ConversationChange{Status: StatusOpen})}
}
