package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
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
	q, err := query(r, "status", "assignee", "channel", "customer_id", "unassigned", "limit", "cursor")
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
	if cq.Limit, err = intParam(q, "limit"); err != nil {
		return err
	}
	cs, next, err := s.store.Conversations(r.Context(), cq)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, newPage(cs, next))
	return nil
}

func (s *Server) getConversation(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := query(r); err != nil {
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

// deliveryStatus is the payload of the delivery_status event recorded
// after every send attempt.
type deliveryStatus struct {
	EventID string `json:"event_id"`
	// Status is "sent" or "failed".
	Status     string `json:"status"`
	ProviderID string `json:"provider_id,omitempty"`
	Error      string `json:"error,omitempty"`
}

// postMessage sends a rep's message to the customer on the channel the
// customer last wrote on in the conversation (see replyChannel), recorded
// on the message_out event.
//
// Order: check the adapter, append, then send. Appending first means that
// by the time anything reaches the customer the message is on the timeline
// (durable, with its sequence), so a crash after sending can't leave a
// message the customer read and no rep can see, and a retry with the same
// client id finds the stored event and sends nothing: at most one delivery
// per client id, which is what a customer would expect of "never contacted
// twice for the same thing". The price is that a crash between append and
// send leaves a message recorded but not sent; the missing delivery_status
// shows it, and the rep can resend with a new client id. Sending first
// would instead risk the worse failure: a delivered message with no record
// and a retry that delivers it again.
//
// The adapter is looked up before the append so a channel that is not
// connected answers 503 with nothing written.
func (s *Server) postMessage(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := query(r); err != nil {
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
	ch, err := s.replyChannel(r.Context(), c)
	if err != nil {
		return err
	}
	adapter, err := s.channels.Get(ch)
	if err != nil {
		return errorf(CodeChannelUnavailable, "channel %q is not connected; nothing was sent or recorded", ch)
	}
	ids, err := s.store.Identities(r.Context(), c.CustomerID)
	if err != nil {
		return err
	}
	if chk, ok := adapter.(sendChecker); ok {
		// A reply the channel would refuse before reaching the network is
		// refused here, with nothing recorded.
		if err := chk.CanSend(r.Context(), c.CustomerID, ids); err != nil {
			if e := refusal(ch, err, "nothing was sent or recorded"); e != nil {
				return e
			}
			if errors.Is(err, channels.ErrNoAdapter) {
				return &Error{Code: CodeChannelUnavailable, cause: err,
					Message: fmt.Sprintf("channel %q can't reach the customer; nothing was sent or recorded", ch)}
			}
			return err
		}
	}
	msg := sessions.Message{Text: req.Text, ClientID: req.ClientID}
	payload, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	ev, appended, err := s.store.Append(r.Context(), sessions.Event{
		CustomerID: c.CustomerID, ConversationID: c.ID, Kind: sessions.KindMessageOut,
		Channel: ch, ExternalID: req.ClientID, Author: p.Author(), Payload: payload,
	})
	if err != nil {
		return err
	}
	if !appended {
		if !sameText(ev, sessions.KindMessageOut, c.ID, msg) {
			return errorf(CodeConflict, "client_id was already used for a different message")
		}
		WriteJSON(w, http.StatusOK, messageResponse{Event: ev})
		return nil
	}

	// The message is recorded: finish the send even if the client hangs up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.sendTimeout())
	defer cancel()
	receipt, sendErr := adapter.Send(ctx, channels.Outbound{
		CustomerID: c.CustomerID, ConversationID: c.ID, EventID: ev.ID, Identities: ids, Message: msg,
	})
	ds := deliveryStatus{EventID: ev.ID, Status: "sent", ProviderID: receipt.ID}
	if sendErr != nil {
		ds = deliveryStatus{EventID: ev.ID, Status: "failed", Error: sendFailure(sendErr)}
		s.countSend(ch, "failed")
	} else {
		s.countSend(ch, "sent")
	}
	dsPayload, _ := json.Marshal(ds)
	if _, _, err := s.store.Append(ctx, sessions.Event{
		CustomerID: c.CustomerID, ConversationID: c.ID, Kind: sessions.KindDelivery,
		Channel: ch, Author: sessions.ChannelSystem, Payload: dsPayload,
	}); err != nil {
		// The message went out (or didn't) whatever happens to its
		// status record; the answer below is still the truth.
		s.log.LogAttrs(ctx, slog.LevelWarn, "recording delivery status failed",
			slog.String("event_id", ev.ID), slog.String("channel", ch), slog.Any("error", err))
	}
	if sendErr != nil {
		// writeError logs the cause (adapters keep addresses out of errors).
		if e := refusal(ch, sendErr, "the message is recorded as failed"); e != nil {
			return e
		}
		if errors.Is(sendErr, channels.ErrNoAdapter) {
			return &Error{Code: CodeChannelUnavailable, cause: sendErr,
				Message: fmt.Sprintf("channel %q could not reach the customer; the message is recorded as failed", ch)}
		}
		return &Error{Code: CodeSendFailed, Message: "the channel did not accept the message; it is recorded as failed, retry with a new client_id", cause: sendErr}
	}
	WriteJSON(w, http.StatusCreated, messageResponse{Event: ev, Receipt: &receipt})
	return nil
}

// replyTail bounds how far back replyChannel looks for the customer's
// last message: one page read per reply.
const replyTail = 200

// replyChannel reads the tail of the customer's timeline and picks the
// channel a reply on c goes out on (pickReplyChannel).
func (s *Server) replyChannel(ctx context.Context, c sessions.Conversation) (string, error) {
	last, err := s.store.LastSeq(ctx, c.CustomerID)
	if err != nil {
		return "", err
	}
	evs, err := s.store.Timeline(ctx, c.CustomerID, last-min(last, replyTail), replyTail)
	if err != nil {
		return "", err
	}
	return pickReplyChannel(evs, c), nil
}

// pickReplyChannel is the channel of the newest message_in of c among evs
// (a timeline page, oldest first), else c.Channel. The reply follows the
// customer: a conversation opened on webchat that the customer continued
// on WeChat is answered on WeChat, where they are now.
func pickReplyChannel(evs []sessions.Event, c sessions.Conversation) string {
	for _, ev := range slices.Backward(evs) {
		if ev.Kind == sessions.KindMessageIn && ev.ConversationID == c.ID && ev.Channel != "" {
			return ev.Channel
		}
	}
	return c.Channel
}

// sameText reports whether a stored event (found by its client id) is the
// same request as the one being retried, not a reuse of the id.
func sameText(ev sessions.Event, kind sessions.EventKind, conversationID string, want sessions.Message) bool {
	var got sessions.Message
	return ev.Kind == kind && ev.ConversationID == conversationID &&
		json.Unmarshal(ev.Payload, &got) == nil && got.Text == want.Text && got.ClientID == want.ClientID
}

// sendChecker is an adapter that can tell, without calling its network,
// that a send would be refused (wechat's closed window, an SMS opt-out).
type sendChecker interface {
	CanSend(ctx context.Context, customerID string, ids []sessions.Identity) error
}

// nextChanneler is an error naming the customer's next best channel
// (wechat.UnreachableError), found without importing the adapter.
type nextChanneler interface {
	error
	NextChannel() string
}

// refusal places a channel's refusal to reach the customer in the
// catalogue, or returns nil for any other error. outcome says what became
// of the message.
func refusal(channel string, err error, outcome string) *Error {
	if _, ok := errors.AsType[nextChanneler](err); ok {
		// Its text names the next best channel and never an address.
		return &Error{Code: CodeWindowClosed, Message: err.Error() + "; " + outcome, cause: err}
	}
	switch {
	case errors.Is(err, channels.ErrOptedOut):
		return &Error{Code: CodeOptedOut, cause: err,
			Message: fmt.Sprintf("the customer opted out of %s; %s", channel, outcome)}
	case errors.Is(err, channels.ErrRateLimited):
		return &Error{Code: CodeRateLimited, cause: err,
			Message: fmt.Sprintf("%s refuses more messages until the customer writes; %s", channel, outcome)}
	}
	return nil
}

// sendFailure is what a failed send records on the timeline: the kind of
// failure, not the adapter's text, which may quote an address.
func sendFailure(err error) string {
	if _, ok := errors.AsType[nextChanneler](err); ok {
		return "window_closed"
	}
	switch {
	case errors.Is(err, channels.ErrOptedOut):
		return "opted_out"
	case errors.Is(err, channels.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, channels.ErrNoAdapter):
		return "channel_unavailable"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "rejected"
}

// postNote adds an internal note: never sent to the customer, so any rep
// may add one to any conversation (a supervisor's advice, a handover).
func (s *Server) postNote(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := query(r); err != nil {
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
	if _, err := query(r); err != nil {
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
// nothing twice.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	return s.setStatus(w, r, p, sessions.StatusResolved)
}

func (s *Server) reopen(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	return s.setStatus(w, r, p, sessions.StatusOpen)
}

func (s *Server) setStatus(w http.ResponseWriter, r *http.Request, p auth.Principal, to sessions.ConversationStatus) error {
	if _, err := query(r); err != nil {
		return err
	}
	if err := decodeJSON(r, &struct{}{}, true); err != nil {
		return err
	}
	c, err := s.workable(r, p)
	if err != nil {
		return err
	}
	if c.Status == to || (to == sessions.StatusOpen && c.Status.Active()) {
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
	if _, err := query(r); err != nil {
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
