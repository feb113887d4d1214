package sip

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/omnigate/omnigate/dialer"
)

// trunk is one configured trunk: the dialer's Trunk.
type trunk struct {
	name string
	ua   *UA
	cfg  TrunkConfig
	host string
	port int
	lim  *limiter
}

var _ dialer.Trunk = (*trunk)(nil)

// Dial sends the customer's INVITE and returns the call ringing; the
// answer, or why there was none, arrives on Events. Beyond the trunk's
// limits it returns dialer.ErrTrunkBusy and sends nothing.
func (t *trunk) Dial(ctx context.Context, d dialer.Dial) (dialer.Call, error) {
	callID := callIDFor(d.AttemptID)
	if callID == "" {
		return nil, fmt.Errorf("sip: dial: attempt id %q: want 1 to 128 bytes", d.AttemptID)
	}
	if !isNumber(d.To) {
		return nil, fmt.Errorf("sip: dial %s: number is not E.164", d.AttemptID)
	}
	callerID := d.CallerID
	if callerID == "" {
		callerID = t.cfg.CallerID
	}
	if callerID != "" && !isNumber(callerID) {
		return nil, fmt.Errorf("sip: dial %s: caller id is not E.164", d.AttemptID)
	}
	if d.RingTimeout <= 0 {
		return nil, fmt.Errorf("sip: dial %s: ring timeout must be positive", d.AttemptID)
	}
	if !t.lim.acquire() {
		return nil, dialer.ErrTrunkBusy
	}
	c, err := t.ua.newCall(t, callID)
	if err != nil {
		t.lim.release()
		return nil, err
	}
	req := t.invite(d.To, callerID, callID, offerSDP(t.ua.ip, c.relay.custPort(), rand.Int64N(1<<40), ptPCMU, ptPCMA))
	if err := c.start(ctx, req, d.RingTimeout); err != nil {
		return nil, fmt.Errorf("sip: dial %s: %w", d.AttemptID, err)
	}
	return c, nil
}

// invite builds the customer INVITE: to the number at the trunk's proxy,
// Call-ID the attempt id, the caller id asserted in P-Asserted-Identity.
func (t *trunk) invite(to, callerID, callID string, sdp []byte) *sip.Request {
	uri := sip.Uri{Scheme: "sip", User: to, Host: t.host, Port: t.port}
	req := sip.NewRequest(sip.INVITE, uri)
	req.SetTransport(strings.ToUpper(t.cfg.Transport))
	t.ua.bindUDP(req)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: t.cfg.FromUser, Host: t.cfg.FromDomain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: to, Host: t.cfg.FromDomain}})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	if callerID != "" {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:"+callerID+"@"+t.cfg.FromDomain+">"))
	}
	contact := t.ua.dua.ContactHDR
	contact.Address.User = t.cfg.FromUser
	if t.cfg.Transport == "tcp" {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", "tcp")
	}
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(sdp)
	return req
}

// callIDFor derives the customer leg's Call-ID from the attempt id: the
// id itself when it is a plain SIP word, with any other byte
// percent-encoded, so a call is traceable to its attempt whatever the
// dialer's id alphabet. Empty for an empty or over-long id.
func callIDFor(attempt string) string {
	if attempt == "" || len(attempt) > 128 {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(attempt); i++ {
		ch := attempt[i]
		if ch != '%' && isToken(string(ch)) || strings.IndexByte(":/()[]{}?`", ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}
