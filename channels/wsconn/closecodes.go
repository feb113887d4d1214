package wsconn

import (
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
)

// WebSocket close codes every Omnigate socket sends with one meaning. As
// in centrifuge, the range says what the client does next:
//
//   - 4000-4499: reconnect with backoff and resume from the last sequence
//     seen. Nothing is lost; the timeline is the source of truth.
//   - 4500-4999: do not reconnect on your own; something must change first
//     (a fixed client, a new signature or token, a page reload).
//
// The reason text of a close frame is the code's name, for logs and
// debugging; clients must act on the number, not the text.
const (
	// CloseServerError: the server could not do what was asked (the store
	// or the change feed did not answer). Reconnect with backoff.
	CloseServerError = 4000
	// CloseShutdown: this gateway node is stopping. Reconnect; a load
	// balancer sends the client to a node that is up.
	CloseShutdown = 4001
	// CloseSlow: the client did not take its frames fast enough, or the
	// node fell behind the change feed (centrifuge's DisconnectSlow, nats's
	// slow consumer). Rather than skip events, the server hangs up; the
	// client resumes from the last sequence it saw.
	CloseSlow = 4002
	// CloseTooManyRequests: the client sent more frames than its rate
	// allows; frames after the limit were not applied. Reconnect after a
	// backoff of a few seconds.
	CloseTooManyRequests = 4003

	// CloseBadRequest: a frame that is not valid JSON, has an unknown type
	// or bad fields, or comes out of order. A client bug: reconnecting
	// would repeat it.
	CloseBadRequest = 4500
)

// CloseMessageTooBig (1009, RFC 6455) is sent by the WebSocket library
// itself, before the server sees any of it, when a frame is larger than
// the socket's limit. Nothing of the frame is applied. It belongs with the
// "do not reconnect" codes: the clients never send frames over the limit
// they were told, so one that did has a bug, and reconnecting would resend
// the same frame.
const CloseMessageTooBig = websocket.CloseMessageTooBig

// Reconnect reports whether a client that received the close code should
// reconnect. Codes outside the catalogues (1006 for a dropped network, 1001
// or 1012 from a proxy) are worth reconnecting after too; only 4500-4999
// and 1009 are final.
func Reconnect(code int) bool {
	if code == CloseMessageTooBig {
		return false
	}
	return code < 4500 || code > 4999
}

// CloseNames is one socket's catalogue of reason texts: the shared codes'
// and the socket's own.
type CloseNames map[int]string

// NewCloseNames is the catalogue of the shared codes plus own (a socket's
// codes in 4004-4499 and 4501-4999).
func NewCloseNames(own map[int]string) CloseNames {
	n := CloseNames{
		CloseServerError:     "server_error",
		CloseShutdown:        "shutdown",
		CloseSlow:            "slow",
		CloseTooManyRequests: "too_many_requests",
		CloseBadRequest:      "bad_request",
		CloseMessageTooBig:   "message_too_big",
	}
	for code, name := range own {
		n[code] = name
	}
	return n
}

// Name is the reason text the server sends with code, "" for codes the
// socket never sends.
func (n CloseNames) Name(code int) string { return n[code] }

// CloseNow closes s without waiting for its queue: the close frame goes
// out ahead of anything still queued, as soon as the frame being written
// is out (or, if the socket stays stuck for timeout, not at all), and the
// connection is dropped. It returns at once; the wait for a stuck writer
// happens on a goroutine of its own.
func CloseNow(s *melody.Session, code int, reason string, timeout time.Duration) {
	go func() {
		ws := s.WebsocketConnection()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(timeout))
		_ = ws.Close()
	}()
}
