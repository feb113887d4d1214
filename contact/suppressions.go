package contact

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omnigate/omnigate/sessions"
)

// Suppression is one do-not-contact entry: "do not contact X on channel C
// for purpose P", X being a customer or one of its identities, so a
// STOP from a phone number holds for whichever customer owns it now or
// later. Channel "" and Purpose "" mean all. Entries are written by the
// API, CSV imports, SMS STOP and WeChat unsubscribe (Source says which).
type Suppression struct {
	Kind    string    `json:"kind"`  // "customer", "phone", "email", "wechat_openid"
	Value   string    `json:"value"` // customer id, E.164, email, "<account>:<openid>"
	Channel string    `json:"channel,omitempty"`
	Purpose string    `json:"purpose,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Source  string    `json:"source,omitempty"`
	At      time.Time `json:"at"`
}

// Suppressions is the do-not-contact list. Implementations:
// MemorySuppressions (tests), BoltSuppressions (single node),
// ValkeySuppressions (cluster), one conformance suite. Values are
// normalized on the way in (phone numbers to E.164, emails to lower case),
// by Add, Remove and Match alike, so "+86 138 1234 5678" and
// "+8613812345678" are one entry.
type Suppressions interface {
	Add(ctx context.Context, s Suppression) error // idempotent by (Kind, Value, Channel, Purpose)
	// Remove deletes the one entry with exactly that kind, value, channel
	// and purpose, or returns ErrNoSuppression.
	Remove(ctx context.Context, kind, value, channel, purpose string) error
	// Match returns every entry that applies to a contact with one of keys
	// (kind+value pairs: the customer id and its identities) on channel
	// for purpose (entries with "" apply to all).
	Match(ctx context.Context, keys []Key, channel, purpose string) ([]Suppression, error)
	// List pages through every entry in (kind, value, channel, purpose)
	// order: cursor "" starts, and the cursor returned is "" after the
	// last page. limit <= 0 means 100; at most 1000 are returned.
	List(ctx context.Context, cursor string, limit int) ([]Suppression, string, error)
	Close() error
}

// Key is one thing a contact is known by: a customer id (Kind "customer")
// or an identity. Match ignores keys of other kinds (a widget visitor id
// cannot be suppressed) and keys whose value no entry could have.
type Key struct{ Kind, Value string }

// Suppression kinds.
const (
	KindCustomer     = "customer"
	KindPhone        = "phone"
	KindEmail        = "email"
	KindWeChatOpenID = "wechat_openid"
)

var (
	// ErrInvalidSuppression is wrapped by every refusal of a malformed
	// entry, key or CSV line: nothing was changed.
	ErrInvalidSuppression = errors.New("contact: invalid suppression")
	// ErrNoSuppression is Remove's answer when no such entry exists.
	ErrNoSuppression = errors.New("contact: no such suppression")
)

// normalizeValue returns value in the one form kind is stored in.
func normalizeValue(kind, value string) (string, error) {
	value = strings.TrimSpace(value)
	if value == "" || len(value) > 256 || strings.ContainsFunc(value, isControl) || !utf8.ValidString(value) {
		return "", fmt.Errorf("%w: %s value is empty, longer than 256 bytes, not UTF-8 or has a control character", ErrInvalidSuppression, kind)
	}
	switch kind {
	case KindCustomer:
		if err := checkCustomerID(value); err != nil {
			return "", fmt.Errorf("%w: %w", ErrInvalidSuppression, err)
		}
	case KindPhone:
		e164, err := sessions.NormalizePhone(value, "")
		if err != nil {
			return "", fmt.Errorf("%w: phone: %w", ErrInvalidSuppression, err)
		}
		value = e164
	case KindEmail:
		value = strings.ToLower(value)
		at := strings.LastIndexByte(value, '@')
		if at <= 0 || at == len(value)-1 || strings.ContainsAny(value, " \t") {
			return "", fmt.Errorf("%w: email %q is not an address", ErrInvalidSuppression, value)
		}
	case KindWeChatOpenID:
		account, openID, ok := strings.Cut(value, ":")
		if !ok || account == "" || openID == "" || strings.ContainsAny(value, " \t") {
			return "", fmt.Errorf("%w: wechat_openid %q is not <account>:<openid>", ErrInvalidSuppression, value)
		}
	default:
		return "", fmt.Errorf("%w: unknown kind %q (want customer, phone, email or wechat_openid)", ErrInvalidSuppression, kind)
	}
	return value, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkWord accepts "" or a lowercase word of letters, digits and '_',
// as channel and purpose names are.
func checkWord(what, w string) error {
	if len(w) > 32 || strings.ContainsFunc(w, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_')
	}) {
		return fmt.Errorf("%w: %s %q is not a lowercase word", ErrInvalidSuppression, what, w)
	}
	return nil
}

// normalizeSuppression checks s and returns it in stored form, with every
// problem at once.
func normalizeSuppression(s Suppression) (Suppression, error) {
	var errs []error
	v, err := normalizeValue(s.Kind, s.Value)
	errs = append(errs, err, checkWord("channel", s.Channel), checkWord("purpose", s.Purpose), checkWord("source", s.Source))
	s.Value = v
	s.Reason = strings.TrimSpace(s.Reason)
	if len(s.Reason) > 256 || strings.ContainsFunc(s.Reason, isControl) || !utf8.ValidString(s.Reason) {
		errs = append(errs, fmt.Errorf("%w: reason is longer than 256 bytes, not UTF-8 or has a control character", ErrInvalidSuppression))
	}
	if s.At.IsZero() {
		errs = append(errs, fmt.Errorf("%w: no time", ErrInvalidSuppression))
	}
	s.At = s.At.UTC()
	return s, errors.Join(errs...)
}

// entryKey is the identity of an entry, and its order in List: the
// fields joined by NUL, which none of them holds.
func entryKey(kind, value, channel, purpose string) string {
	return kind + "\x00" + value + "\x00" + channel + "\x00" + purpose
}

func (s Suppression) key() string { return entryKey(s.Kind, s.Value, s.Channel, s.Purpose) }

// removeKey checks Remove's arguments and returns the entry key.
func removeKey(kind, value, channel, purpose string) (string, error) {
	v, err := normalizeValue(kind, value)
	if err = errors.Join(err, checkWord("channel", channel), checkWord("purpose", purpose)); err != nil {
		return "", err
	}
	return entryKey(kind, v, channel, purpose), nil
}

// matchKeys are the entry keys that apply to keys on channel for
// purpose (each key with the channel or "" and the purpose or ""), in
// order, so Match lists in entry order too.
func matchKeys(keys []Key, channel, purpose string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, k := range keys {
		v := k.Value
		// A phone key in E.164 form (identities are stored so) is its own
		// normal form, or no entry can hold it: skip parsing the number,
		// which is most of a policy check's time.
		if k.Kind != KindPhone || !sessions.IsE164(v) {
			var err error
			if v, err = normalizeValue(k.Kind, k.Value); err != nil {
				continue // no entry can hold it (see Key)
			}
		}
		for _, c := range []string{channel, ""} {
			for _, p := range []string{purpose, ""} {
				if ek := entryKey(k.Kind, v, c, p); !seen[ek] {
					seen[ek] = true
					out = append(out, ek)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// Paging: List's cursor is the last entry key returned, base64url, so it
// is opaque and safe in a query string.
func encodeCursor(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", fmt.Errorf("%w: bad cursor", ErrInvalidSuppression)
	}
	return string(b), nil
}

func pageSize(limit int) int {
	if limit <= 0 {
		return 100
	}
	return min(limit, 1000)
}
