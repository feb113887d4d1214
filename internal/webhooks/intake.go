package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

// EventRequest is the body of POST /v1/events in its plain form; the
// Standard Webhooks envelope decodes into it too (see decodeEvent).
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
	// Timestamp is the envelope's timestamp, when the integrator says the
	// event happened; zero in the plain form, which has none.
	Timestamp time.Time `json:"-"`
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
	// Timestamp is the envelope's timestamp; absent for the plain form.
	Timestamp time.Time `json:"timestamp,omitzero"`
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

// ParseEvent decodes a body in either form strictly (one JSON object, no
// unknown fields, nothing after it; see decodeEvent) and checks it,
// normalising phone and email. region reads national phone numbers.
func ParseEvent(body []byte, region string) (EventRequest, sessions.Identity, error) {
	req, err := decodeEvent(body)
	if err != nil {
		return req, sessions.Identity{}, err
	}
	id, err := checkEvent(req, region)
	return req, id, err
}

// checkEvent checks a decoded event and returns its customer's identity,
// normalised.
func checkEvent(req EventRequest, region string) (sessions.Identity, error) {
	invalid := func(format string, args ...any) error { return apiError(api.CodeInvalid, fmt.Sprintf(format, args...)) }
	if !typeRe.MatchString(req.Type) {
		return sessions.Identity{}, invalid("type: %q must be 1 to 64 letters, digits, '.', '_', ':' or '-'", req.Type)
	}
	if len(req.Data) > 0 && (bytes.TrimSpace(req.Data)[0] != '{') {
		return sessions.Identity{}, invalid("data must be a JSON object")
	}
	id, err := identityOf(req.Customer, region)
	if err != nil {
		return sessions.Identity{}, invalid("customer: %v", err)
	}
	if u := req.Update; u != nil {
		if u.Tier != nil && !u.Tier.Valid() {
			return sessions.Identity{}, invalid("update.tier: %q is not A, B, C, D or empty", *u.Tier)
		}
		if u.Owner != nil && len(*u.Owner) > 64 {
			return sessions.Identity{}, invalid("update.owner: longer than 64 bytes")
		}
		if u.Tags != nil {
			if len(*u.Tags) > 50 {
				return sessions.Identity{}, invalid("update.tags: more than 50")
			}
			for _, t := range *u.Tags {
				if t == "" || len(t) > 64 || !utf8.ValidString(t) {
					return sessions.Identity{}, invalid("update.tags: %q is empty, longer than 64 bytes or not UTF-8", t)
				}
			}
		}
	}
	if c := req.Conversation; c != nil {
		if err := sessions.ValidateTopic(c.Topic, sessions.ChannelAPI); err != nil {
			return sessions.Identity{}, invalid("conversation.topic: %v", err)
		}
		if c.Topic == "" {
			return sessions.Identity{}, invalid("conversation.topic is required")
		}
	}
	return id, nil
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

// intake serves POST /v1/events.
type intake struct {
	cfg   Config
	store sessions.Store
	ob    Outbox // nil: no Touch
	log   *slog.Logger
	now   func() time.Time
	m     *metrics
	reps  func(id string) bool
	// accounts and sites are the configured WeChat account keys and web
	// chat site ids, the only namespaces an event's OpenID or site user
	// may name.
	accounts map[string]bool
	sites    map[string]bool
	names    []string         // integration of each secret
	secrets  []signing.Secret // parallel to names
}

// route is POST /v1/events for internal/api to serve: authenticated by
// the Standard Webhooks signature, its body capped at
// Config.MaxBodyBytes.
func (in *intake) route() api.Route {
	return api.Route{Pattern: "POST /v1/events", MaxBodyBytes: in.cfg.MaxBodyBytes, Handle: in.serve,
		Signature: &api.Signature{Scheme: "Standard-Webhooks", Verify: in.verify}}
}

// verify finds the integration whose secret signed body.
func (in *intake) verify(h http.Header, body []byte) (auth.Principal, error) {
	idx, _, err := signing.Verify(in.secrets, h, body, in.now())
	if err != nil {
		in.m.eventsIn.WithLabelValues("refused").Inc()
		return auth.Principal{}, apiError(api.CodeUnauthorized, signing.Describe(err))
	}
	return auth.Principal{Role: auth.RoleIntegrator, ID: in.names[idx]}, nil
}

func (in *intake) serve(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	resp, dup, err := in.handle(r.Context(), r, p)
	if err != nil {
		in.m.eventsIn.WithLabelValues("refused").Inc()
		return err
	}
	if dup {
		in.m.eventsIn.WithLabelValues("duplicate").Inc()
		w.Header().Set("Omnigate-Duplicate", "true")
	} else {
		in.m.eventsIn.WithLabelValues("appended").Inc()
	}
	api.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// handle decodes and applies one event signed by p's integration. Order,
// so that a replay of a webhook-id changes nothing: resolve the customer
// (a replay finds the same one); append the event with the webhook-id as
// its external id, with Open through the store's Intake, which joins or
// opens the topic's conversation in the same write (a replay gets the
// stored event back and opens nothing, even after the conversation was
// resolved); and only for a new event, update the customer.
func (in *intake) handle(ctx context.Context, r *http.Request, p auth.Principal) (EventResponse, bool, error) {
	// The signature covers the webhook-id.
	webhookID := r.Header.Get(signing.HeaderID)
	if len(webhookID) > 200 || strings.ContainsAny(webhookID, "|\r\n") {
		return EventResponse{}, false, apiError(api.CodeInvalid, "webhook-id is longer than 200 bytes or has a control character")
	}
	integration := p.ID
	var body json.RawMessage
	if err := api.DecodeJSON(r, &body); err != nil {
		return EventResponse{}, false, err
	}
	req, err := decodeEvent(body)
	if err != nil {
		return EventResponse{}, false, err
	}
	id, err := checkEvent(req, in.cfg.DefaultRegion)
	if err != nil {
		return EventResponse{}, false, err
	}
	if err := in.checkNamespace(id); err != nil {
		return EventResponse{}, false, err
	}
	if u := req.Update; u != nil && u.Owner != nil && *u.Owner != "" && in.reps != nil && !in.reps(*u.Owner) {
		return EventResponse{}, false, apiError(api.CodeInvalid, fmt.Sprintf("update.owner: no rep %q", *u.Owner))
	}
	payload, err := json.Marshal(IntegratorPayload{Type: req.Type, Data: req.Data, Integration: integration,
		Update: req.Update, Timestamp: req.Timestamp})
	if err != nil {
		return EventResponse{}, false, err
	}
	c, _, err := in.store.ResolveCustomer(ctx, id, sessions.Customer{})
	if err != nil {
		return EventResponse{}, false, err
	}
	ev := sessions.Event{CustomerID: c.ID, Kind: sessions.KindIntegrator, Channel: sessions.ChannelAPI,
		ExternalID: webhookID, Author: "integrator:" + integration, Payload: payload}
	var stored sessions.Event
	var appended bool
	switch cr := req.Conversation; {
	case cr != nil && cr.Open:
		_, stored, appended, err = in.store.Intake(ctx, cr.Topic, ev)
	case cr != nil:
		if ev.ConversationID, err = activeOnTopic(ctx, in.store, c.ID, cr.Topic); err == nil {
			stored, appended, err = in.store.Append(ctx, ev)
		}
	default:
		stored, appended, err = in.store.Append(ctx, ev)
	}
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

// activeOnTopic returns the customer's active conversation on topic, ""
// for none.
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

// checkNamespace refuses an OpenID under an official account, or a site
// user on a site, that this gateway does not have. ParseEvent can't: it
// knows no configuration. Such a customer could never be written to (no
// account to send from), and would stay apart from the real one if the
// account or site were configured later.
func (in *intake) checkNamespace(id sessions.Identity) error {
	switch {
	case id.Kind == sessions.IdentityWeChatOpenID && !in.accounts[id.Namespace]:
		return apiError(api.CodeInvalid, fmt.Sprintf("customer.wechat_openid.account: no official account %q is configured (wechat.accounts)", id.Namespace))
	case id.Kind == sessions.IdentitySiteUser && !in.sites[id.Namespace]:
		return apiError(api.CodeInvalid, fmt.Sprintf("customer.site_user.site: no site %q is configured (webchat.sites)", id.Namespace))
	}
	return nil
}

func setOf(keys []string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}
