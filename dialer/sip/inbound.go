package sip

import (
	"net"

	"github.com/emiago/sipgo/sip"
)

// onInvite screens INVITEs that do not belong to a call of ours. Inbound
// calls are not routed yet (channels/voice will take them), so a valid
// INVITE from a trunk is answered 480; the screening before it is what
// keeps strangers and floods out, and stores nothing for a refused call:
// unknown source 403, over the trunk's limits 503, malformed 400, no
// usable audio 488.
func (u *UA) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	respond := func(code int, reason string) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	}
	if l := u.leg(req.CallID().Value()); l != nil {
		// A re-INVITE on one of our legs (session refresh, hold): the
		// relay does not renegotiate, so the offer is refused and the
		// call goes on as it was.
		respond(sip.StatusNotAcceptableHere, "Not Acceptable Here")
		return
	}
	host, _, err := net.SplitHostPort(req.Source())
	t := u.bySource[host]
	if err != nil || t == nil {
		respond(sip.StatusForbidden, "Forbidden")
		return
	}
	if !t.lim.acquire() {
		respond(sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	defer t.lim.release()
	if req.Contact() == nil || req.From() == nil || req.To() == nil {
		respond(sip.StatusBadRequest, "Bad Request")
		return
	}
	if _, err := parseSDP(req.Body()); err != nil {
		respond(sip.StatusNotAcceptableHere, "Not Acceptable Here")
		return
	}
	respond(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable")
}
