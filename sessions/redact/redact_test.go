package redact_test

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/omnigate/omnigate/sessions/redact"
	"github.com/omnigate/omnigate/sessions/redact/redacttest"
)

func TestPhone(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"+8613812345678", "+86*********78"}, // China, two-digit code
		{"+14155552671", "+1********71"},     // NANP, one digit
		{"+79161234567", "+7********67"},     // Russia, one digit
		{"+447911123456", "+44********56"},   // UK
		{"+353871234567", "+353*******67"},   // Ireland, three digits
		{"+85291234567", "+852******67"},     // Hong Kong, three digits
		{"+2348012345678", "+234********78"}, // Nigeria, three digits
		{"+27821234567", "+27*******67"},     // South Africa, two digits
		{"+1234", "+1*34"},                   // short but still hides one digit
		{"+123", "+1**"},                     // too short to keep a tail
		{"13812345678", "***"},               // not E.164: masked whole
		{"+86 138 1234 5678", "***"},         // spaces: not E.164
		{"", "***"},
	}
	for _, tt := range tests {
		if got := redact.Phone(tt.in); got != tt.want {
			t.Errorf("Phone(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := redact.Phone(tt.in); strings.Contains(tt.in, "12345678") && strings.Contains(got, "12345678") {
			t.Errorf("Phone(%q) leaks the number: %q", tt.in, got)
		}
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{"kind":"phone","value":"+8613812345678"}`, `{"kind":"phone","value":"+86*********78"}`},
		// Key order and number formatting stay as they were.
		{`{"to":"+14155552671","secs":12.50}`, `{"to":"+1********71","secs":12.50}`},
		{`{"text":"call me on +86 138 1234 5678 after 18:00"}`, `{"text":"call me on +86 *** **** **78 after 18:00"}`},
		{`{"text":"\u0031\u0033\u0038 1234 5678"}`, `{"text":"*** **** **78"}`},
		{`{"13812345678":true}`, `{"*********78":true}`},
		{`{"mobile":13812345678,"seq":1234567,"n":123456,"p":-13812345678}`, `{"mobile":"*********78","seq":"*****67","n":123456,"p":"-*********78"}`},
		{`{"id":"cus_01M8Y1K71W2J2HEHRR5577V6VM","at":"2026-12-03T13:30:07.691905213+08:00"}`, `{"id":"cus_01M8Y1K71W2J2HEHRR5577V6VM","at":"2026-12-03T13:30:07.691905213+08:00"}`},
		{`{"text":"<b>13812345678</b>"}`, `{"text":"\u003cb\u003e*********78\u003c/b\u003e"}`},
		{"[\"+8613812345678\"]\n", "[\"+86*********78\"]\n"},
		{`{"text":"hello"}`, `{"text":"hello"}`},
		{`{"text":"+1"}`, `{"text":"+1"}`},
		{`{"broken":"+8613812345678"`, `null`},
		{``, ``},
	}
	for _, tt := range tests {
		if got := string(redact.JSON(json.RawMessage(tt.in))); got != tt.want {
			t.Errorf("JSON(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		// Numbers, however written.
		{"+8613812345678", "+86*********78"},
		{"+86 137 1111 2222", "+86 *** **** **22"},
		{"137-1111-2222", "***-****-**22"},
		{"(415) 555-0100", "(***) ***-**00"},
		{"+1 (415) 555-0100", "+1 (***) ***-**00"},
		{"0086 13711112222", "0086 *********22"},
		{"00 44 7911 123456", "00 44 **** ****56"},
		{"１３７１１１１２２２２", "*********２２"},
		{"＋８６ １３７ １１１１ ２２２２", "＋８６ *** **** **２２"},
		{"+86\u00a0137\u00a01111\u00a02222", "+86\u00a0***\u00a0****\u00a0**22"},
		{"137\u30001111\u30002222", "***\u3000****\u3000**22"},
		{"1 3 7 1 1 1 1 2 2 2 2", "* * * * * * * * * 2 2"},
		{"415.555.0100", "***.***.**00"},
		{"030/1234 5678", "***/**** **78"},
		{"1234567", "*****67"},
		{"+1234567", "+*****67"}, // too short to show the country code and hide five
		// Numbers inside text.
		{"my number is 13711112222, call me", "my number is *********22, call me"},
		{"电话13711112222号", "电话*********22号"},
		{"tel:+8613711112222", "tel:+86*********22"},
		{"tel13711112222 or Mobile-13711112222", "tel*********22 or Mobile-*********22"},
		{"13711112222x12", "*********22x12"},
		{"13711112222@163.com", "*********22@163.com"},
		{"137 1111 2222 138 2222 3333", "*** **** **** *** **** **33"}, // two numbers run together
		{"13711112222\n13822223333", "*********22\n*********33"},
		// Left alone.
		{"cus_01M8Y1K71W2J2HEHRR5577V6VM", "cus_01M8Y1K71W2J2HEHRR5577V6VM"},
		{"order ORD20240615123, ORD-20240615123", "order ORD20240615123, ORD-20240615123"},
		{"inbox-1234567890abcdef12345678", "inbox-1234567890abcdef12345678"},
		{"550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440000"},
		{"2026-12-03T13:30:07.691905213Z", "2026-12-03T13:30:07.691905213Z"},
		{"2024-06-15 10:30, 15.06.2024, 06/15/2024, 2024/6/15", "2024-06-15 10:30, 15.06.2024, 06/15/2024, 2024/6/15"},
		{"1,234,567 units at 12.50", "1,234,567 units at 12.50"},
		{"call 110 or 12345", "call 110 or 12345"},
		{"seq 123456", "seq 123456"},
		{"", ""},
		// Masked for being digits, though not phones: the price of masking by shape.
		{"1234567.89", "*******.89"},
	}
	for _, tt := range tests {
		if got := redact.Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// A strict E.164 number comes out as Phone makes it.
	for _, e := range []string{"+8613812345678", "+14155552671", "+447911123456", "+353871234567", "+2348012345678"} {
		if got, want := redact.Text(e), redact.Phone(e); got != want {
			t.Errorf("Text(%q) = %q, Phone = %q", e, got, want)
		}
	}
}

// countryCodes are real calling codes of one, two and three digits.
var countryCodes = []string{"1", "7", "20", "33", "44", "49", "52", "55", "61", "81", "86", "91", "234", "353", "852", "886", "971"}

// FuzzText makes a phone number from the fuzzer's digits, writes it every
// way redacttest knows, embeds it in the fuzzer's text (stripped of
// digits, so every digit in the output is the number's) and checks that
// no more survives than Text promises: the "00" and country code of an
// international number and the last two digits, which must be there to
// tell numbers apart.
func FuzzText(f *testing.F) {
	f.Add(uint8(10), uint64(13795468213), uint8(11), "my number is ", ", call me")
	f.Add(uint8(0), uint64(4155550137), uint8(10), "(", ")")
	f.Add(uint8(3), uint64(7911627384), uint8(3), "电话：", "号")
	f.Add(uint8(7), uint64(1234567), uint8(0), "", "")
	f.Fuzz(func(t *testing.T, ccIdx uint8, digits uint64, length uint8, before, after string) {
		n := redacttest.Number{CC: countryCodes[int(ccIdx)%len(countryCodes)]}
		size := 7 + int(length)%6 // 7 to 12 national digits
		n.National = strconv.FormatUint(digits%uint64(math.Pow10(size)), 10)
		if len(n.National) < size {
			n.National = strings.Repeat("5", size-len(n.National)) + n.National
		}
		if n.National[0] == '0' {
			n.National = "9" + n.National[1:]
		}
		noDigits := func(s string) string {
			return strings.Map(func(r rune) rune {
				if unicode.IsDigit(r) || !utf8.ValidRune(r) {
					return -1
				}
				return r
			}, s)
		}
		before, after = noDigits(before)+" ", " "+noDigits(after)
		for _, form := range n.Formats() {
			in := before + form + after
			out := redact.Text(in)
			runs := redacttest.Runs(out)
			got := strings.Join(runs, "")
			allowed := 2 // the last two
			if strings.ContainsAny(form, "+\uff0b") {
				allowed += len(n.CC)
			} else if strings.HasPrefix(form, "00") {
				allowed += 2 + len(n.CC)
			}
			if len(got) > allowed {
				t.Fatalf("Text(%q) = %q: %d digits survive (%v), at most %d may", in, out, len(got), runs, allowed)
			}
			if !strings.HasSuffix(got, n.National[len(n.National)-2:]) {
				t.Fatalf("Text(%q) = %q: the last two digits are gone, so numbers can't be told apart", in, out)
			}
		}
	})
}

func FuzzPhone(f *testing.F) {
	for _, s := range []string{"+8613812345678", "+14155552671", "+1", "+", "", "+999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := redact.Phone(s)
		if got == "***" {
			return
		}
		if len(got) != len(s) || !strings.Contains(got, "*") {
			t.Fatalf("Phone(%q) = %q: must keep the length and hide at least one digit", s, got)
		}
	})
}

// FuzzJSON: a rep's answer stays a JSON document of the same shape after
// masking, and masking it again changes nothing.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"text":"call +86 138 1234 5678","n":13812345678,"seq":12}`, `["\u0031\u0033\u0038 1234 5678",-1.5e10]`,
		`{"13812345678":{"a":[1234567.89,"2024-06-15T10:30:00Z"]}}`, `"x"`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			return
		}
		out := redact.JSON(json.RawMessage(in))
		if !json.Valid(out) {
			t.Fatalf("JSON(%s) = %s: not JSON", in, out)
		}
		var a, b any
		_ = json.Unmarshal([]byte(in), &a)
		_ = json.Unmarshal(out, &b)
		if shape(a) != shape(b) {
			t.Fatalf("JSON(%s) = %s: the shape changed", in, out)
		}
		if again := redact.JSON(out); string(again) != string(out) {
			t.Fatalf("masking %s again gave %s", out, again)
		}
	})
}

// shape is a document's structure: arrays and what is in them, objects,
// and leaves as "v" (a masked number becomes a string). An object's keys
// are not compared: two keys may mask alike.
func shape(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return "{}"
	case []any:
		var b strings.Builder
		for _, e := range v {
			b.WriteString(shape(e))
		}
		return "[" + b.String() + "]"
	}
	return "v"
}
