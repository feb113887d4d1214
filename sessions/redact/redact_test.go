package redact_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/sessions"
	"github.com/omnigate/omnigate/sessions/redact"
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

func TestIdentity(t *testing.T) {
	t.Parallel()
	phone := sessions.Identity{Kind: sessions.IdentityPhone, Value: "+8613812345678", Verified: true}
	email := sessions.Identity{Kind: sessions.IdentityEmail, Value: "a@example.com"}
	got := redact.Identities([]sessions.Identity{phone, email})
	if got[0].Value != "+86*********78" || !got[0].Verified || got[1] != email {
		t.Errorf("Identities = %+v", got)
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{"kind":"phone","value":"+8613812345678"}`, `{"kind":"phone","value":"+86*********78"}`},
		{`{"calls":[{"to":"+14155552671","secs":12.50}]}`, `{"calls":[{"secs":12.50,"to":"+1********71"}]}`},
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

func TestStrings(t *testing.T) {
	t.Parallel()
	got := redact.Strings(map[string]string{"mobile": "+8613812345678", "plan": "gold"})
	if got["mobile"] != "+86*********78" || got["plan"] != "gold" {
		t.Errorf("Strings = %v", got)
	}
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
