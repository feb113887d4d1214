package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/sessions"
	"github.com/omnigate/omnigate/sessions/redact"
)

// maxText caps an inbound message's text: ten concatenated parts are
// about 1,530 characters, so this is generous and keeps the event well
// under the store's payload cap.
const maxText = 8 << 10

// Options are the channel's collaborators, wired by cmd/gateway.
type Options struct {
	// Store is required.
	Store sessions.Store
	// Suppressions is the do-not-contact list, where opt-outs are kept
	// (optout.go). Nil means an in-memory list, lost at restart: fine for
	// tests, never for a real deployment (the gateway passes the contact
	// policy's).
	Suppressions contact.Suppressions
	// HTTPClient calls the providers' APIs. Nil means a client with the
	// configured SendTimeout.
	HTTPClient *http.Client
	// Logger receives webhook and send problems, with numbers masked. Nil
	// discards.
	Logger *slog.Logger
	// Now is the clock for webhook freshness; nil means time.Now.
	Now func() time.Time
}

// Adapter is the SMS channel: the providers' webhook endpoint (ServeHTTP,
// mounted at POST /channels/sms/{provider}) and channels.Adapter (Send).
type Adapter struct {
	cfg       Config
	store     sessions.Store
	sups      contact.Suppressions
	log       *slog.Logger
	now       func() time.Time
	providers map[string]Provider
	outbound  Provider
	// kwMu orders opt-out and opt-in keywords on this node (optOut).
	kwMu sync.Mutex
}

var _ channels.Adapter = (*Adapter)(nil)

// New builds the channel from a validated configuration with at least one
// provider.
func New(cfg Config, o Options) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Providers) == 0 {
		return nil, errors.New("sms: no provider configured")
	}
	if o.Store == nil {
		return nil, errors.New("sms: no store")
	}
	cfg = cfg.withDefaults()
	a := &Adapter{cfg: cfg, store: o.Store, sups: o.Suppressions, log: o.Logger, now: o.Now,
		providers: map[string]Provider{}}
	if a.sups == nil {
		a.sups = contact.NewMemorySuppressions()
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: cfg.SendTimeout}
	}
	for _, pc := range cfg.Providers {
		var p Provider
		switch pc.Kind {
		case KindTwilio:
			p = newTwilio(pc, client)
		case KindJSON:
			jp, err := newJSON(pc, client)
			if err != nil {
				return nil, fmt.Errorf("sms: %s: %w", pc.Name, err)
			}
			p = jp
		}
		a.providers[pc.Name] = p
	}
	a.outbound = a.providers[cfg.Outbound]
	return a, nil
}

// Name is the channel name, "sms".
func (a *Adapter) Name() string { return sessions.ChannelSMS }

// Send texts o.Message to the customer's phone: the verified number most
// recently linked, else the most recent one. A number on the do-not-contact
// list gets ErrOptedOut and no provider is called; a customer without a
// number gets channels.ErrNoAdapter.
func (a *Adapter) Send(ctx context.Context, o channels.Outbound) (channels.Receipt, error) {
	to, ok := pickPhone(o.Identities)
	if !ok {
		return channels.Receipt{}, fmt.Errorf("sms: customer %s has no phone number: %w", o.CustomerID, channels.ErrNoAdapter)
	}
	if o.Message.Text == "" && len(o.Message.Media) == 0 {
		return channels.Receipt{}, fmt.Errorf("sms: customer %s: empty message: %w", o.CustomerID, ErrRejected)
	}
	if listed, err := a.optedOut(ctx, to); err != nil {
		return channels.Receipt{}, fmt.Errorf("sms: customer %s: %w", o.CustomerID, err)
	} else if listed {
		return channels.Receipt{}, fmt.Errorf("sms: customer %s: %w", o.CustomerID, ErrOptedOut)
	}
	seg := Count(o.Message.Text)
	id, err := a.send(ctx, a.outbound, Outgoing{To: to, Text: o.Message.Text, Media: o.Message.Media, Segments: seg,
		Ref: Ref{EventID: o.EventID, ConversationID: o.ConversationID, Segments: seg.Count}})
	if err != nil {
		if errors.Is(err, ErrOptedOut) {
			// The provider knows of an opt-out we did not see (a STOP sent
			// before Omnigate, or to another number of the account).
			s := optOutEntry(to, SourceProvider, "reported unsubscribed by "+a.outbound.Name(), a.now())
			if _, lerr := a.optOut(ctx, s); lerr != nil {
				a.log.Warn("sms: recording provider opt-out failed", slog.String("number", redact.Phone(to)), slog.Any("error", lerr))
			}
		}
		return channels.Receipt{}, fmt.Errorf("sms: customer %s: %w", o.CustomerID, err)
	}
	return channels.Receipt{ID: id}, nil
}

// CanSend returns the error Send would return before calling a provider
// (channels.ErrNoAdapter without a number, ErrOptedOut for a listed one),
// or nil when Send would try (channels.Adapter).
func (a *Adapter) CanSend(ctx context.Context, customerID string, ids []sessions.Identity) error {
	to, ok := pickPhone(ids)
	if !ok {
		return fmt.Errorf("sms: customer %s has no phone number: %w", customerID, channels.ErrNoAdapter)
	}
	if listed, err := a.optedOut(ctx, to); err != nil {
		return fmt.Errorf("sms: customer %s: %w", customerID, err)
	} else if listed {
		return fmt.Errorf("sms: customer %s: %w", customerID, ErrOptedOut)
	}
	return nil
}

func (a *Adapter) send(ctx context.Context, p Provider, m Outgoing) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.SendTimeout)
	defer cancel()
	return p.Send(ctx, m)
}

// pickPhone chooses the number to text: verified beats unverified, then
// the most recently linked.
func pickPhone(ids []sessions.Identity) (string, bool) {
	var best *sessions.Identity
	for i := range ids {
		id := &ids[i]
		if id.Kind != sessions.IdentityPhone || sessions.CheckPhone(id.Value) != nil {
			continue
		}
		if best == nil || (id.Verified && !best.Verified) ||
			(id.Verified == best.Verified && id.LinkedAt.After(best.LinkedAt)) {
			best = id
		}
	}
	if best == nil {
		return "", false
	}
	return best.Value, true
}

// ServeHTTP takes a provider's webhook at POST /channels/sms/{provider}:
// authenticate, then record. Answers: 200 (the provider's own ack) when
// processed or deliberately dropped, 400 unreadable, 403 bad signature,
// 404 unknown provider, 413 too large, 503 when the store failed (the
// provider retries).
func (a *Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := a.providers[r.PathValue("provider")]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such SMS provider")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST only")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body is larger than %d bytes", a.cfg.MaxBodyBytes))
		return
	}
	if err != nil {
		// The server's body deadline passed, or the provider went away.
		writeError(w, http.StatusRequestTimeout, "request_timeout", "the body did not arrive in time")
		return
	}
	wh, err := p.Parse(r, body, a.now())
	switch {
	case errors.Is(err, ErrSignature):
		a.log.Warn("sms: webhook refused", slog.String("provider", p.Name()), slog.String("reason", "signature"))
		writeError(w, http.StatusForbidden, "forbidden", err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	switch wh.Kind {
	case WebhookMessage:
		err = a.receive(r.Context(), p, wh)
	case WebhookStatus:
		err = a.status(r.Context(), p, wh)
	}
	switch {
	case errors.Is(err, ErrMalformed), errors.Is(err, sessions.ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
	case err != nil:
		a.log.Error("sms: webhook not recorded", slog.String("provider", p.Name()), slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "not recorded; retry later")
	default:
		p.Ack(w)
	}
}

// receive records a customer's message. The sender's number is proven by
// the message itself, so it is a verified phone identity. Keywords change
// the do-not-contact list and are not work for a rep, so they open no
// conversation; anything else joins the customer's general conversation,
// opened on sms if none is active.
func (a *Adapter) receive(ctx context.Context, p Provider, wh Webhook) error {
	if len(wh.Text) > maxText || !utf8.ValidString(wh.Text) {
		return fmt.Errorf("%w: text longer than %d bytes or not UTF-8", ErrMalformed, maxText)
	}
	from, err := sessions.NormalizePhone(wh.From, a.cfg.DefaultRegion)
	if err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	c, err := channels.ResolvePhone(ctx, a.store, from, true)
	if err != nil {
		return err
	}
	msgID := p.Name() + ":" + wh.MessageID
	kw, word := matchKeyword(wh.Text, a.cfg.OptOutKeywords, a.cfg.OptInKeywords)
	seg := Count(wh.Text)
	payload, err := json.Marshal(MessagePayload{Message: sessions.Message{Text: wh.Text, Media: wh.Media},
		Provider: p.Name(), Segments: seg.Count, Encoding: seg.Encoding})
	if err != nil {
		return err
	}
	ev := sessions.Event{CustomerID: c.ID, Kind: sessions.KindMessageIn, Channel: sessions.ChannelSMS,
		ExternalID: msgID, Author: "customer", Payload: payload}
	if kw == noKeyword {
		_, _, _, err = a.store.Intake(ctx, "", ev)
	} else {
		_, _, err = a.store.Append(ctx, ev)
	}
	if err != nil {
		return err
	}
	// The list changes are idempotent on their own (changed is false the
	// second time), so a provider's retry finishes what a crash cut short
	// instead of being dropped as a duplicate.
	switch kw {
	case optOutKeyword:
		changed, err := a.optOut(ctx, optOutEntry(from, SourceStop, "texted "+word, a.now()))
		if err != nil {
			return err
		}
		a.log.Info("sms: number opted out", slog.String("number", redact.Phone(from)), slog.Bool("new", changed))
		if changed {
			a.confirm(ctx, p, c.ID, from, wh.To, a.cfg.OptOutReply, "opt-out:"+msgID)
		}
	case optInKeyword:
		changed, err := a.optIn(ctx, from)
		if err != nil {
			return err
		}
		a.log.Info("sms: number opted in", slog.String("number", redact.Phone(from)), slog.Bool("new", changed))
		if changed {
			a.confirm(ctx, p, c.ID, from, wh.To, a.cfg.OptInReply, "opt-in:"+msgID)
		}
	}
	return nil
}

// confirm sends a keyword's confirmation once: the message_out is appended
// with an external id derived from the keyword message, and only the
// append that created it sends. A crash between the append and the send
// leaves the confirmation recorded and unsent (at most once, never twice).
// Failures are logged; the opt-out itself already stands.
func (a *Adapter) confirm(ctx context.Context, p Provider, customerID, to, from, text, externalID string) {
	if text == "" {
		return
	}
	seg := Count(text)
	payload, _ := json.Marshal(MessagePayload{Message: sessions.Message{Text: text}, Provider: p.Name(),
		Segments: seg.Count, Encoding: seg.Encoding})
	ev, appended, err := a.store.Append(ctx, sessions.Event{CustomerID: customerID, Kind: sessions.KindMessageOut,
		Channel: sessions.ChannelSMS, ExternalID: externalID, Author: sessions.ChannelSystem, Payload: payload})
	if err != nil || !appended {
		if err != nil {
			a.log.Warn("sms: recording confirmation failed", slog.Any("error", err))
		}
		return
	}
	// The list would refuse an opt-out confirmation: it goes straight to
	// the provider, from the number the customer wrote to.
	id, sendErr := a.send(context.WithoutCancel(ctx), p, Outgoing{To: to, From: from, Text: text, Segments: seg,
		Ref: Ref{EventID: ev.ID, Segments: seg.Count}})
	ds := DeliveryStatus{EventID: ev.ID, Status: "sent", ProviderID: id, Provider: p.Name(), Segments: seg.Count, Encoding: seg.Encoding}
	if sendErr != nil {
		ds.Status, ds.Error = "failed", "rejected"
		if errors.Is(sendErr, channels.ErrNoAdapter) {
			ds.Error = "channel_unavailable"
		}
		a.log.Warn("sms: sending confirmation failed", slog.String("provider", p.Name()), slog.Any("error", sendErr))
	}
	b, _ := json.Marshal(ds)
	if _, _, err := a.store.Append(context.WithoutCancel(ctx), sessions.Event{CustomerID: customerID, Kind: sessions.KindDelivery,
		Channel: sessions.ChannelSMS, Author: sessions.ChannelSystem, Payload: b}); err != nil {
		a.log.Warn("sms: recording confirmation status failed", slog.Any("error", err))
	}
}

// status records a delivery report as a delivery_status event, once per
// message and state: the external id is "<provider>:<message id>:<state>",
// so a provider's retry of the same report appends nothing. Reports for a
// number no customer has are dropped (acknowledged, logged).
func (a *Adapter) status(ctx context.Context, p Provider, wh Webhook) error {
	to, err := sessions.NormalizePhone(wh.To, a.cfg.DefaultRegion)
	if err != nil {
		a.log.Warn("sms: delivery report without a usable number dropped", slog.String("provider", p.Name()))
		return nil
	}
	customerID, err := a.store.IdentityOwner(ctx, sessions.Identity{Kind: sessions.IdentityPhone, Value: to})
	if errors.Is(err, sessions.ErrNotFound) {
		a.log.Warn("sms: delivery report for an unknown number dropped", slog.String("provider", p.Name()),
			slog.String("number", redact.Phone(to)))
		return nil
	}
	if err != nil {
		return err
	}
	ds := DeliveryStatus{EventID: wh.Ref.EventID, Status: wh.Status, ProviderID: wh.MessageID, Provider: p.Name(),
		Error: wh.ErrorCode, Segments: wh.Ref.Segments}
	b, err := json.Marshal(ds)
	if err != nil {
		return err
	}
	ev := sessions.Event{CustomerID: customerID, ConversationID: wh.Ref.ConversationID, Kind: sessions.KindDelivery,
		Channel: sessions.ChannelSMS, ExternalID: p.Name() + ":" + wh.MessageID + ":" + wh.Status,
		Author: sessions.ChannelSystem, Payload: b}
	_, _, err = a.store.Append(ctx, ev)
	if ev.ConversationID != "" && (errors.Is(err, sessions.ErrInvalid) || errors.Is(err, sessions.ErrNotFound)) {
		// The conversation is not this customer's (any more): keep the
		// report on the timeline without it.
		ev.ConversationID = ""
		_, _, err = a.store.Append(ctx, ev)
	}
	return err
}

// writeError answers in the API's error shape.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, message
	_ = json.NewEncoder(w).Encode(body)
}
