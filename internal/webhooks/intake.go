package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/webhooks/signing"
	"github.com/omnigate/omnigate/sessions"
)

// EventRequest is the body of POST /v1/events.
type EventRequest struct {
	// Customer names the customer by exactly one identity.
	Customer CustomerRef `json:"customer"`
	// Type is the integrator's event type ("order.shipped"): 1 to 64
	// letters, digits, '.', '_', ':' or '-', starting with a letter or digit.
	Type string `json:"type"`
	// Data is any JSON object, kept on the timeline as sent.
	Data json.RawMessage `json:"data,omitempty"`
	// Update changes the customer after the event is recorded.
	Update *CustomerUpdate `json:"update,omitempty"`
	// Conversation puts the event in the customer's conversation on a
	// topic.
	Conversation *ConversationRef `json:"conversation,omitempty"`
}

// CustomerRef is one identity; exactly one field is set.
type CustomerRef struct {
	// Phone in E.164, or national in Config.DefaultRegion.
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
	// SiteUser is the integrator's own user id on a web site; it is
	// treated as verified, like a signed widget identity, since the
	// request is signed by the integrator's back end.
	SiteUser *SiteUserRef `json:"site_user,omitempty"`
	// WeChatOpenID is an OpenID of one official account.
	WeChatOpenID *OpenIDRef `json:"wechat_openid,omitempty"`
}

// SiteUserRef is a user id on one site.
type SiteUserRef struct {
	Site string `json:"site"`
	ID   string `json:"id"`
}

// OpenIDRef is an OpenID of one official account.
type OpenIDRef struct {
	Account string `json:"account"`
	OpenID  string `json:"openid"`
}

// CustomerUpdate is what an event may change on the customer.
type CustomerUpdate struct {
	Tier  *sessions.Tier `json:"tier,omitempty"`
	VIP   *bool          `json:"vip,omitempty"`
	Owner *string        `json:"owner,omitempty"`
	Tags  *[]string      `json:"tags,omitempty"`
}

// ConversationRef asks for the conversation on a topic (an order number,
// a ticket): with Open, the active one or a new one on channel "api";
// without, the active one if there is one.
type ConversationRef struct {
	Topic string `json:"topic"`
	Open  bool   `json:"open"`
}

// IntegratorPayload is the payload of an integrator event on the timeline.
type IntegratorPayload struct {
	Type        string          `json:"type"`
	Data        json.RawMessage `json:"data,omitempty"`
	Integration string          `json:"integration"`
	Update      *CustomerUpdate `json:"update,omitempty"`
}

// EventResponse is the answer to POST /v1/events, the same for the first
// request and any replay of its webhook-id (a replay also carries the
// header Omnigate-Duplicate: true).
type EventResponse struct {
	CustomerID     string `json:"customer_id"`
	EventID        string `json:"event_id"`
	Seq            uint64 `json:"seq"`
	ConversationID string `json:"conversation_id,omitempty"`
}

var typeRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// ParseEvent decodes a body strictly (one JSON object, no unknown fields,
// nothing after it) and checks it, normalising phone and email. region
// reads national phone numbers.
func ParseEvent(body []byte, region string) (EventRequest, sessions.Identity, error) {
	var req EventRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, sessions.Identity{}, apiError(api.CodeMalformedJSON, describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, sessions.Identity{}, apiError(api.CodeMalformedJSON, "unexpected data after the JSON value")
	}
	invalid := func(format string, args ...any) error { return apiError(api.CodeInvalid, fmt.Sprintf(format, args...)) }
	if !typeRe.MatchString(req.Type) {
		return req, sessions.Identity{}, invalid("type: %q must be 1 to 64 letters, digits, '.', '_', ':' or '-'", req.Type)
	}
	if len(req.Data) > 0 && (bytes.TrimSpace(req.Data)[0] != '{') {
		return req, sessions.Identity{}, invalid("data must be a JSON object")
	}
	id, err := identityOf(req.Customer, region)
	if err != nil {
		return req, sessions.Identity{}, invalid("customer: %v", err)
	}
	if u := req.Update; u != nil {
		if u.Tier != nil && !u.Tier.Valid() {
			return req, sessions.Identity{}, invalid("update.tier: %q is not A, B, C, D or empty", *u.Tier)
		}
		if u.Owner != nil && len(*u.Owner) > 64 {
			return req, sessions.Identity{}, invalid("update.owner: longer than 64 bytes")
		}
		if u.Tags != nil {
			if len(*u.Tags) > 50 {
				return req, sessions.Identity{}, invalid("update.tags: more than 50")
			}
			for _, t := range *u.Tags {
				if t == "" || len(t) > 64 || !utf8.ValidString(t) {
					return req, sessions.Identity{}, invalid("update.tags: %q is empty, longer than 64 bytes or not UTF-8", t)
				}
			}
		}
	}
	if c := req.Conversation; c != nil {
		if err := sessions.ValidateTopic(c.Topic, sessions.ChannelAPI); err != nil {
			return req, sessions.Identity{}, invalid("conversation.topic: %v", err)
		}
		if c.Topic == "" {
			return req, sessions.Identity{}, invalid("conversation.topic is required")
		}
	}
	return req, id, nil
}

func identityOf(c CustomerRef, region string) (sessions.Identity, error) {
	var ids []sessions.Identity
	if c.Phone != "" {
		n, err := sessions.NormalizePhone(c.Phone, region)
		if pe, ok := errors.AsType[*sessions.PhoneError](err); ok {
			return sessions.Identity{}, errors.New("phone: " + pe.Reason)
		}
		ids = append(ids, sessions.Identity{Kind: sessions.IdentityPhone, Value: n})
	}
	if c.Email != "" {
		ids = append(ids, sessions.Identity{Kind: sessions.IdentityEmail, Value: strings.ToLower(strings.TrimSpace(c.Email))})
	}
	if c.SiteUser != nil {
		ids = append(ids, sessions.Identity{Kind: sessions.IdentitySiteUser, Namespace: c.SiteUser.Site, Value: c.SiteUser.ID, Verified: true})
	}
	if c.WeChatOpenID != nil {
		ids = append(ids, sessions.Identity{Kind: sessions.IdentityWeChatOpenID, Namespace: c.WeChatOpenID.Account, Value: c.WeChatOpenID.OpenID})
	}
	if len(ids) != 1 {
		return sessions.Identity{}, errors.New("name the customer by exactly one of phone, email, site_user, wechat_openid")
	}
	if err := ids[0].Validate(); err != nil {
		return sessions.Identity{}, errors.New(strings.TrimPrefix(err.Error(), sessions.ErrInvalid.Error()+": "))
	}
	return ids[0], nil
}

func describeJSONError(err error) string {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return fmt.Sprintf("expected a JSON object, got %s", te.Value)
		}
		return fmt.Sprintf("field %q: expected %s, got %s", te.Field, te.Type, te.Value)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "JSON ends too early"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// intake serves POST /v1/events.
type intake struct {
	cfg     Config
	store   sessions.Store
	ob      Outbox // nil: no Touch
	log     *slog.Logger
	now     func() time.Time
	m       *metrics
	reps    func(id string) bool
	names   []string         // integration of each secret
	secrets []signing.Secret // parallel to names
}

func (in *intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, dup, err := in.handle(r.Context(), w, r)
	if err != nil {
		in.m.eventsIn.WithLabelValues("refused").Inc()
		if e, ok := errors.AsType[*api.Error](err); ok && e.Code == api.CodeUnauthorized {
			w.Header().Set("WWW-Authenticate", `Standard-Webhooks realm="omnigate"`)
		}
		writeError(w, r, in.log, err)
		return
	}
	if dup {
		in.m.eventsIn.WithLabelValues("duplicate").Inc()
		w.Header().Set("Omnigate-Duplicate", "true")
	} else {
		in.m.eventsIn.WithLabelValues("appended").Inc()
	}
	api.WriteJSON(w, http.StatusOK, resp)
}

// handle authenticates, decodes and applies one event. Order, so that a
// replay of a webhook-id changes nothing: resolve the customer (a replay
// finds the same one); find the conversation (an active one on the topic
// is returned as it is; when none is active, the timeline is searched for
// the webhook-id first, so a replay after the conversation was resolved
// does not open a new one); append the event with the webhook-id as its
// external id (a replay gets the stored event back); and only for a new
// event, update the customer.
func (in *intake) handle(ctx context.Context, w http.ResponseWriter, r *http.Request) (EventResponse, bool, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, in.cfg.MaxBodyBytes))
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return EventResponse{}, false, apiError(api.CodeTooLarge, fmt.Sprintf("request body is larger than %d bytes", mbe.Limit))
		}
		return EventResponse{}, false, apiError(api.CodeMalformedJSON, "reading the request body failed")
	}
	idx, webhookID, err := signing.Verify(in.secrets, r.Header, body, in.now())
	if err != nil {
		return EventResponse{}, false, apiError(api.CodeUnauthorized, signing.Describe(err))
	}
	if len(webhookID) > 200 || strings.ContainsAny(webhookID, "|\r\n") {
		return EventResponse{}, false, apiError(api.CodeInvalid, "webhook-id is longer than 200 bytes or has a control character")
	}
	integration := in.names[idx]
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return EventResponse{}, false, apiError(api.CodeUnsupportedMedia, "send the body as Content-Type: application/json")
	}
	req, id, err := ParseEvent(body, in.cfg.DefaultRegion)
	if err != nil {
		return EventResponse{}, false, err
	}
	if u := req.Update; u != nil && u.Owner != nil && *u.Owner != "" && in.reps != nil && !in.reps(*u.Owner) {
		return EventResponse{}, false, apiError(api.CodeInvalid, fmt.Sprintf("update.owner: no rep %q", *u.Owner))
	}
	payload, err := json.Marshal(IntegratorPayload{Type: req.Type, Data: req.Data, Integration: integration, Update: req.Update})
	if err != nil {
		return EventResponse{}, false, err
	}
	c, _, err := in.store.ResolveCustomer(ctx, id, sessions.Customer{})
	if err != nil {
		return EventResponse{}, false, err
	}
	ev := sessions.Event{CustomerID: c.ID, Kind: sessions.KindIntegrator, Channel: sessions.ChannelAPI,
		ExternalID: webhookID, Author: "integrator:" + integration, Payload: payload}
	if cr := req.Conversation; cr != nil {
		convID, stored, err := in.conversation(ctx, c.ID, cr, webhookID)
		if err != nil {
			return EventResponse{}, false, err
		}
		if stored != nil {
			return in.replayed(*stored, payload)
		}
		ev.ConversationID = convID
	}
	stored, appended, err := in.store.Append(ctx, ev)
	if err != nil {
		return EventResponse{}, false, err
	}
	if !appended {
		return in.replayed(stored, payload)
	}
	if in.ob != nil {
		// Mark the customer for the dispatcher's recovery scan, so this
		// event is delivered even if the process dies before the feed
		// brings it (see the package doc).
		if err := in.ob.Touch(ctx, c.ID); err != nil {
			in.log.Warn("webhooks: marking the customer for delivery failed", slog.String("customer_id", c.ID), slog.Any("error", err))
		}
	}
	if u := req.Update; u != nil && (u.Tier != nil || u.VIP != nil || u.Owner != nil || u.Tags != nil) {
		// After the append, and only for a new event: a replay must not
		// undo changes made since. A crash between the two loses the
		// update (the event, which records it, stands).
		if _, err := in.store.UpdateCustomer(ctx, c.ID, sessions.CustomerUpdate{Tier: u.Tier, VIP: u.VIP, Owner: u.Owner, Tags: u.Tags, Author: ev.Author}); err != nil {
			return EventResponse{}, false, err
		}
	}
	return EventResponse{CustomerID: stored.CustomerID, EventID: stored.ID, Seq: stored.Seq, ConversationID: stored.ConversationID}, false, nil
}

// replayed answers a webhook-id seen before: the first result if the body
// is the same, 409 if the id was reused for another event.
func (in *intake) replayed(stored sessions.Event, payload []byte) (EventResponse, bool, error) {
	if stored.Kind != sessions.KindIntegrator || !bytes.Equal(bytes.TrimSpace(stored.Payload), bytes.TrimSpace(payload)) {
		return EventResponse{}, false, apiError(api.CodeConflict, "webhook-id was already used for a different event")
	}
	return EventResponse{CustomerID: stored.CustomerID, EventID: stored.ID, Seq: stored.Seq, ConversationID: stored.ConversationID}, true, nil
}

// conversation returns the conversation the event joins ("" for none).
// stored is set when the webhook-id is already on the timeline (a replay
// found while looking).
func (in *intake) conversation(ctx context.Context, customerID string, cr *ConversationRef, webhookID string) (string, *sessions.Event, error) {
	active, err := activeOnTopic(ctx, in.store, customerID, cr.Topic)
	if err != nil || active != "" {
		return active, nil, err
	}
	// Nothing active on the topic. Opening one for a replay would change
	// something: look for the webhook-id first. This costs a timeline scan
	// only on a topic's first event (or first since it was resolved).
	ev, found, err := findExternal(ctx, in.store, customerID, sessions.ChannelAPI, webhookID)
	if err != nil {
		return "", nil, err
	}
	if found {
		return "", &ev, nil
	}
	if !cr.Open {
		return "", nil, nil
	}
	cv, _, err := in.store.OpenConversation(ctx, customerID, cr.Topic, sessions.ChannelAPI)
	if err != nil {
		return "", nil, err
	}
	return cv.ID, nil, nil
}

func activeOnTopic(ctx context.Context, s sessions.Store, customerID, topic string) (string, error) {
	for _, st := range []sessions.ConversationStatus{sessions.StatusOpen, sessions.StatusPending} {
		q := sessions.ConversationQuery{CustomerID: customerID, Status: st, Limit: 500}
		for {
			page, next, err := s.Conversations(ctx, q)
			if err != nil {
				return "", err
			}
			for _, c := range page {
				if c.Topic == topic {
					return c.ID, nil
				}
			}
			if next == "" {
				break
			}
			q.Cursor = next
		}
	}
	return "", nil
}

func findExternal(ctx context.Context, s sessions.Store, customerID, channel, externalID string) (sessions.Event, bool, error) {
	var after uint64
	for {
		page, err := s.Timeline(ctx, customerID, after, 1000)
		if err != nil {
			return sessions.Event{}, false, err
		}
		for _, ev := range page {
			if ev.Channel == channel && ev.ExternalID == externalID {
				return ev, true, nil
			}
		}
		if len(page) < 1000 {
			return sessions.Event{}, false, nil
		}
		after = page[len(page)-1].Seq
	}
}

// decodeBody reads a JSON request body strictly, as internal/api does.
func decodeBody(r *http.Request, dst any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return apiError(api.CodeTooLarge, fmt.Sprintf("request body is larger than %d bytes", mbe.Limit))
		}
		return apiError(api.CodeMalformedJSON, "reading the request body failed")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return apiError(api.CodeUnsupportedMedia, "send the body as Content-Type: application/json")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return apiError(api.CodeMalformedJSON, describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return apiError(api.CodeMalformedJSON, "unexpected data after the JSON value")
	}
	return nil
}
