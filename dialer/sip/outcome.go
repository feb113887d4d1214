package sip

import "github.com/omnigate/omnigate/dialer"

// outcomes is the one mapping from a customer leg's final SIP response to
// the dialer's outcome. A code not listed is OutcomeFailed; the code is
// always kept beside the outcome on the Progress.
var outcomes = map[int]dialer.Outcome{
	200: dialer.OutcomeAnswered,
	486: dialer.OutcomeBusy,
	600: dialer.OutcomeBusy,
	603: dialer.OutcomeDeclined,
	// 487 Request Terminated follows our CANCEL at the ring timeout.
	487: dialer.OutcomeNoAnswer,
	480: dialer.OutcomeUnavailable,
}

// outcomeFor maps a final response code; 2xx other than 200 count as an
// answer too (a trunk may send 202 or 204 oddities, the dialog is up).
func outcomeFor(code int) dialer.Outcome {
	if o, ok := outcomes[code]; ok {
		return o
	}
	if code >= 200 && code < 300 {
		return dialer.OutcomeAnswered
	}
	return dialer.OutcomeFailed
}
