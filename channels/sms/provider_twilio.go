package sms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/sessions"
)

// twilioProvider speaks Twilio's Programmable Messaging: form-encoded
// webhooks signed with X-Twilio-Signature, and the Messages API.
type twilioProvider struct {
	cfg    ProviderConfig
	base   string
	client *http.Client
}

var _ Provider = (*twilioProvider)(nil)

func newTwilio(cfg ProviderConfig, client *http.Client) *twilioProvider {
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = "https://api.twilio.com"
	}
	return &twilioProvider{cfg: cfg, base: base, client: client}
}

func (p *twilioProvider) Name() string { return p.cfg.Name }

// TwilioSignature computes X-Twilio-Signature as Twilio documents it:
// HMAC-SHA1 keyed with the auth token over the full URL Twilio called
// (scheme, host, path and query) followed by every POST parameter, sorted
// by name, as name then value with nothing between; base64.
func TwilioSignature(authToken, fullURL string, form url.Values) string {
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(fullURL))
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vals := slices.Clone(form[k])
		slices.Sort(vals) // as Twilio's helper libraries do for repeated names
		for _, v := range vals {
			mac.Write([]byte(k))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// requestURL is the URL Twilio signed: the configured public URL (the
// gateway may sit behind a proxy) with the request's query, or the
// request's own URL rebuilt.
func (p *twilioProvider) requestURL(r *http.Request) string {
	if p.cfg.PublicURL != "" {
		u := p.cfg.PublicURL
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// urlVariants are the URL with and without the scheme's default port:
// Twilio's own validators accept either, since which one Twilio signed
// depends on how the webhook URL was written in its console.
func urlVariants(raw string) []string {
	out := []string{raw}
	u, err := url.Parse(raw)
	if err != nil {
		return out
	}
	def := map[string]string{"https": "443", "http": "80"}[u.Scheme]
	if def == "" {
		return out
	}
	if u.Port() == "" {
		v := *u
		v.Host = net.JoinHostPort(u.Hostname(), def)
		out = append(out, v.String())
	} else if u.Port() == def {
		v := *u
		v.Host = u.Hostname()
		out = append(out, v.String())
	}
	return out
}

func (p *twilioProvider) verify(r *http.Request, form url.Values) bool {
	got, err := base64.StdEncoding.DecodeString(r.Header.Get("X-Twilio-Signature"))
	if err != nil || len(got) != sha1.Size {
		return false
	}
	ok := false
	for _, u := range urlVariants(p.requestURL(r)) {
		want, _ := base64.StdEncoding.DecodeString(TwilioSignature(p.cfg.AuthToken, u, form))
		if hmac.Equal(got, want) {
			ok = true
		}
	}
	return ok
}

// ParseTwilioForm decodes a Twilio webhook body already authenticated.
// Messages carry From, To, Body, MessageSid and MediaUrlN; delivery
// reports carry MessageSid and MessageStatus (SmsStatus in older
// accounts) without a Body. query is the request's query: Omnigate's
// reference on status callbacks.
func ParseTwilioForm(form, query url.Values) (Webhook, error) {
	sid := form.Get("MessageSid")
	if sid == "" {
		sid = form.Get("SmsSid")
	}
	if sid == "" || len(sid) > 64 {
		return Webhook{}, fmt.Errorf("%w: MessageSid missing or too long", ErrMalformed)
	}
	status := strings.ToLower(form.Get("MessageStatus"))
	if status == "" {
		status = strings.ToLower(form.Get("SmsStatus"))
	}
	wh := Webhook{MessageID: sid, From: form.Get("From"), To: form.Get("To")}
	if status != "" && status != "received" && !form.Has("Body") {
		if len(status) > 32 {
			return Webhook{}, fmt.Errorf("%w: MessageStatus too long", ErrMalformed)
		}
		wh.Kind, wh.Status, wh.ErrorCode = WebhookStatus, status, form.Get("ErrorCode")
		if len(wh.ErrorCode) > 32 {
			wh.ErrorCode = wh.ErrorCode[:32]
		}
		wh.Ref = Ref{EventID: query.Get("event_id"), ConversationID: query.Get("conversation_id")}
		wh.Ref.Segments, _ = strconv.Atoi(query.Get("segments"))
		return wh, nil
	}
	wh.Kind, wh.Text = WebhookMessage, form.Get("Body")
	n, _ := strconv.Atoi(form.Get("NumMedia"))
	for i := range min(n, 10) {
		u := form.Get("MediaUrl" + strconv.Itoa(i))
		if u == "" {
			continue
		}
		wh.Media = append(wh.Media, sessions.Media{Type: mediaType(form.Get("MediaContentType" + strconv.Itoa(i))), URL: u})
	}
	if wh.From == "" {
		return Webhook{}, fmt.Errorf("%w: From missing", ErrMalformed)
	}
	return wh, nil
}

// mediaType maps a MIME type onto sessions.Media's types.
func mediaType(mimeType string) string {
	switch {
	case strings.HasPrefix(mimeType, "image/"):
		return "image"
	case strings.HasPrefix(mimeType, "audio/"):
		return "voice"
	case strings.HasPrefix(mimeType, "video/"):
		return "video"
	}
	return "file"
}

func (p *twilioProvider) Parse(r *http.Request, body []byte, now time.Time) (Webhook, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return Webhook{}, fmt.Errorf("%w: Content-Type is not application/x-www-form-urlencoded", ErrMalformed)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return Webhook{}, fmt.Errorf("%w: form: %v", ErrMalformed, err)
	}
	// Authenticate before reading anything from the form.
	if !p.verify(r, form) {
		return Webhook{}, fmt.Errorf("%w: X-Twilio-Signature does not match (check public_url)", ErrSignature)
	}
	// The signature proves the auth token, not the account: a token that
	// also signs another account's webhooks (a subaccount pointed at this
	// URL, a copied console setting) must not deliver into this one.
	// Twilio names the account on every messaging webhook and delivery
	// report, so one that names none is not Twilio's.
	switch sid := form.Get("AccountSid"); {
	case sid == "":
		return Webhook{}, fmt.Errorf("%w: AccountSid missing", ErrMalformed)
	case sid != p.cfg.AccountSID:
		return Webhook{}, fmt.Errorf("%w: AccountSid is not this provider's account_sid", ErrSignature)
	}
	return ParseTwilioForm(form, r.URL.Query())
}

// Ack answers with an empty TwiML response: no automatic reply.
func (p *twilioProvider) Ack(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`)
}

// twilioError is the Messages API's error body.
type twilioError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// twilioUnsubscribed is Twilio's error 21610: the recipient replied STOP.
const twilioUnsubscribed = 21610

func (p *twilioProvider) statusCallback(ref Ref) string {
	if p.cfg.PublicURL == "" {
		return ""
	}
	q := url.Values{}
	if ref.EventID != "" {
		q.Set("event_id", ref.EventID)
	}
	if ref.ConversationID != "" {
		q.Set("conversation_id", ref.ConversationID)
	}
	if ref.Segments > 0 {
		q.Set("segments", strconv.Itoa(ref.Segments))
	}
	if len(q) == 0 {
		return p.cfg.PublicURL
	}
	return p.cfg.PublicURL + "?" + q.Encode()
}

// Send creates a message with POST /2010-04-01/Accounts/{sid}/Messages.json.
// Twilio's Messages API takes no idempotency key, so a caller's retry may
// deliver twice; the API layer sends each message_out once.
func (p *twilioProvider) Send(ctx context.Context, m Outgoing) (string, error) {
	form := url.Values{"To": {m.To}, "Body": {m.Text}}
	switch {
	case m.From != "":
		form.Set("From", m.From)
	case p.cfg.MessagingServiceSID != "":
		form.Set("MessagingServiceSid", p.cfg.MessagingServiceSID)
	default:
		form.Set("From", p.cfg.From)
	}
	for _, md := range m.Media {
		if md.URL != "" {
			form.Add("MediaUrl", md.URL)
		}
	}
	if cb := p.statusCallback(m.Ref); cb != "" {
		form.Set("StatusCallback", cb)
	}
	endpoint := p.base + "/2010-04-01/Accounts/" + url.PathEscape(p.cfg.AccountSID) + "/Messages.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(p.cfg.AccountSID, p.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		// The error quotes the URL (account sid), never the number.
		return "", fmt.Errorf("sms: %s: %w: %v", p.cfg.Name, channels.ErrNoAdapter, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		var ok struct {
			SID string `json:"sid"`
		}
		if err := json.Unmarshal(b, &ok); err != nil || ok.SID == "" {
			return "", fmt.Errorf("sms: %s: answer %d without a message sid", p.cfg.Name, resp.StatusCode)
		}
		return ok.SID, nil
	}
	var te twilioError
	_ = json.Unmarshal(bytes.TrimSpace(b), &te)
	switch {
	case te.Code == twilioUnsubscribed:
		return "", fmt.Errorf("sms: %s: error %d: %w", p.cfg.Name, te.Code, ErrOptedOut)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return "", fmt.Errorf("sms: %s: status %d: %w", p.cfg.Name, resp.StatusCode, channels.ErrNoAdapter)
	}
	// Twilio's messages name the number ("The 'To' number +1... is not a
	// valid phone number"): keep the code only.
	return "", fmt.Errorf("sms: %s: status %d, error %d: %w", p.cfg.Name, resp.StatusCode, te.Code, ErrRejected)
}
