package dialer

import (
	"context"
	"strings"
	"time"
)

// Store keeps campaigns and attempts. Implementations: MemoryStore
// (tests), BoltStore (single node), ValkeyStore (cluster); one
// conformance suite holds them to the same behaviour.
//
// Writes are compare-and-set on Version: a write whose Version is not
// the stored one fails with ErrConflict and changes nothing, and a
// stored record's Version is one more than what was written. This is
// what makes a dial exactly-once: of two nodes moving one attempt to
// dialing, one wins.
type Store interface {
	// CreateCampaign stores c (Version 0) unless its id is taken
	// (ErrConflict).
	CreateCampaign(ctx context.Context, c Campaign) (Campaign, error)
	// SaveCampaign replaces c if its Version is the stored one.
	SaveCampaign(ctx context.Context, c Campaign) (Campaign, error)
	// Campaign returns ErrNotFound for an unknown id.
	Campaign(ctx context.Context, id string) (Campaign, error)
	// Campaigns lists every campaign, by id.
	Campaigns(ctx context.Context) ([]Campaign, error)

	// SaveAttempts writes attempts of one campaign atomically: each
	// with Version 0 must not exist yet, each other must have its stored
	// Version; otherwise nothing is written (ErrConflict).
	SaveAttempts(ctx context.Context, as ...Attempt) ([]Attempt, error)
	// Attempt returns ErrNotFound for an unknown id.
	Attempt(ctx context.Context, id string) (Attempt, error)
	// Attempts lists a campaign's attempts, by id.
	Attempts(ctx context.Context, campaign string) ([]Attempt, error)
	// Due lists up to limit of a campaign's attempts in state due with
	// Due at or before at, earliest first (ties by id).
	Due(ctx context.Context, campaign string, at time.Time, limit int) ([]Attempt, error)
	// Counts returns the campaign's Counts (empty for no attempts).
	Counts(ctx context.Context, campaign string) (Counts, error)

	// Lease takes or renews the campaign's lease for holder for ttl: true
	// when holder has it now. Another holder gets it only after it
	// lapses.
	Lease(ctx context.Context, campaign, holder string, ttl time.Duration) (bool, error)
	// Unlease gives up holder's lease (no-op when not held).
	Unlease(ctx context.Context, campaign, holder string) error

	Close() error
}

// maxBatch bounds one SaveAttempts when a campaign's attempts are
// created, so a transaction (or a Lua script) stays short.
const maxBatch = 500

// Counts are a campaign's attempts counted by what Progress shows, kept
// by the store in the same write as the attempts, so reading them costs
// the same at 100 attempts as at 100,000. Keys:
//
//	state:<state>           attempts in each state
//	trial_state:<state>     the same, of the trial sample's attempts
//	outcome:<outcome>       concluded attempts by outcome
//	dialed                  attempts whose call was placed
//	answered:<YYYY-MM-DD>   answered by a person (abandoned included), by UTC day
//	abandoned:<YYYY-MM-DD>  abandoned, by UTC day of the answer
type Counts map[string]int

// countKeys are the keys one attempt adds to its campaign's Counts.
func countKeys(a Attempt) []string {
	keys := []string{"state:" + string(a.State)}
	if a.Trial {
		keys = append(keys, "trial_state:"+string(a.State))
	}
	if a.Outcome != "" {
		keys = append(keys, "outcome:"+string(a.Outcome))
	}
	if !a.DialedAt.IsZero() {
		keys = append(keys, "dialed")
	}
	if a.Outcome == OutcomeAnswered || a.Outcome == OutcomeAbandoned {
		day := a.AnsweredAt.UTC().Format(time.DateOnly)
		keys = append(keys, "answered:"+day)
		if a.Outcome == OutcomeAbandoned {
			keys = append(keys, "abandoned:"+day)
		}
	}
	return keys
}

// sum adds the counts whose key starts with prefix and, after it, is at
// least from (a day for the dated keys; "" for all).
func (c Counts) sum(prefix, from string) int {
	n := 0
	for k, v := range c {
		if rest, ok := strings.CutPrefix(k, prefix); ok && rest >= from {
			n += v
		}
	}
	return n
}
