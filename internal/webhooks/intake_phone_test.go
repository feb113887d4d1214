package webhooks

import (
	"errors"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/internal/api"
)

// TestParseEventPhone: an event's phone is normalised by the sessions rules
// (national numbers in the configured region), and a number that is not a
// real one is refused as invalid, saying why without echoing it.
func TestParseEventPhone(t *testing.T) {
	t.Parallel()
	body := func(phone string) []byte { return []byte(`{"customer":{"phone":"` + phone + `"},"type":"x"}`) }
	for _, tt := range []struct{ phone, region, want string }{
		{"+86 138-1234-5678", "", "+8613812345678"},
		{"138 1234 5678", "CN", "+8613812345678"},
		{"(415) 867-5309", "US", "+14158675309"},
	} {
		_, id, err := ParseEvent(body(tt.phone), tt.region)
		if err != nil || id.Value != tt.want {
			t.Errorf("ParseEvent(phone %q, region %q) = %q, %v; want %q", tt.phone, tt.region, id.Value, err, tt.want)
		}
	}
	for _, tt := range []struct{ phone, region, reason string }{
		{"+86 999 bad", "CN", "letter"},
		{"+86999223", "", "area code"},
		{"+86 110 1234 5678", "", "range"},
		{"138 1234 5678", "", "no country code"},
		{"12", "CN", "short"},
	} {
		_, _, err := ParseEvent(body(tt.phone), tt.region)
		e, ok := errors.AsType[*api.Error](err)
		if !ok || e.Code != api.CodeInvalid || !strings.Contains(e.Message, "phone: ") || !strings.Contains(e.Message, tt.reason) {
			t.Errorf("ParseEvent(phone %q, region %q) = %v; want invalid, phone: ...%s...", tt.phone, tt.region, err, tt.reason)
			continue
		}
		if strings.Contains(e.Message, "999") || strings.Contains(e.Message, "1234") {
			t.Errorf("ParseEvent(phone %q): message echoes the number: %s", tt.phone, e.Message)
		}
	}
}
