package webhooks

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"slices"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// Errors of the outbox. Each is also the sessions sentinel of the same
// meaning to errors.Is, so internal/api's catalogue places it (404, 409,
// 503) when a route returns it.
var (
	ErrNotFound = &outboxError{"webhooks: not found", sessions.ErrNotFound}
	ErrConflict = &outboxError{"webhooks: state does not allow it", sessions.ErrConflict}
	ErrClosed   = &outboxError{"webhooks: outbox closed", sessions.ErrClosed}
)

// Outbox keeps webhook endpoints, every delivery owed to them and the
// dispatcher's place in each customer's timeline, durably: a delivery that
// Enqueue returned for is delivered (or dead-lettered) even if the process
// is killed. Implementations: MemoryOutbox (tests), BoltOutbox (its own
// bbolt file, fsynced on every write). One conformance suite runs against
// both (outbox_test.go). Safe for concurrent use.
type Outbox interface {
	// PutEndpoint creates or replaces an endpoint.
	PutEndpoint(ctx context.Context, ep Endpoint) error
	Endpoint(ctx context.Context, id string) (Endpoint, error)
	// Endpoints lists every endpoint, by id.
	Endpoints(ctx context.Context) ([]Endpoint, error)
	// DeleteEndpoint removes the endpoint with its deliveries and log.
	DeleteEndpoint(ctx context.Context, id string) error
	// MarkEndpoint records an attempt's outcome on the endpoint's health,
	// atomically: a success clears FailingSince; a failure sets it if
	// unset, and disables the endpoint when it has been failing for
	// disableAfter, dead-lettering its pending deliveries. disabled says
	// whether this call disabled it.
	MarkEndpoint(ctx context.Context, id string, ok bool, now time.Time, disableAfter time.Duration) (ep Endpoint, disabled bool, err error)

	// Enqueue stores the deliveries whose ids are new (a known id is
	// skipped: enqueueing is idempotent) and moves the customers' cursors,
	// in one durable write. checkpoint is the time of the newest event the
	// write covers; zero leaves it.
	Enqueue(ctx context.Context, ds []Delivery, cursors map[string]uint64, checkpoint time.Time) (added int, err error)
	// Cursor is the last timeline sequence of the customer the dispatcher
	// has handled; known is false for a customer never seen.
	Cursor(ctx context.Context, customerID string) (seq uint64, known bool, err error)
	// Touch makes a customer known (cursor 0) if it is not, so recovery
	// scans its timeline.
	Touch(ctx context.Context, customerID string) error
	// EachCursor calls fn with every known customer.
	EachCursor(ctx context.Context, fn func(customerID string, seq uint64) error) error
	// Checkpoint is the last checkpoint Enqueue recorded.
	Checkpoint(ctx context.Context) (time.Time, error)

	// Due lists pending deliveries whose NextAttempt is at or before now,
	// earliest first.
	Due(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// Record stores a delivery after an attempt (its new state, counters
	// and next attempt) and appends the attempt to its endpoint's log.
	Record(ctx context.Context, d Delivery, a Attempt) error
	Delivery(ctx context.Context, id string) (Delivery, error)
	// Deliveries lists an endpoint's deliveries, newest first, optionally
	// of one state.
	Deliveries(ctx context.Context, q DeliveryQuery) (page []Delivery, next string, err error)
	// Attempts lists an endpoint's delivery log, newest first.
	Attempts(ctx context.Context, endpointID, cursor string, limit int) (page []Attempt, next string, err error)
	// Replay puts a dead delivery back to pending, due now, with a fresh
	// retry window. ErrConflict when it is not dead.
	Replay(ctx context.Context, id string, now time.Time) (Delivery, error)
	// Prune deletes delivered deliveries older than deliveredBefore, dead
	// ones older than deadBefore, and log entries older than
	// deliveredBefore.
	Prune(ctx context.Context, deliveredBefore, deadBefore time.Time) (int, error)
	Close() error
}

// Endpoint is one receiver of webhooks.
type Endpoint struct {
	// ID is the endpoint's name from the configuration, or "ep_..." for
	// endpoints registered through the API.
	ID  string `json:"id"`
	URL string `json:"url"`
	// Secret signs every delivery ("whsec_<base64>"). Shown once, when an
	// endpoint is created through the API.
	Secret string `json:"secret,omitempty"`
	// EventTypes are the event kinds delivered (message_in, integrator,
	// ...); empty means every kind.
	EventTypes  []string `json:"event_types,omitempty"`
	Description string   `json:"description,omitempty"`
	// MaxConcurrency caps deliveries in flight to the endpoint; zero means
	// Config.Concurrency.
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// Source is "config" or "api"; configured endpoints are changed in the
	// file, not through the API.
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	// Disabled endpoints get no attempts; what they are owed meanwhile is
	// dead-lettered, to be replayed once they work again.
	Disabled       bool      `json:"disabled"`
	DisabledAt     time.Time `json:"disabled_at,omitzero"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	// FailingSince is the first failure since the last success; zero while
	// healthy.
	FailingSince time.Time `json:"failing_since,omitzero"`
}

// Wants reports whether the endpoint takes ev: its kind passes the filter
// and it happened after the endpoint was created (a new endpoint is not
// sent history).
func (ep Endpoint) Wants(ev sessions.Event) bool {
	if ev.Time.Before(ep.CreatedAt) {
		return false
	}
	return len(ep.EventTypes) == 0 || slices.Contains(ep.EventTypes, string(ev.Kind)) || slices.Contains(ep.EventTypes, "*")
}

// State is where a delivery stands.
type State string

const (
	StatePending   State = "pending"
	StateDelivered State = "delivered"
	StateDead      State = "dead"
)

// Delivery is one event owed to one endpoint.
type Delivery struct {
	// ID is the webhook-id: derived from the endpoint and the event, so the
	// same event to the same endpoint always has the same id (through
	// retries, replays, restarts and several dispatching nodes) and
	// receivers deduplicate by it.
	ID         string          `json:"id"`
	EndpointID string          `json:"endpoint_id"`
	EventID    string          `json:"event_id"`
	CustomerID string          `json:"customer_id"`
	Type       string          `json:"type"`
	Payload    json.RawMessage `json:"payload"`
	State      State           `json:"state"`
	Attempts   int             `json:"attempts"`
	CreatedAt  time.Time       `json:"created_at"`
	// WindowStart starts the retry window (Config.MaxAge): creation, or
	// the last replay.
	WindowStart   time.Time `json:"window_start"`
	NextAttempt   time.Time `json:"next_attempt,omitzero"`
	LastAttemptAt time.Time `json:"last_attempt_at,omitzero"`
	LastStatus    int       `json:"last_status,omitempty"`
	LastError     string    `json:"last_error,omitempty"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`
	DeadAt        time.Time `json:"dead_at,omitzero"`
	DeadReason    string    `json:"dead_reason,omitempty"`
}

// Attempt is one entry of an endpoint's delivery log.
type Attempt struct {
	DeliveryID string    `json:"delivery_id"`
	EndpointID string    `json:"endpoint_id"`
	EventID    string    `json:"event_id"`
	N          int       `json:"attempt"`
	At         time.Time `json:"at"`
	DurationMS int64     `json:"duration_ms"`
	// Status is the receiver's HTTP status; 0 when it gave none.
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
	OK     bool   `json:"ok"`
}

// DeliveryQuery lists deliveries.
type DeliveryQuery struct {
	EndpointID string
	// State filters; empty means every state.
	State  State
	Cursor string
	// Limit caps the page; zero means 50, at most 500.
	Limit int
}

// DeliveryID is the webhook-id of ev for an endpoint: "msg_" and 26
// base32 characters of SHA-256(endpoint, event).
func DeliveryID(endpointID, eventID string) string {
	sum := sha256.Sum256([]byte(endpointID + "\x00" + eventID))
	return "msg_" + base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16])
}

// Body is what an endpoint receives: the Standard Webhooks envelope with
// the timeline event as data.
type Body struct {
	// Type is the event kind: message_in, message_out, note, assignment,
	// transfer, status_change, call, identity_linked, customers_merged,
	// integrator, delivery_status.
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      sessions.Event `json:"data"`
}

// newDelivery is the pending (or, for a disabled endpoint, dead) delivery
// of ev to ep.
func newDelivery(ep Endpoint, ev sessions.Event, now time.Time) (Delivery, error) {
	b, err := json.Marshal(Body{Type: string(ev.Kind), Timestamp: ev.Time, Data: ev})
	if err != nil {
		return Delivery{}, err
	}
	d := Delivery{ID: DeliveryID(ep.ID, ev.ID), EndpointID: ep.ID, EventID: ev.ID, CustomerID: ev.CustomerID,
		Type: string(ev.Kind), Payload: b, State: StatePending, CreatedAt: now, WindowStart: now, NextAttempt: now}
	if ep.Disabled {
		d.State, d.NextAttempt, d.DeadAt, d.DeadReason = StateDead, time.Time{}, now, "endpoint disabled"
	}
	return d, nil
}

func pageLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 500:
		return 500
	}
	return n
}
