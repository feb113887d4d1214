package router

import (
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// Task is a conversation that needs a human, as the caller hands it to the
// router. The router copies it; changing it afterwards has no effect.
type Task struct {
	// ConversationID identifies the task; one conversation is at most one
	// task at a time. Required.
	ConversationID string `json:"conversation_id"`
	CustomerID     string `json:"customer_id,omitempty"`
	// Channel the customer is on now (sessions.ChannelVoice, ...); required.
	// It sets the cost and, when Queue is empty, the queue.
	Channel string `json:"channel"`
	// Queue names the queue; empty means the queue for Channel.
	Queue string `json:"queue,omitempty"`
	// VIP and Tier come from the customer and give the base priority.
	VIP  bool          `json:"vip,omitempty"`
	Tier sessions.Tier `json:"tier,omitempty"`
	// Boost is added to the base priority (an integrator's urgency flag, a
	// repeat contact); zero means none.
	Boost int `json:"boost,omitempty"`
	// Skills required, skill to minimum level (0 means 1), on top of the
	// queue's; empty means none.
	Skills map[string]int `json:"skills,omitempty"`
	// Language the customer needs; empty means any.
	Language string `json:"language,omitempty"`
	// Owner is the customer's dedicated advisor; empty means none.
	Owner string `json:"owner,omitempty"`
	// Assignee is the rep the conversation is assigned to now, as the store
	// says; the task goes to that rep first (sticky). Empty means none.
	Assignee string `json:"assignee,omitempty"`
	// Reachable lists the channels the customer can receive on now, for an
	// overflow move (WeChat only within 48 hours of their last message, SMS
	// only with a phone number); empty means any.
	Reachable []string `json:"reachable,omitempty"`
	// EnqueuedAt is when the customer started waiting; zero means now. It
	// orders the queue, so a task handed back after a restart keeps its
	// place.
	EnqueuedAt time.Time `json:"enqueued_at,omitzero"`
}

// TaskFor builds the task for a conversation of customer c. The caller adds
// skills and language from the channel, the site, keywords or integrator
// attributes.
func TaskFor(c sessions.Customer, conv sessions.Conversation, channel string) Task {
	if channel == "" {
		channel = conv.Channel
	}
	return Task{
		ConversationID: conv.ID,
		CustomerID:     c.ID,
		Channel:        channel,
		VIP:            c.VIP,
		Tier:           c.Tier,
		Owner:          c.Owner,
		Assignee:       conv.Assignee,
	}
}
