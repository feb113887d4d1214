package inbox

import "github.com/gorilla/websocket"

// WebSocket close codes the inbox socket sends: the one catalogue of them.
// As in package webchat (and centrifuge), the range says what the client
// does next:
//
//   - 4000-4499: reconnect with backoff, reload the conversation list and
//     resume the open timeline from the last sequence seen (REST
//     ?after=). Nothing is lost; the timeline is the source of truth.
//   - 4500-4999: do not reconnect on your own; something must change first
//     (a new token, a fixed client).
//
// The reason text of a close frame is the code's name below; clients act
// on the number.
const (
	// CloseServerError: the server could not follow the store's change
	// feed. Reconnect with backoff.
	CloseServerError = 4000
	// CloseShutdown: this gateway node is stopping. Reconnect; a load
	// balancer sends the rep to a node that is up.
	CloseShutdown = 4001
	// CloseSlow: the socket did not take its frames fast enough, or the
	// node fell behind the change feed. Rather than skip events, the
	// server hangs up; the client reloads and resumes from its last seq.
	CloseSlow = 4002
	// CloseTooManyRequests: the rep sent more frames than
	// Config.RatePerMinute allows. Reconnect after a few seconds.
	CloseTooManyRequests = 4003
)

const (
	// CloseBadRequest: a frame that is not valid JSON, has an unknown type
	// or bad fields, or an auth frame after the socket was authenticated.
	// A client bug: reconnecting would repeat it.
	CloseBadRequest = 4500
	// CloseUnauthorized: no token, an unknown token, or a first frame that
	// is not auth (or none within Config.AuthTimeout). Sign in again.
	CloseUnauthorized = 4501
	// CloseForbidden: the token is valid but its role may not use the
	// inbox (integrator keys).
	CloseForbidden = 4502
)

// CloseMessageTooBig (1009, RFC 6455) is sent by the WebSocket library
// when a frame is larger than Config.MaxMessageBytes. The inbox never
// sends frames that large, so a client that did has a bug: don't
// reconnect.
const CloseMessageTooBig = websocket.CloseMessageTooBig

var closeNames = map[int]string{
	CloseServerError:     "server_error",
	CloseShutdown:        "shutdown",
	CloseSlow:            "slow",
	CloseTooManyRequests: "too_many_requests",
	CloseBadRequest:      "bad_request",
	CloseUnauthorized:    "unauthorized",
	CloseForbidden:       "forbidden",
	CloseMessageTooBig:   "message_too_big",
}

// Reconnect reports whether a client that received the close code should
// reconnect. Codes outside the catalogue (1006 for a dropped network, 1001
// or 1012 from a proxy) are worth reconnecting after; only 4500-4999 and
// 1009 are final.
func Reconnect(code int) bool {
	if code == CloseMessageTooBig {
		return false
	}
	return code < 4500 || code > 4999
}

// CloseName is the reason text the server sends with code, "" for codes
// it never sends.
func CloseName(code int) string { return closeNames[code] }
