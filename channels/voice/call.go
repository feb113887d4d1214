package voice

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/dialer"
	"github.com/omnigate/omnigate/dialer/sip"
	"github.com/omnigate/omnigate/sessions"
	"github.com/omnigate/omnigate/sessions/redact"
)

// inbound is one call while Handle runs, and what its end is recorded
// with. The handler goroutine writes every field; the end is recorded
// from the call's last Progress, which the UA sends only after the
// handler returned, so the recorder reads them without a lock.
type inbound struct {
	a        *Adapter
	ic       *sip.InboundCall
	number   string
	customer string
	conv     string
	// rep answered at answered (zero until one did); overflow is what
	// the overflow did, when it ran.
	rep      string
	answered time.Time
	overflow string
	rings    int
}

// decision is what the adapter reads of the router's offer and
// assignment events (router.Decision and the offer's deadline), without
// importing the router.
type decision struct {
	Kind      string    `json:"kind"`
	RepID     string    `json:"rep_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Handle is the UA's InboundHandler: it records the call, waits for the
// router's choice of rep and rings reps until one answers, the caller
// leaves or the call overflows. It returns once the call is answered (the
// UA then carries it) or given up.
func (a *Adapter) Handle(ctx context.Context, ic *sip.InboundCall) {
	c := &inbound{a: a, ic: ic}
	a.wg.Add(1)
	go c.recordEnd()
	number, err := sessions.NormalizePhone(ic.From, a.cfg.DefaultRegion)
	if err != nil {
		a.log.Info("voice: caller has no usable number; refused", slog.String("call_id", ic.CallID))
		return
	}
	c.number = number
	cust, err := channels.ResolvePhone(ctx, a.o.Store, number, ic.Verified)
	if err != nil {
		a.log.Warn("voice: resolving the caller failed; refused", slog.String("number", redact.Phone(number)), slog.Any("error", err))
		return
	}
	payload, _ := json.Marshal(CallEvent{Step: StepIncoming, Direction: "in", Number: redact.Phone(number), Verified: ic.Verified})
	conv, ev, _, err := a.o.Store.Intake(ctx, "", sessions.Event{CustomerID: cust.ID, Kind: sessions.KindCall,
		Channel: sessions.ChannelVoice, Author: "customer", ExternalID: "call:" + callKey(ic.CallID) + ":" + StepIncoming,
		Payload: payload})
	if err != nil {
		a.log.Warn("voice: recording the call failed; refused", slog.String("customer", cust.ID), slog.Any("error", err))
		return
	}
	if conv.Status == sessions.StatusPending {
		// The conversation waited on the customer, who is calling now:
		// open it, so the routing service routes it.
		open := sessions.StatusOpen
		if conv, _, err = a.o.Store.UpdateConversation(ctx, conv.ID, sessions.ConversationUpdate{Status: &open,
			Event: sessions.Event{Kind: sessions.KindStatusChange, Author: AuthorVoice}}); err != nil {
			a.log.Warn("voice: reopening the conversation failed", slog.String("conversation", conv.ID), slog.Any("error", err))
		}
	}
	c.customer, c.conv = cust.ID, conv.ID
	// Ringback first; the hold file, when there is one, then plays as
	// early media (183) over it.
	err = ic.Ring()
	if err == nil && a.cfg.Hold != "" {
		err = ic.Hold(a.cfg.Hold)
	}
	if err != nil {
		a.log.Warn("voice: ringing the caller failed", slog.String("conversation", conv.ID), slog.Any("error", err))
	}
	c.wait(ctx, conv, ev.Seq)
}

// wait follows the router's decisions on the conversation and acts on
// them until the call is answered, abandoned or overflows.
func (c *inbound) wait(ctx context.Context, conv sessions.Conversation, after uint64) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	decisions := make(chan decision, 16)
	c.a.wg.Add(1)
	go func() {
		defer c.a.wg.Done()
		err := sessions.Follow(ctx, c.a.o.Store, c.a.o.Watcher, c.customer, after, func(ev sessions.Event) error {
			if ev.ConversationID != c.conv || ev.Author != sessions.AuthorRouter ||
				(ev.Kind != sessions.KindOffer && ev.Kind != sessions.KindAssignment) {
				return nil
			}
			var d decision
			if json.Unmarshal(ev.Payload, &d) != nil {
				return nil
			}
			select {
			case decisions <- d:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil && ctx.Err() == nil {
			c.a.log.Warn("voice: following the conversation failed", slog.String("conversation", c.conv), slog.Any("error", err))
		}
	}()
	ring := c.a.cfg.ringTime()
	if conv.Assignee != "" {
		// Sticky: the conversation's rep takes the call, or it overflows.
		if !c.ring(ctx, conv.Assignee, ring, false) && c.waiting(ctx) {
			c.overflowCall(ctx)
		}
		return
	}
	maxWait := time.NewTimer(c.a.cfg.maxWait() - time.Since(c.ic.Received))
	defer maxWait.Stop()
	for {
		select {
		case <-c.ic.Gone():
			return // abandoned: recordEnd writes it
		case <-ctx.Done():
			return
		case <-maxWait.C:
			c.overflowCall(ctx)
			return
		case d := <-decisions:
			switch d.Kind {
			case "offer":
				if c.ring(ctx, d.RepID, time.Until(d.ExpiresAt), true) {
					return
				}
			case "assign", "accepted":
				if c.ring(ctx, d.RepID, ring, false) {
					return
				}
				if c.waiting(ctx) {
					c.overflowCall(ctx)
				}
				return
			case "overflow":
				c.overflowCall(ctx)
				return
			}
		}
	}
}

// waiting reports whether the caller is still there, unanswered.
func (c *inbound) waiting(ctx context.Context) bool {
	select {
	case <-c.ic.Gone():
		return false
	case <-ctx.Done():
		return false
	default:
		return true
	}
}

// ring rings rep's phone for up to d. Answered, the caller is bridged to
// the rep and, for an offer, the rep's acceptance is appended (the router
// then assigns the conversation). It reports whether the rep answered.
func (c *inbound) ring(ctx context.Context, rep string, d time.Duration, offered bool) bool {
	if d <= 0 || !c.waiting(ctx) {
		return false
	}
	uri, err := c.a.o.RepURI(rep)
	if err != nil || uri == "" {
		c.a.log.Warn("voice: rep has no sip_uri; the offer will lapse", slog.String("rep", rep))
		return false
	}
	c.rings++
	n := strconv.Itoa(c.rings)
	c.record(ctx, StepRinging+":"+n, CallEvent{Step: StepRinging, Rep: rep})
	start := time.Now()
	err = c.ic.Connect(ctx, dialer.RepLeg{ID: rep, URI: uri}, d)
	rang := time.Since(start).Milliseconds()
	if err != nil {
		if !c.waiting(ctx) {
			return false
		}
		code := 0
		if errors.Is(err, sip.ErrNoAnswer) {
			code = 487
		}
		c.record(ctx, StepMissed+":"+n, CallEvent{Step: StepMissed, Rep: rep, RingMS: rang, SIPCode: code})
		return false
	}
	c.rep, c.answered = rep, time.Now()
	c.record(ctx, StepAnswered, CallEvent{Step: StepAnswered, Rep: rep, RingMS: rang, SIPCode: 200,
		QueueMS: c.answered.Sub(c.ic.Received).Milliseconds()})
	if offered {
		c.accept(ctx, rep)
	}
	return true
}

// accept appends rep's acceptance of the offer, as the inbox's Accept
// does: the routing node holding the offer assigns the conversation.
func (c *inbound) accept(ctx context.Context, rep string) {
	payload, _ := json.Marshal(sessions.Offer{Rep: rep, Response: sessions.OfferAccepted})
	if _, _, err := c.a.o.Store.Append(context.WithoutCancel(ctx), sessions.Event{CustomerID: c.customer, ConversationID: c.conv,
		Kind: sessions.KindOffer, Channel: sessions.ChannelSystem, Author: "rep:" + rep, Payload: payload}); err != nil {
		c.a.log.Warn("voice: recording the rep's acceptance failed", slog.String("conversation", c.conv), slog.Any("error", err))
	}
}

// overflowCall sends the caller to voicemail, or asks for a callback and
// lets the UA tell the caller unavailable.
func (c *inbound) overflowCall(ctx context.Context) {
	if vm := c.a.cfg.Voicemail; vm != "" {
		c.overflow = OutcomeVoicemail
		c.record(ctx, StepOverflow, CallEvent{Step: StepOverflow, Outcome: OutcomeVoicemail,
			QueueMS: time.Since(c.ic.Received).Milliseconds()})
		if err := c.ic.Connect(ctx, dialer.RepLeg{ID: OutcomeVoicemail, URI: vm}, c.a.cfg.ringTime()); err == nil {
			c.answered = time.Now()
			return
		}
		c.a.log.Warn("voice: voicemail did not answer; asking for a callback", slog.String("conversation", c.conv))
	}
	c.overflow = OutcomeCallback
	c.record(ctx, StepOverflow, CallEvent{Step: StepOverflow, Outcome: OutcomeCallback,
		QueueMS: time.Since(c.ic.Received).Milliseconds()})
	if c.a.o.Callback != nil {
		if err := c.a.o.Callback(context.WithoutCancel(ctx), c.customer, c.ic.CallID); err != nil {
			c.a.log.Warn("voice: callback request failed", slog.String("customer", c.customer), slog.Any("error", err))
		}
	}
}

// recordEnd waits for the call's last Progress and records how it ended.
// Nothing is recorded for a call refused before it reached the timeline.
func (c *inbound) recordEnd() {
	defer c.a.wg.Done()
	var end dialer.Progress
	for p := range c.ic.Events() {
		end = p
	}
	if c.conv == "" || end.Kind != dialer.ProgressEnded {
		return
	}
	ev := CallEvent{Step: StepEnded, Outcome: string(end.Outcome), SIPCode: end.SIPCode, HungUpBy: end.HungUpBy, Rep: c.rep}
	switch {
	case !c.answered.IsZero():
		ev.TalkMS = end.At.Sub(c.answered).Milliseconds()
		if c.overflow == OutcomeVoicemail {
			ev.Outcome = OutcomeVoicemail
		}
	case end.Outcome == dialer.OutcomeAbandoned:
		ev.QueueMS = end.At.Sub(c.ic.Received).Milliseconds()
	case c.overflow != "":
		ev.Outcome = c.overflow
		ev.QueueMS = end.At.Sub(c.ic.Received).Milliseconds()
	default:
		ev.Outcome, ev.HungUpBy = OutcomeUnavailable, "gateway"
	}
	c.record(context.Background(), StepEnded, ev)
}
