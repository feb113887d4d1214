package sip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/omnigate/omnigate/dialer"
)

// Who hung up, as Progress.HungUpBy says it.
const (
	byCustomer = "customer"
	byRep      = "rep"
	byGateway  = "gateway"
)

// errCallEnded is returned by Bridge and Abandon on a call that ended
// (or was never answered).
var errCallEnded = errors.New("sip: call not answered or already ended")

// byeTimeout bounds each BYE the gateway sends when a call ends.
const byeTimeout = 4 * time.Second

type callState int

const (
	stateRinging callState = iota
	stateAnswered
	stateBridged
	stateEnded
)

// dialog is what a call needs of either side of a sipgo dialog: the
// customer's leg is a client dialog on outbound calls and a server one on
// inbound calls; the rep's is always a client dialog.
type dialog interface {
	Bye(ctx context.Context) error
	ReadBye(req *sip.Request, tx sip.ServerTransaction) error
	LoadState() sip.DialogState
}

// leg is one of a call's two dialogs, found by its Call-ID.
type leg struct {
	call   *call
	role   string // byCustomer or byRep
	callID string
	dlg    dialog
	// gone is set once the far end sent BYE: no BYE goes back.
	gone bool
}

// dialog returns the leg's dialog: nil until its INVITE went out (the
// leg's Call-ID is registered before, so a duplicate is refused first).
func (l *leg) dialog() dialog {
	l.call.mu.Lock()
	defer l.call.mu.Unlock()
	return l.dlg
}

func (l *leg) setDialog(d dialog) {
	l.call.mu.Lock()
	l.dlg = d
	l.call.mu.Unlock()
}

// call is a customer call and, once bridged, its rep leg. One goroutine
// (run) owns the customer's INVITE and writes every Progress; Bridge,
// Abandon and Hangup run on the dialer's goroutines and meet run through
// mu, ctx and ended.
type call struct {
	id     string
	t      *trunk
	ua     *UA
	relay  *relay
	events chan dialer.Progress
	// ctx ends when the call is ending (Hangup, Close, a BYE): it cancels
	// a ringing INVITE on either leg and a playing message.
	ctx    context.Context
	cancel context.CancelFunc
	// byeFrom carries who sent the BYE that ended an answered call.
	byeFrom chan string

	// mu guards what follows and both legs' dlg and gone.
	mu      sync.Mutex
	state   callState
	cust    *leg
	rep     *leg
	pt      uint8
	outcome dialer.Outcome
	// inbound is set on calls the trunk sent us.
	inbound bool
	// repInvited is when the first rep INVITE was written.
	repInvited time.Time
}

var _ dialer.Call = (*call)(nil)

// newCall opens the customer's RTP socket and registers the call's
// Call-ID; nothing is sent yet.
func (u *UA) newCall(t *trunk, id string) (*call, error) {
	r, err := newRelay(u.ip)
	if err != nil {
		return nil, fmt.Errorf("sip: rtp socket: %w", err)
	}
	c := &call{id: id, t: t, ua: u, relay: r, events: make(chan dialer.Progress, 3),
		byeFrom: make(chan string, 2), outcome: dialer.OutcomeAnswered}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.cust = &leg{call: c, role: byCustomer, callID: id}
	if err := u.addLeg(c.cust); err != nil {
		r.close()
		return nil, err
	}
	return c, nil
}

// start sends the INVITE and hands the call to run.
func (c *call) start(ctx context.Context, req *sip.Request, ring time.Duration) error {
	dlg, err := c.ua.dua.WriteInvite(ctx, req)
	if err != nil {
		c.ua.removeLeg(c.cust)
		c.relay.close()
		c.t.lim.release()
		return err
	}
	c.cust.setDialog(dlg)
	c.ua.callWG.Add(1)
	go c.run(dlg, ring)
	return nil
}

func (c *call) Events() <-chan dialer.Progress { return c.events }

func (c *call) emit(p dialer.Progress) {
	p.At = time.Now()
	c.events <- p // buffered for the three a call can have
}

// run waits for the customer's answer (cancelling at the ring timeout),
// then for the end of the call, and finishes it.
func (c *call) run(dlg *sipgo.DialogClientSession, ring time.Duration) {
	defer c.ua.callWG.Done()
	ringCtx, cancel := context.WithTimeout(c.ctx, ring)
	rang := false
	err := dlg.WaitAnswer(ringCtx, sipgo.AnswerOptions{
		Username: c.t.cfg.AuthUser,
		Password: c.t.cfg.password,
		OnResponse: func(res *sip.Response) error {
			if (res.StatusCode == 180 || res.StatusCode == 183) && !rang {
				rang = true
				c.emit(dialer.Progress{Kind: dialer.ProgressRinging})
			}
			return nil
		},
	})
	cancel()
	if err != nil {
		code := finalCode(dlg, err)
		if code >= 200 && code < 300 {
			// The answer crossed our CANCEL: take the call down.
			_ = dlg.Ack(context.Background())
			c.bye(c.cust)
			code = sip.StatusRequestTerminated
		}
		c.finish(dialer.Progress{Kind: dialer.ProgressEnded, Outcome: outcomeFor(code), SIPCode: code})
		return
	}
	m, sdpErr := parseSDP(dlg.InviteResponse.Body())
	ackErr := dlg.Ack(context.Background())
	if sdpErr != nil || ackErr != nil {
		c.bye(c.cust)
		c.finish(dialer.Progress{Kind: dialer.ProgressEnded, Outcome: dialer.OutcomeFailed, SIPCode: sip.StatusNotAcceptableHere, HungUpBy: byGateway})
		return
	}
	c.relay.custDst.Store(m.addr)
	c.mu.Lock()
	c.pt = m.pt
	c.state = stateAnswered
	c.mu.Unlock()
	c.emit(dialer.Progress{Kind: dialer.ProgressAnswered, SIPCode: dlg.InviteResponse.StatusCode})
	c.talk()
}

// talk waits for the end of an answered call (a BYE from either side,
// Hangup, Close) and finishes it.
func (c *call) talk() {
	by := byGateway
	select {
	case by = <-c.byeFrom:
	case <-c.ctx.Done():
	}
	c.mu.Lock()
	outcome := c.outcome
	c.mu.Unlock()
	c.finish(dialer.Progress{Kind: dialer.ProgressEnded, Outcome: outcome, SIPCode: sip.StatusOK, HungUpBy: by})
}

// finalCode is the customer's final response code when WaitAnswer did
// not end in an answer: the response itself, 487 after our CANCEL, 408
// when nothing came back before the transaction timed out.
func finalCode(dlg *sipgo.DialogClientSession, err error) int {
	var de *sipgo.ErrDialogResponse
	if errors.As(err, &de) {
		return de.Res.StatusCode
	}
	if res := dlg.InviteResponse; res != nil && !res.IsProvisional() {
		return res.StatusCode
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return sip.StatusRequestTerminated
	}
	return sip.StatusRequestTimeout
}

// finish ends the call: the ringing rep is cancelled, every leg still up
// gets a BYE, the relay and the Call-IDs go, and the last Progress is
// sent. Called once, by the call's own goroutine.
func (c *call) finish(end dialer.Progress) {
	c.cancel()
	c.mu.Lock()
	c.state = stateEnded
	var up []*leg
	rep := c.rep
	for _, l := range []*leg{c.cust, rep} {
		if l != nil && !l.gone && l.dlg != nil && l.dlg.LoadState() == sip.DialogStateConfirmed {
			up = append(up, l)
		}
	}
	c.mu.Unlock()
	for _, l := range up {
		c.bye(l)
	}
	c.ua.removeLeg(c.cust)
	if rep != nil {
		c.ua.removeLeg(rep)
	}
	c.relay.close()
	c.t.lim.release()
	c.ua.metrics.ends.WithLabelValues(c.direction(), string(end.Outcome)).Inc()
	c.emit(end)
	close(c.events)
}

func (c *call) direction() string {
	if c.inbound {
		return "inbound"
	}
	return "outbound"
}

// bye hangs up one leg from the gateway's side.
func (c *call) bye(l *leg) {
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	if err := l.dialog().Bye(ctx); err != nil {
		c.ua.log.Warn("sip: bye", "call_id", l.callID, "error", err)
	}
}

// remoteBye answers a BYE from either leg and ends the call.
func (c *call) remoteBye(l *leg, req *sip.Request, tx sip.ServerTransaction) {
	c.mu.Lock()
	l.gone = true
	c.mu.Unlock()
	d := l.dialog()
	if d == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	_ = d.ReadBye(req, tx)
	select {
	case c.byeFrom <- l.role:
	default:
	}
}

// Hangup ends the call from the gateway's side: CANCEL while it rings,
// BYE once it is up. It returns at once; Events says when it ended.
func (c *call) Hangup(context.Context) error {
	c.cancel()
	return nil
}

// Bridge calls the rep (offering the customer's codec, so RTP passes
// through) and joins the legs. On an error the customer stays answered:
// the dialer may try another rep or Abandon.
func (c *call) Bridge(ctx context.Context, rep dialer.RepLeg) error {
	return c.bridge(ctx, rep, stateAnswered, nil)
}

// bridge calls the rep from state want; once the rep answers, answer (if
// any) answers the customer (an inbound caller is answered only when a
// rep is on the line).
func (c *call) bridge(ctx context.Context, rep dialer.RepLeg, want callState, answer func() error) error {
	var uri sip.Uri
	if err := sip.ParseUri(rep.URI, &uri); err != nil {
		return fmt.Errorf("sip: bridge %s to rep %s: %w", c.id, rep.ID, err)
	}
	c.mu.Lock()
	if c.state != want || c.rep != nil {
		c.mu.Unlock()
		return errCallEnded
	}
	if err := c.relay.openRep(c.ua.ip); err != nil {
		c.mu.Unlock()
		return fmt.Errorf("sip: bridge %s: rtp socket: %w", c.id, err)
	}
	l := &leg{call: c, role: byRep, callID: c.id + "-rep"}
	c.rep = l
	pt := c.pt
	c.mu.Unlock()

	err := c.dialRep(ctx, l, uri, pt)
	repUp := err == nil
	if repUp && answer != nil {
		err = answer()
	}
	c.mu.Lock()
	if err == nil && c.state == want {
		c.state = stateBridged
		c.mu.Unlock()
		return nil
	}
	c.rep = nil
	c.mu.Unlock()
	if err == nil {
		err = errCallEnded // the customer left while the rep answered
	}
	if repUp {
		// finish did not see the rep's leg, so it is hung up here.
		c.bye(l)
	}
	c.relay.closeRep()
	c.ua.removeLeg(l)
	return fmt.Errorf("sip: bridge %s to rep %s: %w", c.id, rep.ID, err)
}

// dialRep INVITEs the rep and, on the answer, points the relay at it.
func (c *call) dialRep(ctx context.Context, l *leg, uri sip.Uri, pt uint8) error {
	if err := c.ua.addLeg(l); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	req := sip.NewRequest(sip.INVITE, uri)
	c.ua.bindUDP(req)
	from := &sip.FromHeader{DisplayName: "Omnigate", Address: sip.Uri{Scheme: "sip", User: "omnigate", Host: c.ua.ip.String()}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	cid := sip.CallIDHeader(l.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offerSDP(c.ua.ip, c.relay.repPort(), rand.Int64N(1<<40), pt))
	dlg, err := c.ua.dua.WriteInvite(ctx, req)
	if err != nil {
		return err
	}
	c.mu.Lock()
	l.dlg = dlg
	if c.repInvited.IsZero() {
		c.repInvited = time.Now()
	}
	c.mu.Unlock()
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		return fmt.Errorf("rep's phone: %d", finalCode(dlg, err))
	}
	m, sdpErr := parseSDP(dlg.InviteResponse.Body())
	if err := dlg.Ack(context.Background()); err != nil {
		return err
	}
	if sdpErr != nil {
		c.bye(l)
		return sdpErr
	}
	c.relay.repDst.Store(m.addr)
	return nil
}

// Abandon plays the message to the customer and hangs up, or bridges the
// customer to the destination; either way the outcome is abandoned.
func (c *call) Abandon(ctx context.Context, a dialer.AbandonAction) error {
	c.mu.Lock()
	if c.state != stateAnswered {
		c.mu.Unlock()
		return errCallEnded
	}
	c.outcome = dialer.OutcomeAbandoned
	pt := c.pt
	c.mu.Unlock()
	switch {
	case a.Destination != "":
		return c.Bridge(ctx, dialer.RepLeg{ID: "abandon", URI: a.Destination})
	case a.Message != "":
		defer c.cancel()
		samples, err := loadWAV(a.Message)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(c.ctx, cancel)
		defer stop()
		if err := c.relay.play(ctx, encodeG711(samples, pt), pt); err != nil && c.ctx.Err() == nil {
			return fmt.Errorf("sip: abandon %s: %w", c.id, err)
		}
		return nil
	default:
		c.cancel()
		return nil
	}
}
