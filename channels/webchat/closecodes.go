package webchat

import "github.com/gorilla/websocket"

// WebSocket close codes the visitor endpoint sends: the one catalogue of
// them. As in centrifuge, the range says what the client does next:
//
//   - 4000-4499: reconnect with backoff and resume from the last sequence
//     seen. Nothing is lost; the timeline is the source of truth.
//   - 4500-4999: do not reconnect on your own; something must change first
//     (a fixed client, a new identity signature, a page reload).
//
// The reason text of a close frame is the code's name below, for logs and
// debugging; clients must act on the number, not the text.
const (
	// CloseServerError: the server could not do what the frame asked (the
	// store did not answer). The frame was not applied; resend it after
	// reconnecting.
	CloseServerError = 4000
	// CloseShutdown: this gateway node is stopping. Reconnect; a load
	// balancer sends the client to a node that is up.
	CloseShutdown = 4001
	// CloseSlow: the client did not read its frames fast enough
	// (centrifuge's DisconnectSlow, nats's slow consumer). Rather than
	// silently skipping events, the server hangs up; the client resumes
	// from the last sequence it saw and gets what it missed.
	CloseSlow = 4002
	// CloseTooManyRequests: the visitor sent more frames than the site's
	// rate allows. Frames after the limit were not applied. Reconnect after
	// a backoff of at least a few seconds.
	CloseTooManyRequests = 4003
	// CloseCustomerMerged: the visitor's customer was merged into another
	// one while connected. Reconnect: the new welcome names the customer
	// it now belongs to, with reset set.
	CloseCustomerMerged = 4004
)

const (
	// CloseBadRequest: a frame that is not valid JSON, has an unknown type,
	// comes before hello, or a connection URL without a valid visitor id.
	// A client bug: reconnecting would repeat it.
	CloseBadRequest = 4500
	// CloseIdentityRefused: user_id and user_hash were given and the hash
	// is not HMAC-SHA256(user_id) under the site's secret (or the site has
	// no secret). The page must get a fresh signature from the site's back
	// end, or connect without one.
	CloseIdentityRefused = 4501
)

// CloseMessageTooBig (1009, RFC 6455) is sent by the WebSocket library
// itself, before the server sees any of it, when a frame is larger than the
// site's MaxMessageBytes. Nothing of the frame is applied. It belongs with
// the "do not reconnect" codes: the widget never sends a frame larger than
// the max_message_bytes announced in welcome, so a client that did has a
// bug, and reconnecting would resend the same frame.
const CloseMessageTooBig = websocket.CloseMessageTooBig

// closeNames gives the reason text of each code.
var closeNames = map[int]string{
	CloseServerError:     "server_error",
	CloseShutdown:        "shutdown",
	CloseSlow:            "slow",
	CloseTooManyRequests: "too_many_requests",
	CloseCustomerMerged:  "customer_merged",
	CloseBadRequest:      "bad_request",
	CloseIdentityRefused: "identity_refused",
	CloseMessageTooBig:   "message_too_big",
}

// Reconnect reports whether a client that received the close code should
// reconnect. Codes outside this package's catalogue (1006 for a dropped
// network, 1001 or 1012 from a proxy) are worth reconnecting after too;
// only 4500-4999 and 1009 are final.
func Reconnect(code int) bool {
	if code == CloseMessageTooBig {
		return false
	}
	return code < 4500 || code > 4999
}

// CloseName is the reason text the server sends with code, "" for codes it
// never sends.
func CloseName(code int) string { return closeNames[code] }
