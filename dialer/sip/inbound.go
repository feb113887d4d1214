package sip

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/omnigate/omnigate/dialer"
)

// ErrNoAnswer is returned by InboundCall.Connect when the rep's phone did
// not answer within the ring time (it was CANCELled): try the next rep.
var ErrNoAnswer = errors.New("sip: rep did not answer")

// InboundHandler takes a call that passed screening. It runs on the
// call's own goroutine and owns the call until it returns: it rings the
// caller, resolves the customer, asks the router for reps and Connects
// one. A call the handler returns without connecting is refused 480 (or
// counted abandoned when the caller already hung up).
type InboundHandler func(ctx context.Context, c *InboundCall)

// HandleInbound sets the handler for inbound calls; without one they are
// refused 480. Set it before the trunk sends calls.
func (u *UA) HandleInbound(h InboundHandler) {
	u.mu.Lock()
	u.inbound = h
	u.mu.Unlock()
}

// InboundCall is a call from a trunk, ringing until Connect answers it.
type InboundCall struct {
	c   *call
	dlg *sipgo.DialogServerSession
	// From is the caller's number: the P-Asserted-Identity of a trusted
	// trunk, else the From header's user part.
	From string
	// Verified is true when From is a trusted trunk's network-asserted
	// number, evidence of the caller's identity; false means a caller id
	// anyone could have set.
	Verified bool
	// Trunk is the name of the trunk the call came in on; CallID its SIP
	// Call-ID.
	Trunk, CallID string
	// Received is when the INVITE arrived.
	Received time.Time

	// sdp is the gateway's answer, the same in a 183 (Hold) and the 200.
	sdp []byte
	// stopHold ends the hold file's playback and waits for it.
	stopHold func()
}

// Events delivers the call's progress as for outbound calls: answered
// when a rep is connected, then ended (outcome answered, abandoned when
// the caller hung up before a rep answered, unavailable when no rep
// took it).
func (ic *InboundCall) Events() <-chan dialer.Progress { return ic.c.events }

// Ring sends 180 Ringing: the caller hears ringback while it is queued.
func (ic *InboundCall) Ring() error { return ic.dlg.Respond(sip.StatusRinging, "Ringing", nil) }

// Gone is closed when the caller hangs up (CANCEL) before a rep answers,
// or the call ends for any other reason.
func (ic *InboundCall) Gone() <-chan struct{} { return ic.dlg.Context().Done() }

// Hold plays the WAV file (16-bit PCM, 8 kHz, mono) to the waiting
// caller on a loop, as early media (183 Session Progress with the
// gateway's SDP), until Connect answers the call or the call ends: the
// queue's hold music instead of ringback. Call it from the handler only.
func (ic *InboundCall) Hold(wav string) error {
	samples, err := loadWAV(wav)
	if err != nil {
		return err
	}
	if len(samples) == 0 {
		return errWAV
	}
	if err := ic.dlg.Respond(sip.StatusSessionInProgress, "Session Progress", ic.sdp, sip.NewHeader("Content-Type", "application/sdp")); err != nil {
		return err
	}
	ic.unhold()
	c := ic.c
	payload := encodeG711(samples, c.pt)
	ctx, cancel := context.WithCancel(c.ctx)
	done := make(chan struct{})
	ic.stopHold = func() { cancel(); <-done }
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if c.relay.play(ctx, payload, c.pt) != nil {
				return // the call ended: its socket is closed
			}
		}
	}()
	return nil
}

// unhold stops a playing hold file, if any.
func (ic *InboundCall) unhold() {
	if ic.stopHold != nil {
		ic.stopHold()
		ic.stopHold = nil
	}
}

// Connect rings rep for up to ring; when the rep answers, the caller is
// answered and the two are bridged. ErrNoAnswer means the rep's phone
// rang out; any other error, that the rep refused or the caller left.
// Call it from the handler only.
func (ic *InboundCall) Connect(ctx context.Context, rep dialer.RepLeg, ring time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(ctx, ring, ErrNoAnswer)
	defer cancel()
	stop := context.AfterFunc(ic.dlg.Context(), cancel)
	defer stop()
	c := ic.c
	err := c.bridge(ctx, rep, stateRinging, func() error {
		ic.unhold()
		return ic.dlg.RespondSDP(ic.sdp)
	})
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrNoAnswer) {
			return ErrNoAnswer
		}
		return err
	}
	c.emit(dialer.Progress{Kind: dialer.ProgressAnswered, SIPCode: sip.StatusOK})
	return nil
}

// SetupDelay is the gateway's added delay: from the caller's INVITE
// arriving to the first rep's INVITE leaving.
func (ic *InboundCall) SetupDelay() time.Duration {
	ic.c.mu.Lock()
	defer ic.c.mu.Unlock()
	return ic.c.repInvited.Sub(ic.Received)
}

// onInvite screens INVITEs that do not belong to a call of ours, then
// hands them to the inbound handler. The screening stores nothing for a
// refused call: unknown source 403, over the trunk's limits 503,
// malformed 400, no usable audio 488.
func (u *UA) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	received := time.Now()
	respond := func(code int, reason string) {
		u.metrics.refuse(code)
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	}
	if l := u.leg(req.CallID().Value()); l != nil {
		if d := l.dialog(); d == nil || d.LoadState() != sip.DialogStateConfirmed {
			// The same call again on a new transaction before it is up:
			// a merged request (RFC 3261 8.2.2.2), not a second call.
			respond(sip.StatusLoopDetected, "Loop Detected")
			return
		}
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
	if req.Contact() == nil || req.From() == nil || req.To() == nil {
		t.lim.release()
		respond(sip.StatusBadRequest, "Bad Request")
		return
	}
	m, err := parseSDP(req.Body())
	if err != nil {
		t.lim.release()
		respond(sip.StatusNotAcceptableHere, "Not Acceptable Here")
		return
	}
	u.mu.Lock()
	h := u.inbound
	u.mu.Unlock()
	if h == nil {
		t.lim.release()
		respond(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable")
		return
	}
	ic, err := u.newInbound(t, req, tx, m)
	if err != nil {
		t.lim.release()
		respond(sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	ic.Received = received
	// The call runs on this goroutine (sipgo's, one per request): sipgo
	// ends an INVITE transaction its handler returns from without a
	// final response.
	u.callWG.Add(1)
	ic.run(h)
}

// newInbound reads the INVITE into a server dialog and a call whose
// customer leg is the caller.
func (u *UA) newInbound(t *trunk, req *sip.Request, tx sip.ServerTransaction, m media) (*InboundCall, error) {
	dlg, err := u.dua.ReadInvite(req, tx)
	if err != nil {
		return nil, err
	}
	callID := req.CallID().Value()
	c, err := u.newCall(t, callID)
	if err != nil {
		return nil, err
	}
	c.cust.setDialog(dlg)
	c.inbound = true
	c.pt = m.pt
	c.relay.custDst.Store(m.addr)
	ic := &InboundCall{c: c, dlg: dlg, CallID: callID, Trunk: t.name, From: req.From().Address.User,
		sdp: offerSDP(u.ip, c.relay.custPort(), time.Now().UnixNano(), m.pt)}
	if pai := req.GetHeader("P-Asserted-Identity"); pai != nil && t.cfg.Trusted {
		var a sip.Uri
		v := strings.Trim(strings.TrimSpace(pai.Value()), "<>")
		if err := sip.ParseUri(v, &a); err == nil && isNumber(a.User) {
			ic.From, ic.Verified = a.User, true
		}
	}
	return ic, nil
}

// run gives the call to the handler, then refuses it or waits for its
// end, on the INVITE's goroutine.
func (ic *InboundCall) run(h InboundHandler) {
	c := ic.c
	defer c.ua.callWG.Done()
	h(c.ctx, ic)
	ic.unhold()
	c.mu.Lock()
	bridged := c.state == stateBridged
	c.mu.Unlock()
	if bridged {
		c.talk()
		return
	}
	end := dialer.Progress{Kind: dialer.ProgressEnded, Outcome: dialer.OutcomeAbandoned, SIPCode: sip.StatusRequestTerminated, HungUpBy: byCustomer}
	if ic.dlg.Context().Err() == nil {
		// Nobody took it and the caller is still there.
		_ = ic.dlg.Respond(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", nil)
		end = dialer.Progress{Kind: dialer.ProgressEnded, Outcome: dialer.OutcomeUnavailable, SIPCode: sip.StatusTemporarilyUnavailable}
	}
	c.finish(end)
}

// onAck confirms an inbound caller's dialog (the ACK to our 200).
func (u *UA) onAck(req *sip.Request, tx sip.ServerTransaction) {
	l := u.leg(req.CallID().Value())
	if l == nil {
		return
	}
	if d, ok := l.dialog().(*sipgo.DialogServerSession); ok {
		_ = d.ReadAck(req, tx)
	}
}
