package sip

import (
	"testing"

	"github.com/omnigate/omnigate/dialer"
)

func TestOutcomeFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code int
		want dialer.Outcome
	}{
		{200, dialer.OutcomeAnswered},
		{202, dialer.OutcomeAnswered},
		{486, dialer.OutcomeBusy},
		{600, dialer.OutcomeBusy},
		{603, dialer.OutcomeDeclined},
		{487, dialer.OutcomeNoAnswer},
		{480, dialer.OutcomeUnavailable},
		{404, dialer.OutcomeFailed},
		{408, dialer.OutcomeFailed},
		{503, dialer.OutcomeFailed},
		{0, dialer.OutcomeFailed},
	} {
		if got := outcomeFor(tc.code); got != tc.want {
			t.Errorf("outcomeFor(%d) = %q, want %q", tc.code, got, tc.want)
		}
	}
}
