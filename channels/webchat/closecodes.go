package webchat

import "github.com/omnigate/omnigate/channels/wsconn"

// WebSocket close codes the visitor endpoint sends: the one catalogue of
// them. The ranges (4000-4499 reconnect and resume, 4500-4999 and 1009
// don't) and the shared codes are wsconn's; wsconn.Reconnect tells which
// a code is. What each means on this socket:
const (
	// CloseServerError: the store did not answer; the frame was not
	// applied. Resend it after reconnecting.
	CloseServerError = wsconn.CloseServerError
	// CloseShutdown: this node is stopping. Reconnect.
	CloseShutdown = wsconn.CloseShutdown
	// CloseSlow: the visitor did not read its frames fast enough. Resume
	// from the last sequence seen.
	CloseSlow = wsconn.CloseSlow
	// CloseTooManyRequests: more frames than the site's rate allows.
	CloseTooManyRequests = wsconn.CloseTooManyRequests
	// CloseCustomerMerged: the visitor's customer was merged into another
	// one while connected. Reconnect: the new welcome names the customer
	// it now belongs to, with reset set.
	CloseCustomerMerged = 4004

	// CloseBadRequest: a frame that is not valid JSON, has an unknown type,
	// comes before hello, or a connection URL without a valid visitor id.
	CloseBadRequest = wsconn.CloseBadRequest
	// CloseIdentityRefused: user_id and user_hash were given and the hash
	// is not HMAC-SHA256(user_id) under the site's secret (or the site has
	// no secret). The page must get a fresh signature from the site's back
	// end, or connect without one.
	CloseIdentityRefused = 4501
	// CloseMessageTooBig: a frame larger than the site's MaxMessageBytes
	// (the widget never sends one over the max_message_bytes announced in
	// welcome).
	CloseMessageTooBig = wsconn.CloseMessageTooBig
)

var closeNames = wsconn.NewCloseNames(map[int]string{
	CloseCustomerMerged:  "customer_merged",
	CloseIdentityRefused: "identity_refused",
})

// CloseName is the reason text the server sends with code, "" for codes it
// never sends.
func CloseName(code int) string { return closeNames.Name(code) }
