package redact

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/omnigate/omnigate/sessions"
)

// Phone masks an E.164 number, keeping the "+", the country calling code
// and the last two digits: "+8613812345678" becomes "+86*********78". Each
// hidden digit becomes one "*", so numbers keep their length. Anything that
// is not E.164 is masked whole ("***"), never passed through. Only the
// shape is checked (sessions.IsE164), not whether the number exists: a
// value that looks like a number is hidden either way.
func Phone(e164 string) string {
	if !sessions.IsE164(e164) {
		return "***"
	}
	digits := e164[1:]
	cc := countryCodeLen(digits)
	keep := 2
	if len(digits)-cc-keep < 1 {
		// Too short to hide anything and keep the tail; hide the tail.
		keep = 0
	}
	if len(digits)-cc < 1 {
		// Nothing but a country code: hide all but its first digit.
		cc = len(digits) - 1
	}
	var b strings.Builder
	b.Grow(len(e164))
	b.WriteByte('+')
	b.WriteString(digits[:cc])
	b.WriteString(strings.Repeat("*", len(digits)-cc-keep))
	b.WriteString(digits[len(digits)-keep:])
	return b.String()
}

// OpenID masks a WeChat OpenID or UnionID for logs, keeping the first four
// characters (enough to tell accounts apart when debugging).
func OpenID(id string) string {
	if len(id) <= 8 {
		return "***"
	}
	return id[:4] + "***"
}

// JSON masks, for a rep, every phone-like sequence (see Text) in a JSON
// document: in string values, in object keys, and in numbers, since
// integrators send phone numbers as JSON numbers too (13812345678). A
// number that has one becomes the masked string ("*********78"); numbers
// of fewer than MinDigits digits (sequence numbers, counts, prices) stay
// numbers. Everything else, formatting and key order included, stays byte
// for byte; two keys that mask alike ("1234567", "7654367") are both kept,
// and a decoder keeps the last. A document that does not parse is
// replaced by null: better a rep sees nothing than a number.
func JSON(raw json.RawMessage) json.RawMessage {
	if !mayHoldPhone(string(raw)) && !bytes.ContainsRune(raw, '\\') {
		return raw // fast path: too few digits, and none behind an escape
	}
	if !json.Valid(raw) {
		return json.RawMessage("null")
	}
	var out []byte // nil until something is masked
	copied := 0    // raw[:copied] is in out
	replace := func(from, to int, v string) {
		b, _ := json.Marshal(v) // a string always marshals
		out = append(append(out, raw[copied:from]...), b...)
		copied = to
	}
	for i := 0; i < len(raw); {
		switch c := raw[i]; {
		case c == '"':
			end := stringEnd(raw, i)
			var s string
			_ = json.Unmarshal(raw[i:end], &s) // valid: the document is
			if m := Text(s); m != s {
				replace(i, end, m)
			}
			i = end
		case c == '-' || ('0' <= c && c <= '9'):
			end := i + 1
			for end < len(raw) && bytes.IndexByte([]byte("0123456789.eE+-"), raw[end]) >= 0 {
				end++
			}
			if n := string(raw[i:end]); Text(n) != n {
				replace(i, end, Text(n))
			}
			i = end
		default:
			i++
		}
	}
	if out == nil {
		return raw
	}
	return append(out, raw[copied:]...)
}

// stringEnd returns the index after the string literal that starts at
// raw[i] (a '"'), in a document json.Valid accepted.
func stringEnd(raw []byte, i int) int {
	for j := i + 1; j < len(raw); j++ {
		switch raw[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(raw)
}

// countryCodeLen returns the length of the ITU-T E.164 country calling code
// at the start of digits. Codes are prefix-free: zones 1 and 7 use one
// digit, the codes below use two, and every other code uses three.
func countryCodeLen(digits string) int {
	switch digits[0] {
	case '1', '7':
		return 1
	}
	if len(digits) < 2 {
		return len(digits)
	}
	if twoDigitCodes[digits[:2]] {
		return 2
	}
	return min(3, len(digits))
}

var twoDigitCodes = map[string]bool{
	"20": true, "27": true,
	"30": true, "31": true, "32": true, "33": true, "34": true, "36": true, "39": true,
	"40": true, "41": true, "43": true, "44": true, "45": true, "46": true, "47": true, "48": true, "49": true,
	"51": true, "52": true, "53": true, "54": true, "55": true, "56": true, "57": true, "58": true,
	"60": true, "61": true, "62": true, "63": true, "64": true, "65": true, "66": true,
	"81": true, "82": true, "84": true, "86": true,
	"90": true, "91": true, "92": true, "93": true, "94": true, "95": true, "98": true,
}
