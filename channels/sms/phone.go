package sms

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ErrBadNumber means a phone number could not be read as a possible E.164
// number. Its text never quotes the number.
var ErrBadNumber = errors.New("sms: not a phone number")

// Normalize returns raw in E.164 ("+8613812345678"). Numbers written
// without a country code ("138 1234 5678", "(415) 867-5309") are read in
// region, an ISO 3166 code such as "CN"; with region empty only
// international numbers ("+86...", "0086..." is not one) are accepted.
//
// It checks that the number is possible (right length for its country),
// not that its range is allocated: metadata lags new ranges, and refusing a
// real customer's number is worse than storing an odd one.
func Normalize(raw, region string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > 64 {
		return "", ErrBadNumber
	}
	if region == "" {
		region = "ZZ" // unknown: the number must carry its country code
	}
	n, err := phonenumbers.Parse(raw, strings.ToUpper(region))
	if err != nil || !phonenumbers.IsPossibleNumber(n) {
		return "", ErrBadNumber
	}
	e164 := phonenumbers.Format(n, phonenumbers.E164)
	if !isE164(e164) {
		return "", ErrBadNumber
	}
	return e164, nil
}

// ValidRegion reports whether region is a region phonenumbers knows.
func ValidRegion(region string) bool {
	return phonenumbers.GetSupportedRegions()[strings.ToUpper(region)]
}

func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func mustE164(s string) error {
	if !isE164(s) {
		return fmt.Errorf("%q is not E.164 (+ and 2 to 15 digits)", s)
	}
	return nil
}
