package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/sessions"
)

// jsonProvider is the generic protocol for SMS gateways that are not
// Twilio-compatible: JSON both ways, signed both ways with Standard Webhooks
// under one shared secret.
//
// The gateway POSTs to /channels/sms/{name} one JSONWebhook per request:
//
//	{"type":"message","id":"gw-123","from":"+8613812345678","to":"+8610690000","text":"hi",
//	 "media":[{"type":"image","url":"https://..."}]}
//	{"type":"status","id":"gw-456","to":"+8613812345678","status":"delivered","error_code":"",
//	 "ref":{"event_id":"evt_...","conversation_id":"cnv_...","segments":1}}
//
// and Omnigate POSTs one JSONMessage per outbound SMS to the configured
// URL, with webhook-id set to the message_out event id (stable across
// Omnigate's retries, so the gateway can deduplicate); a 2xx answer with
// {"id":"<gateway id>"} accepts it. Statuses echo back "ref".
type jsonProvider struct {
	cfg    ProviderConfig
	secret signing.Secret
	client *http.Client
}

var _ Provider = (*jsonProvider)(nil)

func newJSON(cfg ProviderConfig, client *http.Client) (*jsonProvider, error) {
	s, err := signing.ParseSecret(cfg.Secret)
	if err != nil {
		return nil, err
	}
	return &jsonProvider{cfg: cfg, secret: s, client: client}, nil
}

func (p *jsonProvider) Name() string { return p.cfg.Name }

// JSONWebhook is what a json gateway POSTs to Omnigate.
type JSONWebhook struct {
	// Type is "message" (from a customer) or "status" (a delivery report).
	Type string `json:"type"`
	// ID is the gateway's message id: the new message's, or the reported
	// outbound message's.
	ID    string           `json:"id"`
	From  string           `json:"from,omitempty"`
	To    string           `json:"to,omitempty"`
	Text  string           `json:"text,omitempty"`
	Media []sessions.Media `json:"media,omitempty"`
	// Status is queued, sent, delivered, undelivered, failed or read.
	Status    string `json:"status,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`
	Ref       *Ref   `json:"ref,omitempty"`
}

// JSONMessage is what Omnigate POSTs to a json gateway.
type JSONMessage struct {
	// ID is the message_out event id: the same on every retry.
	ID       string           `json:"id"`
	To       string           `json:"to"`
	From     string           `json:"from,omitempty"`
	Text     string           `json:"text"`
	Media    []sessions.Media `json:"media,omitempty"`
	Segments int              `json:"segments"`
	Encoding Encoding         `json:"encoding"`
	// StatusURL is where to POST delivery reports; empty when the
	// provider has no public_url.
	StatusURL string `json:"status_url,omitempty"`
	Ref       Ref    `json:"ref"`
}

// ParseJSONWebhook decodes a json gateway's webhook body strictly: one
// object, no unknown fields, nothing after it.
func ParseJSONWebhook(body []byte) (Webhook, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var in JSONWebhook
	if err := dec.Decode(&in); err != nil {
		return Webhook{}, fmt.Errorf("%w: %v", ErrMalformed, strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Webhook{}, fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	if in.ID == "" || len(in.ID) > 128 {
		return Webhook{}, fmt.Errorf("%w: id missing or longer than 128 bytes", ErrMalformed)
	}
	wh := Webhook{MessageID: in.ID, From: in.From, To: in.To}
	switch in.Type {
	case "message":
		if in.From == "" {
			return Webhook{}, fmt.Errorf("%w: message without from", ErrMalformed)
		}
		if len(in.Media) > 10 {
			return Webhook{}, fmt.Errorf("%w: more than 10 media", ErrMalformed)
		}
		wh.Kind, wh.Text, wh.Media = WebhookMessage, in.Text, in.Media
	case "status":
		if in.Status == "" || len(in.Status) > 32 || len(in.ErrorCode) > 32 {
			return Webhook{}, fmt.Errorf("%w: status missing, or status or error_code longer than 32 bytes", ErrMalformed)
		}
		wh.Kind, wh.Status, wh.ErrorCode = WebhookStatus, strings.ToLower(in.Status), in.ErrorCode
		if in.Ref != nil {
			wh.Ref = *in.Ref
		}
	default:
		return Webhook{}, fmt.Errorf("%w: type %q is not message or status", ErrMalformed, in.Type)
	}
	return wh, nil
}

func (p *jsonProvider) Parse(r *http.Request, body []byte, now time.Time) (Webhook, error) {
	if _, _, err := signing.Verify([]signing.Secret{p.secret}, r.Header, body, now); err != nil {
		return Webhook{}, fmt.Errorf("%w: %s", ErrSignature, signing.Describe(err))
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return Webhook{}, fmt.Errorf("%w: Content-Type is not application/json", ErrMalformed)
	}
	return ParseJSONWebhook(body)
}

func (p *jsonProvider) Ack(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
}

func (p *jsonProvider) Send(ctx context.Context, m Outgoing) (string, error) {
	msg := JSONMessage{ID: m.Ref.EventID, To: m.To, From: m.From, Text: m.Text, Media: m.Media,
		Segments: m.Segments.Count, Encoding: m.Segments.Encoding, StatusURL: p.cfg.PublicURL, Ref: m.Ref}
	if msg.From == "" {
		msg.From = p.cfg.From
	}
	if msg.ID == "" {
		msg.ID = sessions.NewID("sms")
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	p.secret.SetHeaders(req.Header, msg.ID, time.Now(), body)
	resp, err := p.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("sms: %s: %w: %v", p.cfg.Name, channels.ErrNoAdapter, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var ans struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &ans)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if ans.ID == "" {
			ans.ID = msg.ID
		}
		return ans.ID, nil
	case ans.Error == "opted_out":
		return "", fmt.Errorf("sms: %s: status %d: %w", p.cfg.Name, resp.StatusCode, ErrOptedOut)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return "", fmt.Errorf("sms: %s: status %d: %w", p.cfg.Name, resp.StatusCode, channels.ErrNoAdapter)
	}
	return "", fmt.Errorf("sms: %s: status %d: %w", p.cfg.Name, resp.StatusCode, ErrRejected)
}
