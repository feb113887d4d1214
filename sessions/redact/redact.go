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

// Identity masks the value of a phone identity; other kinds are returned
// unchanged (visitor ids, site user ids, emails and OpenIDs do not let a rep
// call the customer).
func Identity(id sessions.Identity) sessions.Identity {
	if id.Kind == sessions.IdentityPhone {
		id.Value = Phone(id.Value)
	}
	return id
}

// Identities masks a slice in a new slice.
func Identities(ids []sessions.Identity) []sessions.Identity {
	if ids == nil {
		return nil
	}
	out := make([]sessions.Identity, len(ids))
	for i, id := range ids {
		out[i] = Identity(id)
	}
	return out
}

// Strings masks every value that is a whole E.164 number, in a new map.
// Integrators put phone numbers in customer attributes ("mobile",
// "emergency_contact"); key names can't be trusted to say so.
func Strings(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if looksLikePhone(v) {
			v = Phone(v)
		}
		out[k] = v
	}
	return out
}

// JSON masks every string value in a JSON document that is a whole E.164
// number (identity_linked payloads carry the identity, call payloads the
// numbers dialled). Documents that don't parse are replaced by null: better
// a rep sees nothing than a number.
func JSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || !bytes.Contains(raw, []byte(`"+`)) {
		return raw // fast path: no string starts with "+"
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep numbers exactly as they were
	var v any
	if err := dec.Decode(&v); err != nil {
		return json.RawMessage("null")
	}
	out, err := json.Marshal(walk(v))
	if err != nil {
		return json.RawMessage("null")
	}
	return out
}

func walk(v any) any {
	switch v := v.(type) {
	case string:
		if looksLikePhone(v) {
			return Phone(v)
		}
	case []any:
		for i := range v {
			v[i] = walk(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = walk(v[k])
		}
	}
	return v
}

// looksLikePhone is stricter than sessions.IsE164 on length so short codes
// like "+1" in free text are left alone; real numbers have at least 7
// digits.
func looksLikePhone(s string) bool { return len(s) >= 8 && sessions.IsE164(s) }

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
