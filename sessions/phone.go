package sessions

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalidPhone means a phone number was refused. It wraps ErrInvalid, so
// callers that map ErrInvalid to "bad input" need nothing more.
var ErrInvalidPhone = fmt.Errorf("%w: phone number", ErrInvalid)

// PhoneError is the error NormalizePhone and CheckPhone return; it wraps
// ErrInvalidPhone. Reason says what was wrong ("too long for its country")
// for a caller that words its own message, and never quotes the number, so
// the error is safe to log and to return to whoever sent it.
type PhoneError struct{ Reason string }

func (e *PhoneError) Error() string { return ErrInvalidPhone.Error() + ": " + e.Reason }
func (e *PhoneError) Unwrap() error { return ErrInvalidPhone }

func phoneError(format string, args ...any) error {
	return &PhoneError{Reason: fmt.Sprintf(format, args...)}
}

// maxRawPhone bounds what NormalizePhone reads: the longest E.164 number
// written with a separator between every digit still fits.
const maxRawPhone = 64

// NormalizePhone returns raw in E.164 ("+8613812345678"), or a *PhoneError
// saying why it refused raw. raw may carry spaces, '-', '.', '(' and ')'
// between its digits. Numbers written without a country code
// ("138 1234 5678", "(415) 867-5309") are read in region, an ISO 3166 code
// such as "CN"; with region empty the number must start with "+".
//
// Anything else is refused, not cleaned up: phonenumbers reads letters as
// keypad digits ("+86 999 bad" would become +86999223) and drops
// extensions, and a number we guessed at is worse than one we refused. So
// is a number outside every range its country allocates, because nobody
// can be reached there. That check uses the phonenumbers metadata, which
// can lag a newly opened range: when customers' real numbers are refused
// as "not in any range", update github.com/nyaruka/phonenumbers.
func NormalizePhone(raw, region string) (string, error) {
	raw = strings.TrimSpace(raw)
	if err := checkPhoneChars(raw); err != nil {
		return "", err
	}
	if !strings.HasPrefix(raw, "+") {
		if region == "" {
			return "", phoneError("no country code (write it as +86..., +1...) and no default region to read a national number in")
		}
		if !ValidPhoneRegion(region) {
			return "", phoneError("default region %q is not a region phone numbers know", region)
		}
	}
	n, err := phonenumbers.Parse(raw, strings.ToUpper(cmp.Or(region, "ZZ")))
	switch {
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		return "", phoneError("unknown country code")
	case errors.Is(err, phonenumbers.ErrNumTooLong):
		return "", phoneError("too long")
	case err != nil:
		return "", phoneError("too short or no digits")
	}
	switch phonenumbers.IsPossibleNumberWithReason(n) {
	case phonenumbers.IS_POSSIBLE:
	case phonenumbers.TOO_LONG:
		return "", phoneError("too long for its country")
	case phonenumbers.INVALID_COUNTRY_CODE:
		return "", phoneError("unknown country code")
	case phonenumbers.IS_POSSIBLE_LOCAL_ONLY:
		return "", phoneError("too short: a local number without its area code")
	default: // TOO_SHORT, INVALID_LENGTH
		return "", phoneError("too short or a wrong length for its country")
	}
	if !phonenumbers.IsValidNumber(n) {
		return "", phoneError("not in any range its country uses")
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// checkPhoneChars refuses what NormalizePhone must not clean up: letters,
// extensions ("x12", ";ext=1", "#"), URIs ("tel:"), a "+" anywhere but first.
func checkPhoneChars(raw string) error {
	if raw == "" {
		return phoneError("empty")
	}
	if len(raw) > maxRawPhone {
		return phoneError("longer than %d characters", maxRawPhone)
	}
	digits := 0
	for i, r := range raw {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		case r == '+' && i == 0:
		default:
			return phoneError("has a letter or a character other than digits, a leading '+', spaces, '-', '.', '(' and ')'")
		}
	}
	if digits == 0 {
		return phoneError("no digits")
	}
	return nil
}

// CheckPhone accepts a number only if it is already what NormalizePhone
// returns: E.164, no separators, in an allocated range. Its error is a
// *PhoneError. Stored phone
// identities and queries by phone must be in this form so that one number
// has one key.
func CheckPhone(e164 string) error {
	if !IsE164(e164) {
		return phoneError("not E.164 (a '+' then 2 to 15 digits, no separators)")
	}
	n, err := NormalizePhone(e164, "")
	if err != nil {
		return err
	}
	if n != e164 {
		// Only a shape IsE164 lets through but E.164 forbids, such as a
		// national trunk prefix kept after the country code.
		return phoneError("not in E.164 form")
	}
	return nil
}

// IsE164 reports whether s has the shape of an E.164 number: a '+', a
// first digit that is not 0, and 2 to 15 digits in all. It says nothing
// about whether the number exists; masking uses it, because a value shaped
// like a number is hidden whether or not it is a real one.
func IsE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidPhoneRegion reports whether region (any case) is an ISO 3166 region
// phonenumbers has metadata for, and so can read national numbers in.
func ValidPhoneRegion(region string) bool {
	return phonenumbers.GetSupportedRegions()[strings.ToUpper(region)]
}
