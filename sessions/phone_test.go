package sessions

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, region, want string
	}{
		{"CN mobile", "+8613812345678", "", "+8613812345678"},
		{"CN mobile, spaces", " +86 138 1234 5678 ", "", "+8613812345678"},
		{"CN mobile, dashes", "+86 138-1234-5678", "", "+8613812345678"},
		{"CN mobile, parentheses and dots", "+86 (138) 1234.5678", "", "+8613812345678"},
		{"national in CN", "138 1234 5678", "CN", "+8613812345678"},
		{"region in lower case", "13812345678", "cn", "+8613812345678"},
		{"IDD prefix in CN", "0086 138 1234 5678", "CN", "+8613812345678"},
		{"US, parentheses", "(415) 867-5309", "US", "+14158675309"},
		{"+1 wins over region", "+1 415-867-5309", "CN", "+14158675309"},
		{"UK mobile", "+44 7911 123456", "", "+447911123456"},
		{"UK national, trunk 0", "07911 123456", "GB", "+447911123456"},

		{"empty", "", "CN", ""},
		{"blank", "   ", "CN", ""},
		{"letters inside", "+86 999 bad", "", ""},
		{"letters only", "hello", "CN", ""},
		{"vanity number", "1-800-FLOWERS", "US", ""},
		{"extension", "+86 138 1234 5678 ext 12", "", ""},
		{"extension, RFC 3966", "+8613812345678;ext=1", "", ""},
		{"tel URI", "tel:+8613812345678", "", ""},
		{"plus inside", "+86+13812345678", "", ""},
		{"only separators", "+ - ( )", "", ""},
		{"no region, no country code", "13812345678", "", ""},
		{"unknown region", "13812345678", "XX", ""},
		{"unknown country code", "+999 1234567", "", ""},
		{"too short for China", "+86123", "", ""},
		{"too short", "+12", "", ""},
		{"too long for China", "+86 138 1234 5678 9", "", ""},
		{"too long for anything", "+86 1381234567812345678", "", ""},
		{"over the length cap", "+86" + strings.Repeat(" 1", 40), "", ""},
		{"local number, no area code", "+86999223", "", ""},
		{"mobile length, unallocated range", "+86 110 1234 5678", "", ""},
		{"US, area code 555", "+1 555 123 4567", "", ""},
		{"full-width digits", "+86１３８１２３４５６７８", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizePhone(tt.raw, tt.region)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("NormalizePhone(%q, %q) = %q, %v; want %q", tt.raw, tt.region, got, err, tt.want)
				}
				if err := CheckPhone(got); err != nil {
					t.Fatalf("CheckPhone(%q) = %v for NormalizePhone's output", got, err)
				}
				return
			}
			if _, ok := errors.AsType[*PhoneError](err); !ok || !errors.Is(err, ErrInvalidPhone) || !errors.Is(err, ErrInvalid) || got != "" {
				t.Fatalf("NormalizePhone(%q, %q) = %q, %v; want ErrInvalidPhone", tt.raw, tt.region, got, err)
			}
			assertNoDigitsOf(t, err, tt.raw)
		})
	}
}

func TestCheckPhone(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"+8613812345678", "+14155552671", "+447911123456", "+85291234567"} {
		if err := CheckPhone(ok); err != nil {
			t.Errorf("CheckPhone(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "13912345678", "+86 138 1234 5678", "+86-13812345678", "+86013812345678", "+86999223", "+1234", "+0123456789"} {
		err := CheckPhone(bad)
		if _, ok := errors.AsType[*PhoneError](err); !ok || !errors.Is(err, ErrInvalidPhone) {
			t.Errorf("CheckPhone(%q) = %v, want ErrInvalidPhone", bad, err)
		}
		assertNoDigitsOf(t, err, bad)
	}
}

func TestIsE164(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"+8613812345678": true, "+86999223": true, "+123": true, "+999999999999999": true,
		"+1": false, "+0123": false, "8613812345678": false, "+86 138": false,
		"+1234567890123456": false, "": false, "+": false,
	} {
		if got := IsE164(s); got != want {
			t.Errorf("IsE164(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidPhoneRegion(t *testing.T) {
	t.Parallel()
	if !ValidPhoneRegion("cn") || !ValidPhoneRegion("US") || ValidPhoneRegion("XX") || ValidPhoneRegion("") {
		t.Error("ValidPhoneRegion")
	}
}

// assertNoDigitsOf fails if err's text quotes the number: errors are logged
// and returned to callers, and a number is personal data.
func assertNoDigitsOf(t *testing.T, err error, raw string) {
	t.Helper()
	var digits strings.Builder
	for _, r := range raw {
		if r >= '0' && r <= '9' {
			digits.WriteRune(r)
		}
	}
	if d := digits.String(); len(d) >= 4 && strings.Contains(err.Error(), d) {
		t.Fatalf("error %q quotes the number", err)
	}
}

// FuzzPhone checks NormalizePhone on any input: it never panics, what it
// accepts is E.164 that CheckPhone accepts and that normalises to itself,
// and it never accepts a letter (phonenumbers would read one as a digit).
func FuzzPhone(f *testing.F) {
	for _, s := range []string{
		"+8613812345678", "+86 138-1234-5678", "138 1234 5678", "(415) 867-5309", "+1 415-867-5309",
		"+86 999 bad", "+8613812345678;ext=1", "tel:+8613812345678", "0086 138 1234 5678",
		"+999999999999999", "+1", "+", "", "+86１３８１２３４５６７８",
	} {
		f.Add(s, "CN")
		f.Add(s, "")
	}
	f.Add("07911 123456", "gb")
	f.Fuzz(func(t *testing.T, raw, region string) {
		got, err := NormalizePhone(raw, region)
		if err != nil {
			if _, ok := errors.AsType[*PhoneError](err); !ok || !errors.Is(err, ErrInvalidPhone) || got != "" {
				t.Fatalf("NormalizePhone(%q, %q) = %q, %v; want a *PhoneError", raw, region, got, err)
			}
			return
		}
		if strings.ContainsFunc(raw, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) {
			t.Fatalf("NormalizePhone(%q, %q) = %q: accepted letters", raw, region, got)
		}
		if !IsE164(got) {
			t.Fatalf("NormalizePhone(%q, %q) = %q: not E.164", raw, region, got)
		}
		if err := CheckPhone(got); err != nil {
			t.Fatalf("CheckPhone(%q) = %v for NormalizePhone(%q, %q)", got, err, raw, region)
		}
		if again, err := NormalizePhone(got, region); err != nil || again != got {
			t.Fatalf("NormalizePhone(%q) = %q, %v: not idempotent", got, again, err)
		}
	})
}
