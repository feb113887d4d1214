package kpi

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// repeatWindow is how recent a customer's previous contact must be for a
// contact to count as a repeat.
const repeatWindow = 24 * time.Hour

// assignPayload reads every assignment event's payload: the router's
// decision (kind, rep_id, queue, waited_ms; overflow), the router taking
// a conversation back (from, why) and a person's (assignee, from).
type assignPayload struct {
	Kind     string  `json:"kind"`
	RepID    string  `json:"rep_id"`
	Queue    string  `json:"queue"`
	Channel  string  `json:"channel"`
	WaitedMS int64   `json:"waited_ms"`
	Assignee *string `json:"assignee"`
	From     string  `json:"from"`
	Overflow *struct {
		Action  string `json:"action"`
		ToQueue string `json:"to_queue"`
	} `json:"overflow"`
}

// callPayload is what is read of a call event: the dialer writes the
// outcome (dialer.Outcome) when the attempt ends.
type callPayload struct {
	Outcome string `json:"outcome"`
}

func (e *Engine) handleBatch(_ context.Context, evs []sessions.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range evs {
		e.handle(ev)
	}
}

// handle counts one event. The definitions are the package doc's.
func (e *Engine) handle(ev sessions.Event) {
	switch ev.Kind {
	case sessions.KindContactRefused:
		var r sessions.ContactRefusal
		_ = json.Unmarshal(ev.Payload, &r)
		e.count(ev.Time, cSuppressed, 1, dimChannel, r.Channel)
		return
	case sessions.KindCall:
		e.call(ev)
	}
	if ev.ConversationID == "" {
		return
	}
	c := e.convs[ev.ConversationID]
	switch ev.Kind {
	case sessions.KindMessageIn:
		if ev.Author == "customer" {
			e.inbound(ev, c)
		}
	case sessions.KindMessageOut:
		if c != nil && !c.answered && strings.HasPrefix(ev.Author, "rep:") {
			c.answered = true
			rep := strings.TrimPrefix(ev.Author, "rep:")
			e.count(ev.Time, cFirstResp, 1, dimQueue, c.queue, dimChannel, c.channel, dimRep, rep)
			e.count(ev.Time, cFirstRespMS, ms(ev.Time.Sub(c.opened)), dimQueue, c.queue, dimChannel, c.channel, dimRep, rep)
		}
	case sessions.KindAssignment, sessions.KindTransfer:
		if c == nil {
			// A conversation from before this engine started: what the
			// event says is all there is (the router's decision says
			// the channel and the wait).
			c = &conv{}
			e.convs[ev.ConversationID] = c
		}
		e.assignment(ev, c)
	case sessions.KindStatusChange:
		var p sessions.ConversationChange
		_ = json.Unmarshal(ev.Payload, &p)
		if p.Status == sessions.StatusResolved && c != nil {
			e.resolved(ev, c)
		}
	}
}

// inbound is a customer's message: a new contact when it is the
// conversation's first, a merged one when it comes on another channel
// than the conversation's so far, and the start of a wait when nobody
// holds the conversation.
func (e *Engine) inbound(ev sessions.Event, c *conv) {
	if c == nil {
		c = &conv{}
		e.convs[ev.ConversationID] = c
	}
	switch {
	case c.channel == "":
		c.channel, c.opened = ev.Channel, ev.Time
		c.channels = []string{ev.Channel}
		c.queue = e.rcfg.QueueOf(ev.Channel).Name
		e.count(ev.Time, cContacts, 1, dimQueue, c.queue, dimChannel, ev.Channel)
		if last, ok := e.seen[ev.CustomerID]; ok && ev.Time.Sub(last) <= repeatWindow {
			e.count(ev.Time, cRepeat, 1, dimQueue, c.queue, dimChannel, ev.Channel)
		}
		e.seen[ev.CustomerID] = ev.Time
	case !slices.Contains(c.channels, ev.Channel):
		c.channels = append(c.channels, ev.Channel)
		e.count(ev.Time, cContacts, 1, dimQueue, c.queue, dimChannel, ev.Channel)
		e.count(ev.Time, cMerged, 1, dimQueue, c.queue, dimChannel, ev.Channel)
		e.seen[ev.CustomerID] = ev.Time
	}
	if c.rep == "" && c.waiting.IsZero() {
		e.startWait(c, ev.Time)
	}
}

func (e *Engine) startWait(c *conv, at time.Time) {
	c.waiting = at
	e.count(at, cOffered, 1, dimQueue, c.queue, dimChannel, c.channel)
}

// assignment follows who holds the conversation: the router's decisions
// (an answer, an overflow), its taking a conversation back from a rep who
// left, and people's assignments and transfers.
func (e *Engine) assignment(ev sessions.Event, c *conv) {
	var p assignPayload
	if json.Unmarshal(ev.Payload, &p) != nil {
		return
	}
	switch {
	case p.Kind == "assign" || p.Kind == "accepted":
		if p.Queue != "" {
			c.queue = p.Queue
		}
		wait := time.Duration(p.WaitedMS) * time.Millisecond
		if c.channel == "" {
			c.channel, c.channels, c.opened = p.Channel, []string{p.Channel}, ev.Time.Add(-wait)
		}
		e.answer(ev.Time, c, p.RepID, wait)
	case p.Kind == "overflow" && p.Overflow != nil:
		if p.Overflow.Action == "move" {
			c.queue = p.Overflow.ToQueue
			return
		}
		if !c.waiting.IsZero() {
			c.waiting = time.Time{}
			e.count(ev.Time, cOverflowed, 1, dimQueue, c.queue, dimChannel, c.channel)
		}
	case p.Assignee != nil:
		to := *p.Assignee
		if to == "" {
			e.release(ev.Time, c)
			if ev.Author == sessions.AuthorRouter {
				e.startWait(c, ev.Time) // taken back from a rep who left: routed again
			}
			return
		}
		if !c.waiting.IsZero() {
			e.answer(ev.Time, c, to, ev.Time.Sub(c.waiting))
			return
		}
		e.release(ev.Time, c)
		e.hold(ev.Time, c, to)
	}
}

// answer ends a wait: a rep took the contact after wait.
func (e *Engine) answer(at time.Time, c *conv, rep string, wait time.Duration) {
	c.waiting = time.Time{}
	dims := []string{dimQueue, c.queue, dimChannel, c.channel, dimRep, rep}
	e.count(at, cAnswered, 1, dims...)
	e.count(at, cWaitMS, ms(wait), dims...)
	e.count(at, waitBucket(wait), 1, dims...)
	if wait <= e.queue(c.queue, c.channel).SLTarget() {
		e.count(at, cAnsweredInSL, 1, dims...)
	}
	e.release(at, c)
	e.hold(at, c, rep)
}

// resolved ends the conversation: handled if a rep held it, abandoned if
// it still waited for its first rep.
func (e *Engine) resolved(ev sessions.Event, c *conv) {
	switch {
	case c.rep != "" || !c.assigned.IsZero():
		rep := c.rep
		dims := []string{dimQueue, c.queue, dimChannel, c.channel, dimRep, rep}
		e.count(ev.Time, cHandled, 1, dims...)
		e.count(ev.Time, cHandleMS, ms(ev.Time.Sub(c.assigned)), dims...)
		e.count(ev.Time, cResolutionMS, ms(ev.Time.Sub(c.opened)), dims...)
	case !c.waiting.IsZero():
		e.count(ev.Time, cAbandoned, 1, dimQueue, c.queue, dimChannel, c.channel)
	}
	e.release(ev.Time, c)
	delete(e.convs, ev.ConversationID)
	e.version++
}

// call counts a dialer attempt that ended: connect rate is connected /
// calls, abandon rate abandoned / connected. Events without an outcome
// (an inbound call's, the dialer's progress) are not attempts.
func (e *Engine) call(ev sessions.Event) {
	var p callPayload
	if json.Unmarshal(ev.Payload, &p) != nil || p.Outcome == "" || ev.Author == "customer" {
		return
	}
	e.count(ev.Time, cCalls, 1, dimChannel, ev.Channel)
	switch p.Outcome {
	case "answered":
		e.count(ev.Time, cConnected, 1, dimChannel, ev.Channel)
	case "abandoned":
		e.count(ev.Time, cConnected, 1, dimChannel, ev.Channel)
		e.count(ev.Time, cCallAbandon, 1, dimChannel, ev.Channel)
	}
}

func ms(d time.Duration) int64 { return max(d, 0).Milliseconds() }
