package inbox

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// A view is a list a socket follows besides its own conversations, which
// it always gets. Which views a role may follow is allowedViews: the API
// lets a rep act only on their own and unassigned conversations
// (api.workable), so a rep's socket carries nothing of another rep's.
type view int

const (
	// viewUnassigned: active conversations nobody has, as coalesced
	// conversations frames.
	viewUnassigned view = iota
	// viewAll: every conversation, as coalesced conversations frames.
	viewAll
	// viewEvents: every event of every customer, one frame each (the
	// feed before issue 15, for monitoring tools): per-event fan-out, so
	// supervisors and admins only.
	viewEvents
	numViews
)

// listViews are the views served by coalesced conversations frames.
var listViews = [...]view{viewUnassigned, viewAll}

var viewNames = [numViews]string{"unassigned", "all", "events"}

func parseView(s string) (view, bool) {
	i := slices.Index(viewNames[:], s)
	return view(i), i >= 0
}

// allowedViews are the views a role may follow, in the order ready lists
// them.
func allowedViews(supervisorOrAdmin bool) []string {
	if supervisorOrAdmin {
		return viewNames[:]
	}
	return viewNames[:viewAll]
}

type conversationsFrame struct {
	Type          string                  `json:"type"`
	View          string                  `json:"view"`
	Conversations []sessions.Conversation `json:"conversations"`
}

type resyncFrame struct {
	Type string `json:"type"`
	View string `json:"view"`
}

type viewsFrame struct {
	Type  string   `json:"type"`
	Views []string `json:"views"`
}

// routed is the rep an event offers or assigns a conversation to: the
// router's assignment payload (rep_id) or an offer answer (rep).
func routed(ev sessions.Event) string {
	if ev.Kind != sessions.KindAssignment && ev.Kind != sessions.KindOffer {
		return ""
	}
	var p struct {
		Rep   string `json:"rep"`
		RepID string `json:"rep_id"`
	}
	if json.Unmarshal(ev.Payload, &p) != nil {
		return ""
	}
	// The routing service's offer events carry both (the decision's
	// rep_id and the offer's rep), naming one rep.
	if p.RepID != "" {
		return p.RepID
	}
	return p.Rep
}

// dispatch routes one event of the change feed. It runs on the feed's one
// worker, which alone touches h.convs. The event (and, after an
// assignment, transfer or status change, the conversation freshly read)
// goes at once to the sockets it concerns directly: those watching the
// customer, the conversation's assignee before and after the event, the
// rep it is offered to, and the events view. The list views only mark
// the conversation changed; flush sends each view's changes, coalesced,
// once per ListFlushInterval. So an event costs a handful of writes
// however many sockets are open, and a burst of new conversations costs
// each list socket one frame per interval.
func (h *Hub) dispatch(ev sessions.Event) {
	if ev.ConversationID == "" {
		h.mu.Lock()
		defer h.mu.Unlock()
		if ev.Kind == sessions.KindMerged { // rare, and any list may hold the customer
			f := newFrame(eventFrame{Type: frameEvent, Event: ev})
			for c := range h.conns {
				c.write(f)
			}
			return
		}
		h.deliverLocked(ev, nil, ev.CustomerID)
		return
	}
	prev, known := h.convs[ev.ConversationID]
	cur := prev
	var conv *sessions.Conversation
	if !known || changesConversation(ev.Kind) {
		ctx, cancel := context.WithTimeout(h.ctx, 2*time.Second)
		c, err := h.store.Conversation(ctx, ev.ConversationID)
		cancel()
		switch {
		case err == nil:
			cur = c
			if changesConversation(ev.Kind) {
				conv = &c
			}
		case h.ctx.Err() == nil:
			// The event still goes to those watching; its payload says
			// what changed.
			h.log.Warn("inbox: reading a changed conversation", "conversation", ev.ConversationID, "err", err)
		}
	}
	if cur.ID != "" {
		if ev.Seq > cur.LastSeq && ev.CustomerID == cur.CustomerID {
			cur.LastSeq = ev.Seq
			cur.UpdatedAt = later(cur.UpdatedAt, ev.Time)
		}
		if cur.Status.Active() {
			h.convs[cur.ID] = cur
		} else {
			delete(h.convs, cur.ID) // resolved: its next event reads it again
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deliverLocked(ev, conv, ev.CustomerID, prev.Assignee, cur.Assignee, routed(ev))
	if cur.ID == "" {
		return
	}
	h.markLocked(viewAll, cur)
	if (known && prev.Assignee == "" && prev.Status.Active()) || (cur.Assignee == "" && cur.Status.Active()) {
		h.markLocked(viewUnassigned, cur)
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// deliverLocked writes ev's frame, then conv's if set, once to every
// socket watching customerID, of one of reps, or following the events
// view. The frames are built for the first of them: most events of a
// burst concern no socket at all.
func (h *Hub) deliverLocked(ev sessions.Event, conv *sessions.Conversation, customerID string, reps ...string) {
	var seen []*conn
	var f, cf *outFrame
	send := func(c *conn) {
		if slices.Contains(seen, c) {
			return
		}
		seen = append(seen, c)
		if f == nil {
			f = newFrame(eventFrame{Type: frameEvent, Event: ev})
			if conv != nil {
				cf = newFrame(conversationFrame{Type: frameConversation, Conversation: *conv})
			}
		}
		c.write(f)
		if cf != nil {
			c.write(cf)
		}
	}
	for c := range h.watchers[customerID] {
		send(c)
	}
	for _, r := range reps {
		if r != "" {
			for c := range h.byRep[r] {
				send(c)
			}
		}
	}
	for c := range h.subs[viewEvents] {
		send(c)
	}
}

// markLocked records c as changed for a list view, if anyone follows it.
// A later change of the same conversation replaces it: that is the
// coalescing.
func (h *Hub) markLocked(v view, c sessions.Conversation) {
	if len(h.subs[v]) == 0 {
		return
	}
	if h.dirty[v] == nil {
		h.dirty[v] = map[string]sessions.Conversation{}
	}
	h.dirty[v][c.ID] = c
}

// flushLoop sends the list views' changes every ListFlushInterval until
// the hub closes.
func (h *Hub) flushLoop() {
	t := time.NewTicker(h.cfg.ListFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
			h.flush()
		}
	}
}

// flush sends each list view's changed conversations as one frame,
// marshalled (and masked) once for all its sockets. More changes than
// MaxListBatch become a resync frame instead: the client reloads the
// list over REST, which is cheaper than the frames, and no socket is cut
// off for a burst.
func (h *Hub) flush() {
	h.mu.Lock()
	batches := h.dirty
	h.dirty = [numViews]map[string]sessions.Conversation{}
	h.mu.Unlock()
	for _, v := range listViews {
		b := batches[v]
		if len(b) == 0 {
			continue
		}
		var f *outFrame
		if len(b) > h.cfg.MaxListBatch {
			f = newFrame(resyncFrame{Type: frameResync, View: viewNames[v]})
		} else {
			cs := make([]sessions.Conversation, 0, len(b))
			for _, c := range b {
				cs = append(cs, c)
			}
			slices.SortFunc(cs, func(x, y sessions.Conversation) int { return strings.Compare(x.ID, y.ID) })
			f = newFrame(conversationsFrame{Type: frameConversations, View: viewNames[v], Conversations: cs})
		}
		h.mu.Lock()
		for c := range h.subs[v] {
			c.write(f)
		}
		h.mu.Unlock()
	}
}

// follow sets the views c follows and acknowledges them with a views
// frame, under mu: every change after the acknowledgement reaches c, so
// the client reloads its list over REST once it has it.
func (h *Hub) follow(c *conn, views []view) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for v := range numViews {
		delete(h.subs[v], c)
	}
	names := make([]string, 0, len(views))
	for _, v := range views {
		if h.subs[v] == nil {
			h.subs[v] = map[*conn]struct{}{}
		}
		h.subs[v][c] = struct{}{}
		names = append(names, viewNames[v])
	}
	c.write(newFrame(viewsFrame{Type: frameViews, Views: names}))
}
