package kpi

import (
	"strconv"
	"strings"
	"time"
)

// Slot is the unit every count is kept in: 15 minutes, UTC. Hours and
// days are sums of slots, so one set of counters answers every interval.
const Slot = 15 * time.Minute

// slotOf is the start of t's slot, as Unix seconds (the stores' key).
func slotOf(t time.Time) int64 { return t.UTC().Truncate(Slot).Unix() }

// Counts is one slot's counters: key (dimension, value, counter) to
// value. A map rather than a struct so the stores add them field by field
// (HINCRBY) and a new counter needs no migration.
type Counts map[string]int64

// Dimensions a count is kept under. Every count is kept under dimAll and
// under each dimension the event names.
const (
	dimAll     = "all"
	dimQueue   = "queue"
	dimChannel = "channel"
	dimRep     = "rep"
)

// sep joins a key's parts; it cannot appear in a queue, channel or rep
// id that YAML or the API would take.
const sep = "\x1f"

func key(dim, val, counter string) string { return dim + sep + val + sep + counter }

func splitKey(k string) (dim, val, counter string, ok bool) {
	dim, rest, ok1 := strings.Cut(k, sep)
	val, counter, ok2 := strings.Cut(rest, sep)
	return dim, val, counter, ok1 && ok2
}

// add adds n to counter under every dimension in dims (dimension, value
// pairs) and under dimAll.
func (c Counts) add(counter string, n int64, dims ...string) {
	c[key(dimAll, "", counter)] += n
	for i := 0; i+1 < len(dims); i += 2 {
		if dims[i+1] != "" {
			c[key(dims[i], dims[i+1], counter)] += n
		}
	}
}

func (c Counts) merge(o Counts) {
	for k, v := range o {
		c[k] += v
	}
}

// The counters. Durations are kept in milliseconds.
const (
	cOffered      = "offered"        // contacts that started waiting for a rep
	cAnswered     = "answered"       // waits ended by a rep taking the contact
	cAnsweredInSL = "answered_in_sl" // ... within the queue's service_level_target
	cWaitMS       = "wait_ms"        // sum of the answered waits
	cAbandoned    = "abandoned"      // waits ended by the conversation ending unanswered
	cOverflowed   = "overflowed"     // waits ended by the overflow action (callback, message)
	cFirstResp    = "first_responses"
	cFirstRespMS  = "first_response_ms" // contact start to a rep's first reply
	cHandled      = "handled"           // conversations resolved after a rep took them
	cHandleMS     = "handle_ms"         // first assignment to resolution
	cResolutionMS = "resolution_ms"     // contact start to resolution
	cContacts     = "contacts"          // inbound contacts, per channel
	cRepeat       = "repeat_contacts"   // ... from a customer who made one in the 24 h before
	cMerged       = "merged_contacts"   // ... that joined a conversation open on another channel
	cSuppressed   = "suppressed"        // outbound contacts the contact policy refused
	cCalls        = "calls"             // dialer call attempts ended
	cConnected    = "calls_connected"   // ... a person answered (answered or abandoned)
	cCallAbandon  = "calls_abandoned"   // ... a person answered and no rep took it
	cWaitHist     = "w"                 // + bucket index: the answered waits' histogram
	cStatePrefix  = "t_"                // + rep state: milliseconds in it
)

// Rep states as occupancy counts them (the t_ counters).
const (
	stIdle     = "idle"     // available (or on a call set by hand) with nothing held
	stHandling = "handling" // holding a contact, on a call, in wrap-up or after-call work
	stBreak    = "break"
	stAway     = "away"
)

// waitBounds are the histogram's upper bounds in seconds: one per second
// to a minute (service-level targets live there, so p90 is exact to the
// second), then coarser; a wait past the last falls in one more bucket.
// p90 is the bound of the bucket holding the 90th percentile, so it
// needs no sample kept.
var waitBounds = func() []int64 {
	var b []int64
	for s := int64(1); s <= 60; s++ {
		b = append(b, s)
	}
	return append(b, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 3600)
}()

// waitBucket is the counter name of the bucket of a wait.
func waitBucket(wait time.Duration) string {
	s := int64((wait + time.Second - 1) / time.Second) // ceil, so 20.0s is in "≤20s"
	i := 0
	for i < len(waitBounds) && waitBounds[i] < s {
		i++
	}
	return cWaitHist + strconv.Itoa(i)
}

// percentile is the upper bound, in seconds, of the bucket holding the
// p-th percentile of hist (bucket index to count), -1 when empty; a
// percentile past the last bound reports that bound.
func percentile(hist map[int]int64, p float64) float64 {
	var n int64
	for _, v := range hist {
		n += v
	}
	if n == 0 {
		return -1
	}
	rank := int64(float64(n)*p + 0.999999999) // ceil: the rank-th smallest wait
	var cum int64
	for i := 0; i <= len(waitBounds); i++ {
		cum += hist[i]
		if cum >= rank {
			return float64(waitBounds[min(i, len(waitBounds)-1)])
		}
	}
	return float64(waitBounds[len(waitBounds)-1])
}
