package redact

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MinDigits is the fewest digits a phone-like sequence has: the shortest
// subscriber numbers in use (local numbers without their area code) have
// seven. Fewer digits are quantities, prices, years, short codes.
const MinDigits = 7

// maxSeparators is how many separator runes may stand between two groups
// of digits of one number: ") " in "(415) 555-0100", " - " in
// "137 - 1111 - 2222".
const maxSeparators = 3

// Text masks every phone-like sequence in free text, wherever it stands
// and however it is written, and leaves everything else as it was.
//
// A phone-like sequence is a run of at least MinDigits digits (any
// script's decimal digits: ASCII, full-width "１３７", Arabic-Indic...)
// in groups joined by at most three separators each: spaces of any kind
// (not line breaks), hyphens and dashes, dots, slashes and round
// brackets, ASCII or full-width. It may follow "+" (or "＋") or start with
// "00", which mark an international number. There is no upper bound on
// the digits: a longer run is several numbers written together, a card or
// an account number, none of which a rep should read either.
//
// Each hidden digit becomes one "*" and separators stay, so the text keeps
// its shape. What stays visible is what redact.Phone keeps, enough to tell
// two numbers apart: the last two digits, and for an international number
// its "+" or "00" and country code. At least five digits are always
// hidden, whatever the number's length. An E.164 number comes out as
// Phone makes it: "+8613812345678" is "+86*********78" either way.
//
// Not phone-like, and left alone:
//   - digits glued to a word: a run that follows an ASCII letter or "_"
//     directly, or after one "-" ("cus_01M8Y1K71W2", "ORD20240615123",
//     "ORD-20240615123", "inbox-1f2e..."), so ids, order numbers and
//     hashes survive. A word ending in a phone label (tel, phone, mobile,
//     mob, cell, fax, call) is no id: "tel13812345678" is masked.
//     Digits followed by letters are masked ("13812345678x12" hides
//     the number and keeps the extension);
//   - dates and times: 2024-06-15, 2024/6/15, 15.06.2024, 06/15/2024,
//     10:30, 10:30:00.123456789, so timestamps (RFC 3339 included) and
//     the dates customers write survive;
//   - runs of fewer than MinDigits digits, and digits joined by anything
//     else (commas, colons, letters, line breaks): "1,234,567" is three
//     short runs.
//
// The price of masking by shape is that some numbers that are not phones
// are masked too: a bare order number "20240615123", "1234567.89", a
// Unix time. Write ids with a letter before their digits.
func Text(s string) string {
	if !mayHoldPhone(s) {
		return s
	}
	rs := []rune(s)
	skip := dateTimes(rs)
	var out []rune // nil until something is masked
	for i := 0; i < len(rs); {
		if !isDigit(rs[i]) || skip[i] {
			i++
			continue
		}
		start := i
		end, digits := chainEnd(rs, skip, i)
		i = end
		if digits < MinDigits || gluedToWord(rs, start) {
			continue
		}
		if out == nil {
			out = append([]rune(nil), rs...)
		}
		maskChain(out, start, end, digits, international(rs, start))
	}
	if out == nil {
		return s
	}
	return string(out)
}

// mayHoldPhone is the fast path: fewer than MinDigits digits of any kind
// in all of s means nothing to mask.
func mayHoldPhone(s string) bool {
	n := 0
	for _, r := range s {
		if isDigit(r) {
			if n++; n >= MinDigits {
				return true
			}
		}
	}
	return false
}

// chainEnd follows groups of digits joined by separators from the digit
// at i; it returns the index after the chain's last digit and the number
// of digits in it.
func chainEnd(rs []rune, skip []bool, i int) (end, digits int) {
	for {
		for i < len(rs) && isDigit(rs[i]) && !skip[i] {
			i++
			digits++
		}
		end = i
		j := i
		for j < len(rs) && j-i < maxSeparators && isSeparator(rs[j]) && !skip[j] {
			j++
		}
		if j == i || j >= len(rs) || !isDigit(rs[j]) || skip[j] {
			return end, digits
		}
		i = j
	}
}

// maskChain hides the digits of rs[start:end] in place, keeping what Text
// says it keeps.
func maskChain(rs []rune, start, end, digits int, plus bool) {
	var vals []byte
	for _, r := range rs[start:end] {
		if isDigit(r) {
			vals = append(vals, byte('0'+digitValue(r)))
		}
	}
	keepHead := 0
	if intl := string(vals); plus || (strings.HasPrefix(intl, "00") && len(intl) > 2 && intl[2] != '0') {
		if !plus {
			keepHead = 2 // the "00"
		}
		keepHead += countryCodeLen(intl[keepHead:])
	}
	keepTail := 2
	if digits-keepHead-keepTail < 5 {
		keepHead = 0 // too short to show the country code and still hide five
	}
	n := 0
	for k := start; k < end; k++ {
		if !isDigit(rs[k]) {
			continue
		}
		if n >= keepHead && n < digits-keepTail {
			rs[k] = '*'
		}
		n++
	}
}

// international reports whether the chain at start follows a "+",
// directly or with a bracket between ("+86", "+(86)").
func international(rs []rune, start int) bool {
	k := start - 1
	if k >= 0 && (rs[k] == '(' || rs[k] == '（') {
		k--
	}
	return k >= 0 && (rs[k] == '+' || rs[k] == '＋')
}

// phoneLabels are words that, glued to digits, say the digits are a
// phone number rather than part of an id.
var phoneLabels = []string{"tel", "phone", "mobile", "mob", "cell", "fax", "call"}

// gluedToWord reports whether the chain at start continues a word (an id,
// an order number): it follows an ASCII letter or "_", directly or after
// one "-", and the word does not end in a phone label.
func gluedToWord(rs []rune, start int) bool {
	k := start - 1
	if k >= 0 && rs[k] == '-' {
		k--
	}
	if k < 0 || !isWordRune(rs[k]) {
		return false
	}
	w := k
	for w >= 0 && isASCIILetter(rs[w]) {
		w--
	}
	word := strings.ToLower(string(rs[w+1 : k+1]))
	for _, l := range phoneLabels {
		if strings.HasSuffix(word, l) {
			return false
		}
	}
	return true
}

func isWordRune(r rune) bool    { return isASCIILetter(r) || r == '_' }
func isASCIILetter(r rune) bool { return r < utf8.RuneSelf && ('a' <= r|0x20 && r|0x20 <= 'z') }

func isDigit(r rune) bool { return '0' <= r && r <= '9' || r >= utf8.RuneSelf && unicode.IsDigit(r) }

// isSeparator is what people put between the digits of one number.
func isSeparator(r rune) bool {
	switch r {
	case ' ', '\t', '-', '.', '/', '(', ')',
		'\u2010', '\u2011', '\u2012', '\u2013', '\u2014', // hyphens and dashes
		'\uff0d', '\uff0e', '\uff0f', '\uff08', '\uff09': // full-width - . / ( )
		return true
	}
	return r >= utf8.RuneSelf && unicode.Is(unicode.Zs, r) // no-break, ideographic, thin spaces
}

// digitValue is the value of a decimal digit of any script: Unicode keeps
// each script's digits 0-9 in order, in ranges that start at a zero.
func digitValue(r rune) int {
	if r <= '9' {
		return int(r - '0')
	}
	for _, rg := range unicode.Nd.R16 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	return 0
}

// dateTimes marks the runes inside the dates and times Text leaves
// alone: year-month-day, day-month-year and month-day-year with one
// separator ("-", "/" or ".") used twice, the year 19xx or 20xx and month
// and day in range; hours:minutes, with seconds and a fraction. Both
// start and end at the edge of a run of digits, so "1372024-06-15" is a
// run of digits, not a date.
func dateTimes(rs []rune) []bool {
	skip := make([]bool, len(rs))
	for i := 0; i < len(rs); i++ {
		if !isASCIIDigit(rs[i]) || (i > 0 && isDigit(rs[i-1])) {
			continue
		}
		end := max(matchDate(rs, i), matchTime(rs, i))
		for k := i; k < end; k++ {
			skip[k] = true
		}
		i = max(i, end-1)
	}
	return skip
}

// number reads the whole run of ASCII digits at i: its value, its length
// and the index after it. A run followed by another digit (of any script)
// has length 0.
func number(rs []rune, i int) (v, n, end int) {
	for end = i; end < len(rs) && isASCIIDigit(rs[end]); end++ {
		if v < 1e6 {
			v = v*10 + int(rs[end]-'0')
		}
	}
	if end < len(rs) && isDigit(rs[end]) {
		return 0, 0, end
	}
	return v, end - i, end
}

// matchDate returns the end of the date at i, or -1.
func matchDate(rs []rune, i int) int {
	a, na, j := number(rs, i)
	if j >= len(rs) || (rs[j] != '-' && rs[j] != '/' && rs[j] != '.') {
		return -1
	}
	sep := rs[j]
	b, nb, k := number(rs, j+1)
	if k >= len(rs) || rs[k] != sep || nb < 1 || nb > 2 {
		return -1
	}
	c, nc, end := number(rs, k+1)
	year := func(y, n int) bool { return n == 4 && 1900 <= y && y <= 2099 }
	month := func(m int) bool { return 1 <= m && m <= 12 }
	day := func(d, n int) bool { return n >= 1 && n <= 2 && 1 <= d && d <= 31 }
	switch {
	case year(a, na) && month(b) && day(c, nc):
		return end
	case year(c, nc) && day(a, na) && day(b, nb) && (month(a) || month(b)):
		return end
	}
	return -1
}

// matchTime returns the end of the time at i, or -1.
func matchTime(rs []rune, i int) int {
	h, nh, j := number(rs, i)
	if nh < 1 || nh > 2 || h > 23 || j >= len(rs) || rs[j] != ':' {
		return -1
	}
	m, nm, end := number(rs, j+1)
	if nm != 2 || m > 59 {
		return -1
	}
	if end < len(rs) && rs[end] == ':' {
		if sec, ns, e := number(rs, end+1); ns == 2 && sec <= 59 {
			end = e
			if end < len(rs) && (rs[end] == '.' || rs[end] == ',') {
				if _, nf, e := number(rs, end+1); nf > 0 {
					end = e
				}
			}
		}
	}
	return end
}

func isASCIIDigit(r rune) bool { return '0' <= r && r <= '9' }
