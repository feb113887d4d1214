package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

// maxText caps a message or note. Channels cap lower (an SMS, a WeChat
// text); this keeps one message well inside an event payload.
const maxText = 16 << 10

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q, err := Query(r, "status", "assignee", "channel", "customer_id", "unassigned", "limit", "cursor")
	if err != nil {
		return err
	}
	cq := sessions.ConversationQuery{
		Status:     sessions.ConversationStatus(q.Get("status")),
		Assignee:   q.Get("assignee"),
		Channel:    q.Get("channel"),
		CustomerID: q.Get("customer_id"),
		Cursor:     q.Get("cursor"),
	}
	if cq.Status != "" && !cq.Status.Valid() {
		return errorf(CodeInvalid, "status: %q is not open, pending or resolved", cq.Status)
	}
	if v := q.Get("unassigned"); v != "" {
		if cq.Unassigned, err = strconv.ParseBool(v); err != nil {
			return errorf(CodeInvalid, "unassigned: %q is not true or false", v)
		}
	}
	if cq.Unassigned && cq.Assignee != "" {
		return errorf(CodeInvalid, "assignee and unassigned=true exclude each other")
	}
	if cq.Limit, err = IntParam(q, "limit"); err != nil {
		return err
	}
	cs, next, err := s.store.Conversations(r.Context(), cq)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, NewPage(cs, next))
	return nil
}

func (s *Server) getConversation(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	c, err := s.store.Conversation(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, c)
	return nil
}

// workable loads the path's conversation and checks the principal may act
// on it: supervisors and admins on any, reps on theirs or nobody's, so two
// reps don't answer one customer at once.
func (s *Server) workable(r *http.Request, p auth.Principal) (sessions.Conversation, error) {
	c, err := s.store.Conversation(r.Context(), r.PathValue("id"))
	if err != nil {
		return c, err
	}
	if p.Role == auth.RoleRep && c.Assignee != "" && c.Assignee != p.ID {
		return c, errorf(CodeForbidden, "conversation %s is assigned to another rep", c.ID)
	}
	return c, nil
}

type textRequest struct {
	Text string `json:"text"`
	// ClientID is the sender's id for the message; a retry with the same
	// client id returns the first result and sends nothing.
	ClientID string `json:"client_id"`
}

func (t textRequest) validate(clientIDRequired bool) error {
	switch {
	case strings.TrimSpace(t.Text) == "":
		return errorf(CodeInvalid, "text is required")
	case len(t.Text) > maxText:
		return errorf(CodeInvalid, "text is longer than %d bytes", maxText)
	case !utf8.ValidString(t.Text):
		return errorf(CodeInvalid, "text is not UTF-8")
	case clientIDRequired && t.ClientID == "":
		return errorf(CodeInvalid, "client_id is required, so a retry is not sent twice")
	case len(t.ClientID) > 256:
		return errorf(CodeInvalid, "client_id is longer than 256 bytes")
	}
	return nil
}

type messageResponse struct {
	Event sessions.Event `json:"event"`
	// Receipt is the channel's answer; absent on a replay of a client id.
	Receipt *channels.Receipt `json:"receipt,omitempty"`
}

// postMessage sends a rep's message to the customer through the Sender,
// which picks the channel the customer last wrote on in the conversation
// and records the message before sending it (see channels.Sender.Send for
// that order and why).
func (s *Server) postMessage(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	var req textRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if err := req.validate(true); err != nil {
		return err
	}
	c, err := s.workable(r, p)
	if err != nil {
		return err
	}
	if c.Status == sessions.StatusResolved {
		return errorf(CodeConflict, "conversation %s is resolved; reopen it to reply", c.ID)
	}
	return s.send(w, r, channels.Request{CustomerID: c.CustomerID, Conversation: &c,
		Message: sessions.Message{Text: req.Text, ClientID: req.ClientID}, Author: p.Author(), Purpose: channels.PurposeReply})
}

// send makes one Sender call and answers: 201 with the event and the
// channel's receipt, 200 with the recorded event on a replay of the
// client id, else the refusal or failure from the catalogue (sendError);
// a contact policy's refusal is recorded on the timeline (refused).
func (s *Server) send(w http.ResponseWriter, r *http.Request, req channels.Request) error {
	if s.outbound == nil {
		return errorf(CodeChannelUnavailable, "no channel is connected; nothing was sent or recorded")
	}
	res, err := s.outbound.Send(r.Context(), req)
	if refusal, ok := errors.AsType[*channels.RefusedError](err); ok {
		s.refused(r.Context(), req, refusal)
	}
	if err != nil {
		return sendError(err)
	}
	if res.Receipt == nil {
		WriteJSON(w, http.StatusOK, messageResponse{Event: res.Event})
		return nil
	}
	WriteJSON(w, http.StatusCreated, messageResponse{Event: res.Event, Receipt: res.Receipt})
	return nil
}

// sameText reports whether a stored note (found by its client id) is the
// same request as the one being retried, not a reuse of the id.
func sameText(ev sessions.Event, kind sessions.EventKind, conversationID string, want sessions.Message) bool {
	var got sessions.Message
	return ev.Kind == kind && ev.ConversationID == conversationID &&
		json.Unmarshal(ev.Payload, &got) == nil && got.Text == want.Text && got.ClientID == want.ClientID
}

// postNote adds an internal note: never sent to the customer, so any rep
// may add one to any conversation (a supervisor's advice, a handover).
func (s *Server) postNote(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	var req textRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if err := req.validate(false); err != nil {
		return err
	}
	c, err := s.store.Conversation(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	note := sessions.Message{Text: req.Text, ClientID: req.ClientID}
	payload, err := json.Marshal(note)
	if err != nil {
		return err
	}
	ev, appended, err := s.store.Append(r.Context(), sessions.Event{
		CustomerID: c.CustomerID, ConversationID: c.ID, Kind: sessions.KindNote,
		Channel: sessions.ChannelSystem, ExternalID: req.ClientID, Author: p.Author(), Payload: payload,
	})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !appended {
		if !sameText(ev, sessions.KindNote, c.ID, note) {
			return errorf(CodeConflict, "client_id was already used for a different note")
		}
		status = http.StatusOK
	}
	WriteJSON(w, status, messageResponse{Event: ev})
	return nil
}

type assignRequest struct {
	// Assignee is a rep id; "" hands the conversation back to the queue.
	Assignee *string `json:"assignee"`
}

// changeResponse is the conversation after a change and the event that
// recorded it; Event is absent when nothing needed to change.
type changeResponse struct {
	Conversation sessions.Conversation `json:"conversation"`
	Event        *sessions.Event       `json:"event,omitempty"`
}

// assignmentChange extends sessions.ConversationChange with who had it
// before, so a transfer reads "from alice to bob" on the timeline.
type assignmentChange struct {
	Status   sessions.ConversationStatus `json:"status"`
	Assignee string                      `json:"assignee,omitempty"`
	From     string                      `json:"from,omitempty"`
}

func (s *Server) assign(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	var req assignRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if req.Assignee == nil {
		return errorf(CodeInvalid, `assignee is required ("" to unassign)`)
	}
	to := *req.Assignee
	if to != "" {
		if _, ok := s.auth.Rep(to); !ok {
			return errorf(CodeInvalid, "assignee: no rep %q", to)
		}
	}
	c, err := s.workable(r, p)
	if err != nil {
		return err
	}
	if c.Assignee == to {
		WriteJSON(w, http.StatusOK, changeResponse{Conversation: c})
		return nil
	}
	kind := sessions.KindAssignment
	if c.Assignee != "" && to != "" {
		kind = sessions.KindTransfer
	}
	payload, err := json.Marshal(assignmentChange{Status: c.Status, Assignee: to, From: c.Assignee})
	if err != nil {
		return err
	}
	return s.update(w, r, c.ID, sessions.ConversationUpdate{
		Assignee: &to,
		Event:    sessions.Event{Kind: kind, Author: p.Author(), Payload: payload},
	})
}

// resolve and reopen are idempotent: asking for the state a conversation
// is already in answers 200 with no event, so a double click records
// nothing twice. Reopen also takes a pending (snoozed) conversation back
// to open.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	return s.setStatus(w, r, p, sessions.StatusResolved)
}

func (s *Server) reopen(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	return s.setStatus(w, r, p, sessions.StatusOpen)
}

func (s *Server) setStatus(w http.ResponseWriter, r *http.Request, p auth.Principal, to sessions.ConversationStatus) error {
	if _, err := Query(r); err != nil {
		return err
	}
	if err := decodeJSON(r, &struct{}{}, true); err != nil {
		return err
	}
	c, err := s.workable(r, p)
	if err != nil {
		return err
	}
	if c.Status == to {
		WriteJSON(w, http.StatusOK, changeResponse{Conversation: c})
		return nil
	}
	return s.update(w, r, c.ID, sessions.ConversationUpdate{
		Status: &to,
		Event:  sessions.Event{Kind: sessions.KindStatusChange, Author: p.Author()},
	})
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, id string, u sessions.ConversationUpdate) error {
	c, ev, err := s.store.UpdateConversation(r.Context(), id, u)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, changeResponse{Conversation: c, Event: &ev})
	return nil
}

// acceptOffer and declineOffer answer a routing offer. They only record
// the rep's answer (an offer event): the gateway node whose router holds
// the offer acts on it from the change feed, so it works whichever node
// took the request. The answer is 202: the assignment (or the next offer)
// follows on the timeline.
func (s *Server) acceptOffer(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	return s.answerOffer(w, r, p, sessions.OfferAccepted)
}

func (s *Server) declineOffer(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	return s.answerOffer(w, r, p, sessions.OfferDeclined)
}

// offerLookback is how many events back from the latest the offer is
// looked for: an offer stands only while nothing much has happened since.
const offerLookback = 500

func (s *Server) answerOffer(w http.ResponseWriter, r *http.Request, p auth.Principal, answer string) error {
	if _, err := Query(r); err != nil {
		return err
	}
	if err := decodeJSON(r, &struct{}{}, true); err != nil {
		return err
	}
	c, err := s.store.Conversation(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	o, found, err := s.latestOffer(r, c)
	if err != nil {
		return err
	}
	switch {
	case !found:
		return errorf(CodeConflict, "conversation %s has no offer", c.ID)
	case o.Rep != p.ID && o.Response == "" && o.Kind == "offer":
		return errorf(CodeForbidden, "conversation %s is offered to another rep", c.ID)
	case o.Response != "" || o.Kind != "offer" || c.Status != sessions.StatusOpen || c.Assignee != "":
		return errorf(CodeConflict, "the offer of conversation %s has ended or been answered", c.ID)
	case !o.ExpiresAt.IsZero() && time.Now().After(o.ExpiresAt):
		return errorf(CodeConflict, "the offer of conversation %s expired", c.ID)
	}
	payload, err := json.Marshal(sessions.Offer{Rep: p.ID, Response: answer})
	if err != nil {
		return err
	}
	ev, _, err := s.store.Append(r.Context(), sessions.Event{
		CustomerID: c.CustomerID, ConversationID: c.ID, Kind: sessions.KindOffer,
		Channel: sessions.ChannelSystem, Author: p.Author(), Payload: payload,
	})
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusAccepted, messageResponse{Event: ev})
	return nil
}

// latestOffer returns the payload of the conversation's latest offer
// event, reading the customer's timeline backwards.
func (s *Server) latestOffer(r *http.Request, c sessions.Conversation) (sessions.Offer, bool, error) {
	last, err := s.store.LastSeq(r.Context(), c.CustomerID)
	if err != nil {
		return sessions.Offer{}, false, err
	}
	const page = 100
	for end := last; end > 0 && last-end < offerLookback; {
		after := end - min(end, page)
		evs, err := s.store.Timeline(r.Context(), c.CustomerID, after, int(end-after))
		if err != nil {
			return sessions.Offer{}, false, err
		}
		for i := len(evs) - 1; i >= 0; i-- {
			ev := evs[i]
			if ev.Kind != sessions.KindOffer || ev.ConversationID != c.ID {
				continue
			}
			var o sessions.Offer
			if err := json.Unmarshal(ev.Payload, &o); err != nil {
				return sessions.Offer{}, false, fmt.Errorf("api: offer event %s: %w", ev.ID, err)
			}
			return o, true, nil
		}
		end = after
	}
	return sessions.Offer{}, false, nil
}
