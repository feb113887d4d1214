package inbox

import "github.com/omnigate/omnigate/channels/wsconn"

// WebSocket close codes the inbox socket sends: the one catalogue of them.
// The ranges (4000-4499 reconnect, reload the conversation list and resume
// the open timeline from the last sequence seen; 4500-4999 and 1009 don't)
// and the shared codes are wsconn's; wsconn.Reconnect tells which a code
// is. What each means on this socket:
const (
	// CloseServerError: the server could not follow the store's change
	// feed. Reconnect with backoff.
	CloseServerError = wsconn.CloseServerError
	// CloseShutdown: this node is stopping. Reconnect.
	CloseShutdown = wsconn.CloseShutdown
	// CloseSlow: the socket did not take its frames fast enough, or the
	// node fell behind the change feed. Reload and resume.
	CloseSlow = wsconn.CloseSlow
	// CloseTooManyRequests: more frames than Config.RatePerMinute allows.
	CloseTooManyRequests = wsconn.CloseTooManyRequests

	// CloseBadRequest: a frame that is not valid JSON, has an unknown type
	// or bad fields, or an auth frame after the socket was authenticated.
	CloseBadRequest = wsconn.CloseBadRequest
	// CloseUnauthorized: no token, an unknown token, or a first frame that
	// is not auth (or none within Config.AuthTimeout). Sign in again.
	CloseUnauthorized = 4501
	// CloseForbidden: the token is valid but its role may not use the
	// inbox (integrator keys).
	CloseForbidden = 4502
	// CloseMessageTooBig: a frame larger than Config.MaxMessageBytes (the
	// inbox never sends one).
	CloseMessageTooBig = wsconn.CloseMessageTooBig
)

var closeNames = wsconn.NewCloseNames(map[int]string{
	CloseUnauthorized: "unauthorized",
	CloseForbidden:    "forbidden",
})

// CloseName is the reason text the server sends with code, "" for codes
// it never sends.
func CloseName(code int) string { return closeNames.Name(code) }
