package contact

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// What the ledgers share: checking input, matching a touch against a limit
// and deciding a claim. MemoryLedger and BoltLedger call evaluate; the
// ValkeyLedger's script (ledger_valkey.go) does the same in Lua, and the
// conformance suite holds all three to one behaviour.
//
// Times are kept to the microsecond, in UTC, by every ledger: Valkey keeps
// a touch's time as a sorted-set score, a float64, which holds Unix
// microseconds exactly until the year 2255 but not nanoseconds. A window
// is likewise counted in whole microseconds.

var (
	// ErrInvalidTouch is wrapped by every refusal of a malformed touch or
	// customer id: nothing was recorded.
	ErrInvalidTouch = errors.New("contact: invalid touch")
	// ErrInvalidLimit is wrapped by every refusal of a malformed limit:
	// nothing was checked or recorded.
	ErrInvalidLimit = errors.New("contact: invalid limit")
	// ErrMergeConflict means a customer was already merged into another
	// customer than the one asked for.
	ErrMergeConflict = errors.New("contact: customer already merged elsewhere")
)

// DefaultRetention is how long a ledger keeps a touch when
// LedgerOptions.Retention is zero: a little over a year, so a yearly
// limit ("no more than 4 sales calls a year") still sees every touch it
// counts.
const DefaultRetention = 400 * 24 * time.Hour

// maxMergeHops bounds how far a ledger follows customers merged into
// customers merged into others; a chain longer than this is a loop or a
// corrupted store.
const maxMergeHops = 32

// LedgerOptions configures every ledger; the zero value is what the
// gateway uses.
type LedgerOptions struct {
	// Retention is how long a touch is kept after its At: each write drops
	// the customer's touches older than the written touch's At minus
	// Retention (and the Valkey ledger lets a customer's keys expire
	// Retention after its last write), so the ledger does not grow
	// forever. A limit whose Window is longer is refused, since it could
	// not count what was dropped. Zero means DefaultRetention.
	Retention time.Duration
}

func (o LedgerOptions) retention() time.Duration {
	if o.Retention <= 0 {
		return DefaultRetention
	}
	return o.Retention
}

// checkCustomerID refuses ids the stores cannot key on: empty, with a
// brace (it would change the Valkey Cluster hash tag {c:<id>}) or a
// control character (BoltLedger separates an id from the rest of a key
// with a NUL).
func checkCustomerID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: customer id is empty", ErrInvalidTouch)
	}
	if len(id) > 256 || strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '{' || r == '}' }) {
		return fmt.Errorf("%w: customer id %q is too long or has a brace or a control character", ErrInvalidTouch, id)
	}
	return nil
}

// normalizeTouch checks t and returns it with At in UTC, to the
// microsecond.
func normalizeTouch(t Touch) (Touch, error) {
	if err := checkCustomerID(t.CustomerID); err != nil {
		return t, err
	}
	if t.ID == "" || len(t.ID) > 256 {
		return t, fmt.Errorf("%w: touch id is empty or longer than 256 bytes (customer %s)", ErrInvalidTouch, t.CustomerID)
	}
	if t.Direction != Inbound && t.Direction != Outbound {
		return t, fmt.Errorf("%w: direction %q of touch %s is neither %q nor %q", ErrInvalidTouch, t.Direction, t.ID, Inbound, Outbound)
	}
	if t.At.IsZero() {
		return t, fmt.Errorf("%w: touch %s has no time", ErrInvalidTouch, t.ID)
	}
	t.At = time.UnixMicro(t.At.UnixMicro()).UTC()
	return t, nil
}

// checkLimits refuses limits that could not be counted as written, every
// problem at once.
func checkLimits(limits []Limit, retention time.Duration) error {
	var errs []error
	for i, l := range limits {
		switch {
		case l.Name == "":
			errs = append(errs, fmt.Errorf("%w: limit %d has no name", ErrInvalidLimit, i))
		case l.Window < time.Microsecond:
			errs = append(errs, fmt.Errorf("%w: limit %s: window %v is not positive", ErrInvalidLimit, l.Name, l.Window))
		case l.Window > retention:
			errs = append(errs, fmt.Errorf("%w: limit %s: window %v is longer than the ledger keeps touches (%v)", ErrInvalidLimit, l.Name, l.Window, retention))
		case l.Max < 0:
			errs = append(errs, fmt.Errorf("%w: limit %s: max %d is negative", ErrInvalidLimit, l.Name, l.Max))
		}
	}
	return errors.Join(errs...)
}

// matches says whether u counts for l, time aside.
func (l Limit) matches(u Touch) bool {
	return u.Direction == Outbound &&
		(l.Purpose == "" || l.Purpose == u.Purpose) &&
		(l.Channel == "" || l.Channel == u.Channel) &&
		(l.Topic == "" || l.Topic == u.Topic) &&
		(l.Campaign == "" || l.Campaign == u.Campaign) &&
		(l.Outcome == "" || l.Outcome == u.Outcome)
}

// widest is the longest window of limits: a claim at t reads the touches
// in (t - widest, t].
func widest(limits []Limit) time.Duration {
	var w time.Duration
	for _, l := range limits {
		w = max(w, l.Window)
	}
	return w.Truncate(time.Microsecond)
}

// evaluate returns the limits reached by a claim at at, given the
// customer's touches after at - widest(limits), oldest first (see Limit:
// later ones included).
//
// A limit is reached when its matching touches in (at - Window, at] number
// at least Max (at least one for Max 0). Until is when enough of them
// have left the window for the claim to pass: for a limit at exactly its
// Max, the oldest one's At plus Window; for a limit already over it (Record
// ignores limits), later.
func evaluate(window []Touch, at time.Time, limits []Limit) []Reached {
	var reached []Reached
	var in []Touch
	for _, l := range limits {
		w := l.Window.Truncate(time.Microsecond)
		from := at.Add(-w)
		in = in[:0]
		for _, u := range window {
			if u.At.After(from) && l.matches(u) {
				in = append(in, u)
			}
		}
		need := max(l.Max, 1)
		if len(in) < need {
			continue
		}
		reached = append(reached, Reached{
			Limit: l,
			Count: len(in),
			First: in[0],
			Until: in[len(in)-need].At.Add(w),
		})
	}
	return reached
}

// touchOrder sorts a customer's touches by time, then id, as every ledger
// lists them.
func touchOrder(a, b Touch) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// sortTouches sorts ts in touchOrder.
func sortTouches(ts []Touch) { slices.SortFunc(ts, touchOrder) }
