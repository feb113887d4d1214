package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

type contactRequest struct {
	customerMessageRequest
	// Topic is what the contact is about; empty is the customer's general
	// conversation.
	Topic string `json:"topic"`
	// Channels are the channels to consider, in order (webchat, wechat,
	// sms, voice for a callback); absent means all four in that order.
	Channels []string `json:"channels"`
}

type contactResponse struct {
	Choice      channels.Choice `json:"choice"`
	ChoiceEvent sessions.Event  `json:"choice_event"`
	// Event is the message_out, or the callback request.
	Event sessions.Event `json:"event"`
	// Conversation is the one the message or callback went into; absent
	// for a message sent outside any (no conversation on the topic).
	Conversation *sessions.Conversation `json:"conversation,omitempty"`
	Receipt      *channels.Receipt      `json:"receipt,omitempty"`
	Replay       bool                   `json:"replay,omitempty"`
}

// postContact is best-channel contact (channels.Sender.Reach): the
// gateway picks the channel the customer can receive on now, records the
// choice on the timeline and sends through the Sender, or asks a rep for
// a callback. 201 with what it did and why; 200 for a retry of the client
// id, which sends nothing.
func (s *Server) postContact(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req contactRequest
	if err := readNotice(r, &req, &req.customerMessageRequest); err != nil {
		return err
	}
	if s.outbound == nil {
		return errorf(CodeChannelUnavailable, "no channel is connected; nothing was sent or recorded")
	}
	res, err := s.outbound.Reach(r.Context(), s.store, channels.ReachRequest{CustomerID: r.PathValue("id"),
		Topic: req.Topic, Purpose: req.Purpose, Message: sessions.Message{Text: req.Text, ClientID: req.ClientID},
		Author: p.Author(), Channels: req.Channels})
	if refusal, ok := errors.AsType[*channels.RefusedError](err); ok {
		s.refused(r.Context(), channels.Request{CustomerID: r.PathValue("id"), Author: p.Author(), Purpose: req.Purpose}, refusal)
	}
	if err != nil {
		return reachError(res, err)
	}
	status := http.StatusCreated
	if res.Replay {
		status = http.StatusOK
	}
	resp := contactResponse{Choice: res.Choice, ChoiceEvent: res.ChoiceEvent, Event: res.Event,
		Receipt: res.Receipt, Replay: res.Replay}
	if res.Conversation.ID != "" {
		resp.Conversation = &res.Conversation
	}
	WriteJSON(w, status, resp)
	return nil
}

// reachError places Reach's refusals in the catalogue: unreachable with
// each channel's reason, or the Sender's refusal on the channel chosen
// (sendError), which says what was chosen after what.
func reachError(res channels.Reached, err error) error {
	if ue, ok := errors.AsType[*channels.UnreachableError](err); ok {
		reasons := make([]string, len(ue.Skipped))
		for i, sk := range ue.Skipped {
			reasons[i] = sk.Channel + ":" + string(sk.Reason)
		}
		return &Error{Code: CodeUnreachable, Message: "no channel can reach the customer now; nothing was sent or recorded",
			Reasons: reasons, cause: err}
	}
	mapped := sendError(err)
	e, ok := errors.AsType[*Error](mapped)
	if !ok || res.ChoiceEvent.ID == "" {
		return mapped
	}
	chose := "chose " + res.Choice.Channel
	if len(res.Choice.Skipped) > 0 {
		var skipped []string
		for _, sk := range res.Choice.Skipped {
			skipped = append(skipped, sk.Channel+" "+string(sk.Reason))
		}
		chose += " (skipped " + strings.Join(skipped, ", ") + ")"
	}
	out := *e
	out.Message = chose + ": " + e.Message
	return &out
}
