package routing

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// handle is one event from the change feed.
func (s *Service) handle(_ context.Context, ev sessions.Event) {
	if ev.ConversationID == "" || ev.Author == sessions.AuthorRouter {
		// The router's own writes: the node that made them holds the
		// task; the others learn the rep's load on the next sync.
		return
	}
	switch ev.Kind {
	case sessions.KindMessageIn, sessions.KindIntegrator, sessions.KindCall:
		// The customer (or an integrator) wants a human. Sticky: a
		// conversation this router holds, or one with an assignee, needs
		// nothing. Calls the customer did not make (the dialer's) are
		// bridged by the dialer, not routed here.
		if ev.Kind == sessions.KindCall && ev.Author != "customer" {
			return
		}
		if _, err := s.r.Task(ev.ConversationID); err == nil {
			return
		}
		s.apply(s.route(ev.ConversationID, ev.Channel, ev.Time))
	case sessions.KindAssignment, sessions.KindTransfer:
		s.apply(s.settle(ev.ConversationID))
	case sessions.KindOffer:
		s.answer(ev)
	case sessions.KindStatusChange:
		if ev.Author == sessions.ChannelSystem && changeTo(ev.Payload) == sessions.StatusOpen {
			// A channel opened the conversation for the customer's
			// message, which follows and routes it.
			return
		}
		_, err := s.r.Task(ev.ConversationID)
		held := err == nil
		s.apply(s.settle(ev.ConversationID))
		if held && s.cfg.OwnerOnResolve {
			s.ownerOnResolve(ev)
		}
	}
}

func changeTo(payload json.RawMessage) sessions.ConversationStatus {
	var p sessions.ConversationChange
	_ = json.Unmarshal(payload, &p)
	return p.Status
}

// route enqueues the conversation if it is open and unassigned.
func (s *Service) route(conv, channel string, since time.Time) []router.Decision {
	defer s.lock(conv)()
	cv, err := s.store.Conversation(s.ctx, conv)
	if err != nil {
		if !errors.Is(err, sessions.ErrNotFound) {
			s.fail("read conversation", err, slog.String("conversation", conv))
		}
		return nil
	}
	if cv.Status != sessions.StatusOpen || cv.Assignee != "" {
		return nil
	}
	return s.enqueueLocked(cv, channel, since)
}

// enqueueLocked makes cv a router task. The caller holds cv's lock and
// has checked it is open and unassigned.
func (s *Service) enqueueLocked(cv sessions.Conversation, channel string, since time.Time) []router.Decision {
	if _, err := s.r.Task(cv.ID); err == nil {
		return nil
	}
	cust, err := s.store.Customer(s.ctx, cv.CustomerID)
	if err != nil {
		s.fail("read customer", err, slog.String("conversation", cv.ID))
		return nil
	}
	switch channel {
	case "", sessions.ChannelSystem, sessions.ChannelAPI:
		channel = cv.Channel
	}
	t := router.TaskFor(cust, cv, channel)
	t.Language = s.language(cust.Locale)
	t.EnqueuedAt = since
	d, err := s.r.Enqueue(s.ctx, t)
	if errors.Is(err, router.ErrDuplicate) {
		return nil // another node routes it
	}
	if err != nil {
		s.fail("enqueue", err, slog.String("conversation", cv.ID))
		return nil
	}
	return []router.Decision{d}
}

// language is the language a customer needs: their locale's primary tag,
// when some rep speaks it; else none, so no task waits for a language
// nobody has.
func (s *Service) language(locale string) string {
	tag, _, _ := strings.Cut(strings.ToLower(locale), "-")
	tag, _, _ = strings.Cut(tag, "_")
	if s.langs[tag] {
		return tag
	}
	return ""
}

// settle reads the conversation and makes what the router holds for it
// match: a task for an open, unassigned conversation; the assignee's
// active task for an open or pending assigned one; nothing otherwise.
func (s *Service) settle(conv string) []router.Decision {
	defer s.lock(conv)()
	if ts, err := s.r.Task(conv); err == nil && ts.Reserved {
		return nil // a reservation, not a conversation: Release ends it
	}
	cv, err := s.store.Conversation(s.ctx, conv)
	if errors.Is(err, sessions.ErrNotFound) {
		return s.releaseLocked(conv)
	}
	if err != nil {
		s.fail("read conversation", err, slog.String("conversation", conv))
		return nil
	}
	return s.settleLocked(cv)
}

func (s *Service) settleLocked(cv sessions.Conversation) []router.Decision {
	var out []router.Decision
	if ts, err := s.r.Task(cv.ID); err == nil {
		switch {
		case cv.Status.Active() && cv.Assignee != "" && ts.Status == "active" && ts.RepID == cv.Assignee:
			return nil
		case cv.Status == sessions.StatusOpen && cv.Assignee == "" && (ts.Status == "waiting" || ts.Status == "offered"):
			return nil
		}
		out = s.releaseLocked(cv.ID)
	}
	switch {
	case !cv.Status.Active():
	case cv.Assignee == "":
		if cv.Status == sessions.StatusOpen {
			out = append(out, s.enqueueLocked(cv, cv.Channel, cv.UpdatedAt)...)
		}
	default:
		s.adoptLocked(cv)
	}
	return out
}

func (s *Service) releaseLocked(conv string) []router.Decision {
	ds, err := s.r.Release(s.ctx, conv)
	if err != nil && !errors.Is(err, router.ErrUnknownTask) {
		s.fail("release", err, slog.String("conversation", conv))
	}
	return ds
}

// adoptLocked makes the router hold cv as its assignee's: an assignment a
// person made, or one a dead node made. Another live node holding it
// keeps it.
func (s *Service) adoptLocked(cv sessions.Conversation) {
	cust, err := s.store.Customer(s.ctx, cv.CustomerID)
	if err != nil {
		s.fail("read customer", err, slog.String("conversation", cv.ID))
		return
	}
	err = s.r.Adopt(s.ctx, router.TaskFor(cust, cv, cv.Channel), cv.Assignee)
	switch {
	case err == nil, errors.Is(err, router.ErrTaken):
	case errors.Is(err, router.ErrUnknownRep):
		s.log.Debug("routing: assignee is not a routed rep", slog.String("conversation", cv.ID))
	default:
		s.fail("adopt", err, slog.String("conversation", cv.ID))
	}
}

// record writes an assignment on the timeline: the conversation's new
// assignee and an assignment event whose payload is the decision. The
// conversation is read again first: if it was resolved or assigned in the
// meantime (by a person, or by another node after this one lost its
// lease), the router's hold is settled instead and nothing is written.
func (s *Service) record(d router.Decision) []router.Decision {
	defer s.lock(d.ConversationID)()
	if ts, err := s.r.Task(d.ConversationID); err == nil && ts.Reserved {
		return nil // Reserve's caller is told; there is no conversation to write
	}
	cv, err := s.store.Conversation(s.ctx, d.ConversationID)
	if err != nil {
		if errors.Is(err, sessions.ErrNotFound) {
			return s.releaseLocked(d.ConversationID)
		}
		s.fail("read conversation", err, slog.String("conversation", d.ConversationID))
		return s.releaseLocked(d.ConversationID) // the reconcile scan routes it again
	}
	if ts, err := s.r.Task(cv.ID); err != nil || ts.Status != "active" || ts.RepID != d.RepID {
		return nil // settled already (released or reassigned meanwhile)
	}
	if cv.Status != sessions.StatusOpen || cv.Assignee != "" {
		return s.settleLocked(cv)
	}
	// Fencing: a node whose lease lapsed (a long stall) may have lost the
	// conversation to another node, which then routes it itself.
	if ok, err := s.state.Holds(s.ctx, cv.ID, d.RepID); err != nil || !ok {
		if err != nil {
			s.fail("check claim", err, slog.String("conversation", cv.ID))
		}
		return s.releaseLocked(cv.ID)
	}
	to := d.RepID
	if _, _, err := s.store.UpdateConversation(s.ctx, cv.ID, sessions.ConversationUpdate{Assignee: &to, Event: d.Event()}); err != nil {
		s.fail("record assignment", err, slog.String("conversation", cv.ID))
		return s.releaseLocked(cv.ID)
	}
	return nil
}

// recordOverflow puts an overflow decision on the timeline, so the inbox
// shows that nobody took the conversation in time and what was done.
// Acting on it (booking the callback, inviting a message) is the
// channel's, not yet built.
func (s *Service) recordOverflow(d router.Decision) {
	if _, _, err := s.store.Append(s.ctx, d.Event()); err != nil {
		s.fail("record overflow", err, slog.String("conversation", d.ConversationID))
	}
}

// offerPayload is an offer event's payload from the router: the decision,
// and (sessions.Offer) the rep and, while the offer stands, its deadline.
type offerPayload struct {
	router.Decision
	Rep       string     `json:"rep"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// recordOffer puts an offer, or its end, on the timeline: the inbox shows
// the rep Accept and Decline while the latest offer event is theirs, and
// the API checks it before taking an answer.
func (s *Service) recordOffer(d router.Decision) {
	p := offerPayload{Decision: d, Rep: d.RepID}
	if d.Kind == router.KindOffer {
		at := d.At.Add(s.acceptTimeout(d.Queue)).UTC()
		p.ExpiresAt = &at
	}
	payload, err := json.Marshal(p)
	if err != nil {
		s.fail("record offer", err, slog.String("conversation", d.ConversationID))
		return
	}
	ev := d.Event()
	ev.Kind, ev.Payload = sessions.KindOffer, payload
	if _, _, err := s.store.Append(s.ctx, ev); err != nil {
		s.fail("record offer", err, slog.String("conversation", d.ConversationID))
	}
}

func (s *Service) acceptTimeout(queue string) time.Duration {
	for _, q := range s.r.Config().Queues {
		if q.Name == queue {
			return q.Offer.AcceptTimeout
		}
	}
	return 0
}

// answer acts on a rep's answer to an offer, appended by the API. Every
// node sees it; only the one whose router holds the offer acts (the
// others do not know the task), and an answer to an offer that ended
// meanwhile (expired, withdrawn) changes nothing.
func (s *Service) answer(ev sessions.Event) {
	var o sessions.Offer
	if json.Unmarshal(ev.Payload, &o) != nil || o.Response == "" || ev.Author != "rep:"+o.Rep {
		return // not a rep's answer to their own offer
	}
	var ds []router.Decision
	var err error
	switch o.Response {
	case sessions.OfferAccepted:
		var d router.Decision
		if d, err = s.r.Accept(s.ctx, ev.ConversationID, o.Rep); err == nil {
			ds = []router.Decision{d}
		}
	case sessions.OfferDeclined:
		ds, err = s.r.Decline(s.ctx, ev.ConversationID, o.Rep)
	default:
		return
	}
	if errors.Is(err, router.ErrUnknownTask) || errors.Is(err, router.ErrNotOffered) {
		return
	}
	s.apply(ds, err)
}

// ownerOnResolve makes the rep who resolved a conversation the owner of a
// customer who has none. Only the node whose router held the conversation
// calls it (it released it), so one event gives one update.
func (s *Service) ownerOnResolve(ev sessions.Event) {
	rep, ok := strings.CutPrefix(ev.Author, "rep:")
	if !ok {
		return
	}
	if changeTo(ev.Payload) != sessions.StatusResolved {
		return
	}
	if _, err := s.r.Rep(rep); err != nil {
		return
	}
	cust, err := s.store.Customer(s.ctx, ev.CustomerID)
	if err != nil || cust.Owner != "" {
		return
	}
	if _, err := s.store.UpdateCustomer(s.ctx, cust.ID, sessions.CustomerUpdate{Owner: &rep, Author: sessions.ChannelSystem}); err != nil {
		s.fail("set owner", err, slog.String("customer", cust.ID))
	}
}
