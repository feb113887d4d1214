// Package redacttest helps tests prove that no phone number reaches a
// rep: it writes one number the ways people write numbers, and finds what
// survives of it in an output, read as a person would read it.
package redacttest

import (
	"regexp"
	"strings"
	"unicode"
)

// Number is a phone number for tests: its country calling code and its
// national significant number, digits only.
type Number struct{ CC, National string }

// E164 is the number as the store keeps it.
func (n Number) E164() string { return "+" + n.CC + n.National }

// Formats returns the number written as people write numbers: E.164,
// grouped with spaces, hyphens, dots or brackets, with 00 for the "+",
// national only, in full-width digits, with no-break and ideographic
// spaces, digit by digit, and after a label. Groups are never 4-2-2 or
// 2-2-4, so no format reads as a date.
func (n Number) Formats() []string {
	nat, cc := n.National, n.CC
	g := groups(nat, " ")
	out := []string{
		"+" + cc + nat,
		"+" + cc + " " + g,
		"+" + cc + "-" + groups(nat, "-"),
		"+" + cc + " (" + nat[:3] + ") " + groups(nat[3:], "-"),
		"+" + cc + "." + groups(nat, "."),
		"00" + cc + " " + nat,
		"00" + cc + "-" + groups(nat, "-"),
		"(+" + cc + ") " + g,
		nat,
		g,
		groups(nat, "-"),
		groups(nat, "."),
		groups(nat, "/"),
		"(" + nat[:3] + ") " + groups(nat[3:], "-"),
		groups(nat, "\u00a0"),
		groups(nat, "\u3000"),
		groups(nat, " - "),
		strings.Join(strings.Split(nat, ""), " "),
		fullWidth("+" + cc + nat),
		fullWidth(groups(nat, "-")),
		"\uff0b" + cc + "\uff0d" + fullWidth(groups(nat, "\uff0d")),
		"tel:+" + cc + nat,
		"tel" + nat,
		"Mobile" + nat,
		"\u7535\u8bdd" + nat, // 电话
		nat + "\u53f7",       // 号
		nat + "@example.com",
	}
	return out
}

// groups splits digits into a group of three, then groups of four, joined
// by sep: "13795468213" becomes "137 9546 8213".
func groups(digits, sep string) string {
	if len(digits) <= 3 {
		return digits
	}
	parts := []string{digits[:3]}
	for rest := digits[3:]; rest != ""; {
		k := min(4, len(rest))
		parts = append(parts, rest[:k])
		rest = rest[k:]
	}
	return strings.Join(parts, sep)
}

func fullWidth(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9':
			return r - '0' + '\uff10'
		case r == '+':
			return '\uff0b'
		}
		return r
	}, s)
}

// timestamp matches RFC 3339 times, whose fractional seconds are random
// digits that could match any number.
var timestamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)

// Runs returns the runs of digits in out as a person would read them:
// anything but a digit, a letter or "*" between two digits is ignored (a
// space, a hyphen, a bracket, a quote), digits of any script count as
// their ASCII value, and RFC 3339 timestamps are skipped.
func Runs(out string) []string {
	out = timestamp.ReplaceAllString(out, "T")
	var runs []string
	var cur []byte
	for _, r := range out {
		switch {
		case unicode.IsDigit(r):
			cur = append(cur, byte('0'+DigitValue(r)))
		case unicode.IsLetter(r) || r == '*':
			if len(cur) > 0 {
				runs = append(runs, string(cur))
			}
			cur = nil
		}
	}
	if len(cur) > 0 {
		runs = append(runs, string(cur))
	}
	return runs
}

// Leaked returns the first run of `run` consecutive digits of n's national
// number found in out (read as Runs reads it), or "" when there is none.
func Leaked(out string, n Number, run int) string {
	for _, r := range Runs(out) {
		for i := 0; i+run <= len(n.National); i++ {
			if w := n.National[i : i+run]; strings.Contains(r, w) {
				return w
			}
		}
	}
	return ""
}

// DigitValue is the value of a decimal digit of any script. Unicode keeps
// each script's digits 0-9 together and in order, so it is the distance
// from the first digit of the block of digits r is in, modulo ten.
func DigitValue(r rune) int {
	first := r
	for unicode.IsDigit(first - 1) {
		first--
	}
	return int(r-first) % 10
}
