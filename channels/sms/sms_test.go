package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/sessions"
)

// Twilio's documented example of X-Twilio-Signature (its security docs and
// helper libraries' tests): this URL, these POST parameters and auth token
// 12345 sign to this value.
const (
	docToken     = "12345"
	docURL       = "https://mycompany.com/myapp.php?foo=1&bar=2"
	docSignature = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
)

var docParams = url.Values{
	"CallSid": {"CA1234567890ABCDE"},
	"Caller":  {"+14158675309"},
	"Digits":  {"1234"},
	"From":    {"+14158675309"},
	"To":      {"+18005551212"},
}

func TestTwilioSignatureDocumentedExample(t *testing.T) {
	t.Parallel()
	if got := TwilioSignature(docToken, docURL, docParams); got != docSignature {
		t.Fatalf("signature = %s, want Twilio's documented %s", got, docSignature)
	}
}

// fakeTwilio is a Twilio-compatible Messages API that records what it is
// sent.
type fakeTwilio struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	sent []url.Values
	// refuse answers with this Twilio error code when non-zero.
	refuse int
}

func newFakeTwilio(t *testing.T) *fakeTwilio {
	f := &fakeTwilio{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/ACtest/Messages.json" {
			http.Error(w, "wrong route "+r.URL.Path, http.StatusNotFound)
			return
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "ACtest" || p != "tok-secret" {
			http.Error(w, "bad auth", http.StatusUnauthorized)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.sent = append(f.sent, r.PostForm)
		n, refuse := len(f.sent), f.refuse
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if refuse != 0 {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"code": refuse, "message": "Attempt to send to unsubscribed recipient", "status": 400})
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"sid": "SMout" + string(rune('A'+n)), "status": "queued"})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTwilio) messages() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.sent...)
}

const publicURL = "https://gw.example.com/channels/sms/twilio"

func twilioConfig(base string) Config {
	return Config{DefaultRegion: "CN", Providers: []ProviderConfig{{
		Name: "twilio", Kind: KindTwilio, From: "+8610690000", PublicURL: publicURL,
		AccountSID: "ACtest", AuthToken: "tok-secret", BaseURL: base,
	}}}
}

type rig struct {
	a     *Adapter
	store *sessions.MemoryStore
	sups  *contact.MemorySuppressions
	mux   *http.ServeMux
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	store := sessions.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	sups := contact.NewMemorySuppressions()
	a, err := New(cfg, Options{Store: store, Suppressions: sups})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /channels/sms/{provider}", a)
	return &rig{a: a, store: store, sups: sups, mux: mux}
}

// listed is the do-not-contact list's entries for number on sms.
func (r *rig) listed(t *testing.T, number string) []contact.Suppression {
	t.Helper()
	got, err := r.sups.Match(context.Background(), []contact.Key{{Kind: contact.KindPhone, Value: number}}, sessions.ChannelSMS, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		if s.Kind != contact.KindPhone || s.Value != number || s.Channel != sessions.ChannelSMS || s.Purpose != "" {
			t.Fatalf("entry %+v, want phone %s on sms for every purpose", s, number)
		}
	}
	return got
}

// postTwilio sends form to the handler as Twilio would: signed over the
// public URL plus query.
func (r *rig) postTwilio(t *testing.T, query string, form url.Values, tamper func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	target := "/channels/sms/twilio"
	full := publicURL
	if query != "" {
		target += "?" + query
		full += "?" + query
	}
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", TwilioSignature("tok-secret", full, form))
	if tamper != nil {
		tamper(req)
	}
	w := httptest.NewRecorder()
	r.mux.ServeHTTP(w, req)
	return w
}

func inbound(sid, from, body string) url.Values {
	return url.Values{"MessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {"ACtest"}, "From": {from},
		"To": {"+8610690000"}, "Body": {body}, "NumMedia": {"0"}, "SmsStatus": {"received"}}
}

func timeline(t *testing.T, s sessions.Store, customerID string) []sessions.Event {
	t.Helper()
	evs, err := s.Timeline(context.Background(), customerID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func owner(t *testing.T, s sessions.Store, number string) string {
	t.Helper()
	id, err := s.IdentityOwner(context.Background(), sessions.Identity{Kind: sessions.IdentityPhone, Value: number})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func kinds(evs []sessions.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Kind))
	}
	return out
}

func TestTwilioWebhookSignature(t *testing.T) {
	t.Parallel()
	r := newRig(t, twilioConfig("http://127.0.0.1:1"))
	form := inbound("SM0001", "+8613812345678", "hello")

	tests := []struct {
		name   string
		tamper func(*http.Request)
		want   int
	}{
		{"signed", nil, http.StatusOK},
		{"body tampered", func(req *http.Request) {
			f := inbound("SM0001", "+8613812345678", "hello!")
			req.Body = io.NopCloser(strings.NewReader(f.Encode()))
		}, http.StatusForbidden},
		{"query tampered", func(req *http.Request) { req.URL.RawQuery = "x=1" }, http.StatusForbidden},
		{"no signature", func(req *http.Request) { req.Header.Del("X-Twilio-Signature") }, http.StatusForbidden},
		{"signed with another token", func(req *http.Request) {
			req.Header.Set("X-Twilio-Signature", TwilioSignature("other", publicURL, form))
		}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := r.postTwilio(t, "", form, tt.tamper)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
		})
	}
	// Only the signed request was recorded.
	evs := timeline(t, r.store, owner(t, r.store, "+8613812345678"))
	var in int
	for _, e := range evs {
		if e.Kind == sessions.KindMessageIn {
			in++
		}
	}
	if in != 1 {
		t.Fatalf("%d message_in events, want 1: %v", in, kinds(evs))
	}
}

// A webhook correctly signed with the auth token but naming another
// AccountSid than the provider's account_sid is not this account's
// (refused 403), one naming none is not Twilio's (400); neither is
// stored.
func TestTwilioWebhookAccountSID(t *testing.T) {
	t.Parallel()
	r := newRig(t, twilioConfig("http://127.0.0.1:1"))
	tests := []struct {
		name, sid string
		want      int
	}{
		{"another account", "ACother", http.StatusForbidden},
		{"a prefix of ours", "ACtes", http.StatusForbidden},
		{"none", "", http.StatusBadRequest},
		{"ours", "ACtest", http.StatusOK},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := fmt.Sprintf("+861381234500%d", i)
			form := inbound(fmt.Sprintf("SMacct%d", i), from, "hello")
			form.Del("AccountSid")
			if tt.sid != "" {
				form.Set("AccountSid", tt.sid)
			}
			w := r.postTwilio(t, "", form, nil)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			_, err := r.store.IdentityOwner(context.Background(), sessions.Identity{Kind: sessions.IdentityPhone, Value: from})
			if stored := err == nil; stored != (tt.want == http.StatusOK) {
				t.Fatalf("answered %d, sender stored: %v (%v)", w.Code, stored, err)
			}
		})
	}
	// A delivery report for another account changes nothing either.
	report := url.Values{"MessageSid": {"SMout1"}, "MessageStatus": {"delivered"}, "AccountSid": {"ACother"},
		"From": {"+8610690000"}, "To": {"+8613812345678"}}
	if w := r.postTwilio(t, "event_id=evt_1", report, nil); w.Code != http.StatusForbidden {
		t.Fatalf("delivery report for another account: status %d, want 403: %s", w.Code, w.Body)
	}
}

// TestTwilioDocumentedRequest replays Twilio's documented request through
// the handler: the signature passes (the form is a voice call, so it is
// then refused as not an SMS, 400), and the same request tampered is
// refused at the signature (403).
func TestTwilioDocumentedRequest(t *testing.T) {
	t.Parallel()
	cfg := twilioConfig("http://127.0.0.1:1")
	cfg.Providers[0].AuthToken = docToken
	cfg.Providers[0].PublicURL = "https://mycompany.com/myapp.php"
	r := newRig(t, cfg)
	send := func(params url.Values) int {
		req := httptest.NewRequest(http.MethodPost, "/channels/sms/twilio?foo=1&bar=2", strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", docSignature)
		w := httptest.NewRecorder()
		r.mux.ServeHTTP(w, req)
		return w.Code
	}
	if got := send(docParams); got != http.StatusBadRequest {
		t.Fatalf("documented request: status %d, want 400 (signature accepted, not an SMS)", got)
	}
	tampered := url.Values{}
	for k, v := range docParams {
		tampered[k] = v
	}
	tampered.Set("Digits", "1235")
	if got := send(tampered); got != http.StatusForbidden {
		t.Fatalf("tampered request: status %d, want 403", got)
	}
}

func TestURLVariants(t *testing.T) {
	t.Parallel()
	got := urlVariants("https://a.example.com/x?y=1")
	if len(got) != 2 || got[1] != "https://a.example.com:443/x?y=1" {
		t.Fatalf("%v", got)
	}
	got = urlVariants("http://a.example.com:80/x")
	if len(got) != 2 || got[1] != "http://a.example.com/x" {
		t.Fatalf("%v", got)
	}
}

// TestTwilioEndToEnd: an SMS in lands on the timeline in a conversation; a
// reply goes out to the fake provider; its status callbacks are recorded
// once each; STOP lists the number, is confirmed once and blocks the next
// send with ErrOptedOut without calling the provider; START undoes it.
func TestTwilioEndToEnd(t *testing.T) {
	t.Parallel()
	fake := newFakeTwilio(t)
	r := newRig(t, twilioConfig(fake.srv.URL))
	ctx := context.Background()
	const number = "+8613812345678"

	// In: national format, read in region CN.
	if w := r.postTwilio(t, "", inbound("SM1", "13812345678", "我的快递到哪了？"), nil); w.Code != http.StatusOK ||
		!strings.Contains(w.Body.String(), "<Response>") {
		t.Fatalf("inbound: %d %s", w.Code, w.Body)
	}
	// The provider's retry is acknowledged and not appended again.
	if w := r.postTwilio(t, "", inbound("SM1", "13812345678", "我的快递到哪了？"), nil); w.Code != http.StatusOK {
		t.Fatalf("retry: %d %s", w.Code, w.Body)
	}
	cust := owner(t, r.store, number)
	evs := timeline(t, r.store, cust)
	if got := strings.Join(kinds(evs), ","); got != "status_change,message_in" {
		t.Fatalf("timeline %s, want status_change,message_in", got)
	}
	in := evs[1]
	var mp MessagePayload
	if err := json.Unmarshal(in.Payload, &mp); err != nil || mp.Text != "我的快递到哪了？" || mp.Encoding != UCS2 || mp.Segments != 1 {
		t.Fatalf("message_in payload %s", in.Payload)
	}
	if in.ExternalID != "twilio:SM1" || in.Channel != "sms" || in.ConversationID == "" {
		t.Fatalf("message_in %+v", in)
	}
	conv, err := r.store.Conversation(ctx, in.ConversationID)
	if err != nil || conv.Channel != "sms" || conv.Status != sessions.StatusOpen || conv.Topic != "" {
		t.Fatalf("conversation %+v %v", conv, err)
	}
	ids, _ := r.store.Identities(ctx, cust)
	if len(ids) != 1 || !ids[0].Verified {
		t.Fatalf("identities %+v, want one verified phone", ids)
	}

	// Out: a rep's reply (the API has appended the message_out already).
	reply := strings.Repeat("Your parcel is on its way. ", 7) // 189 GSM-7 chars: 2 segments
	rc, err := r.a.Send(ctx, channels.Outbound{CustomerID: cust, ConversationID: conv.ID, EventID: "evt_reply1",
		Identities: ids, Message: sessions.Message{Text: reply}})
	if err != nil || rc.ID == "" {
		t.Fatalf("send: %+v %v", rc, err)
	}
	msgs := fake.messages()
	if len(msgs) != 1 {
		t.Fatalf("provider got %d messages", len(msgs))
	}
	m := msgs[0]
	if m.Get("To") != number || m.Get("From") != "+8610690000" || m.Get("Body") != reply {
		t.Fatalf("provider got %v", m)
	}
	cb, err := url.Parse(m.Get("StatusCallback"))
	if err != nil || !strings.HasPrefix(cb.String(), publicURL+"?") || cb.Query().Get("event_id") != "evt_reply1" ||
		cb.Query().Get("conversation_id") != conv.ID || cb.Query().Get("segments") != "2" {
		t.Fatalf("StatusCallback %q", m.Get("StatusCallback"))
	}

	// Status callbacks, as Twilio sends them to the StatusCallback URL.
	for _, st := range []string{"sent", "delivered", "delivered"} {
		form := url.Values{"MessageSid": {rc.ID}, "MessageStatus": {st}, "SmsStatus": {st}, "To": {number},
			"From": {"+8610690000"}, "AccountSid": {"ACtest"}}
		if w := r.postTwilio(t, cb.RawQuery, form, nil); w.Code != http.StatusOK {
			t.Fatalf("status %s: %d %s", st, w.Code, w.Body)
		}
	}
	evs = timeline(t, r.store, cust)
	var reports []DeliveryStatus
	for _, e := range evs {
		if e.Kind == sessions.KindDelivery {
			var ds DeliveryStatus
			_ = json.Unmarshal(e.Payload, &ds)
			if e.ConversationID != conv.ID {
				t.Fatalf("report not in the conversation: %+v", e)
			}
			reports = append(reports, ds)
		}
	}
	if len(reports) != 2 || reports[0].Status != "sent" || reports[1].Status != "delivered" ||
		reports[1].EventID != "evt_reply1" || reports[1].ProviderID != rc.ID || reports[1].Segments != 2 {
		t.Fatalf("reports %+v, want sent then delivered once each", reports)
	}

	// STOP (any case, spaces trimmed): listed, confirmed once.
	if w := r.postTwilio(t, "", inbound("SM2", number, "  stop "), nil); w.Code != http.StatusOK {
		t.Fatalf("stop: %d %s", w.Code, w.Body)
	}
	if w := r.postTwilio(t, "", inbound("SM3", number, "退订"), nil); w.Code != http.StatusOK {
		t.Fatalf("second opt-out: %d %s", w.Code, w.Body)
	}
	if got := r.listed(t, number); len(got) != 1 || got[0].Source != SourceStop || got[0].Reason != "texted STOP" {
		t.Fatalf("do-not-contact list after STOP = %+v, want one sms_stop entry", got)
	}
	msgs = fake.messages()
	if len(msgs) != 2 || msgs[1].Get("To") != number || !strings.Contains(msgs[1].Get("Body"), "START") {
		t.Fatalf("want exactly one confirmation after two opt-outs, provider got %d messages", len(msgs))
	}
	// The next send is refused before the provider is called.
	_, err = r.a.Send(ctx, channels.Outbound{CustomerID: cust, ConversationID: conv.ID, EventID: "evt_reply2",
		Identities: ids, Message: sessions.Message{Text: "one more thing"}})
	if !errors.Is(err, ErrOptedOut) {
		t.Fatalf("send after STOP: %v, want ErrOptedOut", err)
	}
	if strings.Contains(err.Error(), number) || strings.Contains(err.Error(), "13812345678") {
		t.Fatalf("error quotes the number: %v", err)
	}
	if n := len(fake.messages()); n != 2 {
		t.Fatalf("provider called after opt-out: %d messages", n)
	}
	// Keyword messages are recorded without opening work.
	evs = timeline(t, r.store, cust)
	var stops int
	for _, e := range evs {
		if e.Kind == sessions.KindMessageIn && (e.ExternalID == "twilio:SM2" || e.ExternalID == "twilio:SM3") {
			stops++
			if e.ConversationID != "" {
				t.Fatalf("keyword message in a conversation: %+v", e)
			}
		}
	}
	if stops != 2 {
		t.Fatalf("%d keyword messages recorded, want 2", stops)
	}

	// START re-subscribes, confirmed, and sends work again.
	if w := r.postTwilio(t, "", inbound("SM4", number, "Start"), nil); w.Code != http.StatusOK {
		t.Fatalf("start: %d %s", w.Code, w.Body)
	}
	if got := r.listed(t, number); len(got) != 0 {
		t.Fatalf("still listed after START: %+v", got)
	}
	if _, err := r.a.Send(ctx, channels.Outbound{CustomerID: cust, EventID: "evt_reply3", Identities: ids,
		Message: sessions.Message{Text: "welcome back"}}); err != nil {
		t.Fatalf("send after START: %v", err)
	}
	if n := len(fake.messages()); n != 4 { // reply, STOP confirmation, START confirmation, reply
		t.Fatalf("provider got %d messages, want 4", n)
	}
}

func TestTwilioProviderOptOut(t *testing.T) {
	t.Parallel()
	fake := newFakeTwilio(t)
	fake.refuse = twilioUnsubscribed
	r := newRig(t, twilioConfig(fake.srv.URL))
	ids := []sessions.Identity{{Kind: sessions.IdentityPhone, Value: "+8613900000000", Verified: true}}
	_, err := r.a.Send(context.Background(), channels.Outbound{CustomerID: "c1", Identities: ids, Message: sessions.Message{Text: "hi"}})
	if !errors.Is(err, ErrOptedOut) {
		t.Fatalf("err %v, want ErrOptedOut from Twilio 21610", err)
	}
	if got := r.listed(t, "+8613900000000"); len(got) != 1 || got[0].Source != SourceProvider {
		t.Fatalf("a provider-reported opt-out is not listed: %+v", got)
	}
	_, err = r.a.Send(context.Background(), channels.Outbound{CustomerID: "c1", Identities: ids, Message: sessions.Message{Text: "hi"}})
	if !errors.Is(err, ErrOptedOut) || len(fake.messages()) != 1 {
		t.Fatalf("second send: %v after %d provider calls", err, len(fake.messages()))
	}
}

// TestInboundFromInvalidNumber: a sender that is not a real number
// (letters, which phonenumbers would read as keypad digits) is refused
// with 400 invalid, the number is not echoed, and nothing is stored.
func TestInboundFromInvalidNumber(t *testing.T) {
	t.Parallel()
	r := newRig(t, twilioConfig("http://127.0.0.1:1"))
	for _, from := range []string{"+86 999 bad", "+86999223", "12"} {
		w := r.postTwilio(t, "", inbound("SM1", from, "hello"), nil)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"code":"invalid"`) ||
			!strings.Contains(w.Body.String(), "phone number") {
			t.Fatalf("from %q: %d %s, want 400 invalid naming the phone number", from, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), "999") {
			t.Fatalf("from %q: the answer echoes the number: %s", from, w.Body)
		}
	}
	ctx := context.Background()
	if cvs, _, err := r.store.Conversations(ctx, sessions.ConversationQuery{}); err != nil || len(cvs) != 0 {
		t.Fatalf("conversations after refused messages: %+v, %v", cvs, err)
	}
	if _, err := r.store.IdentityOwner(ctx, sessions.Identity{Kind: sessions.IdentityPhone, Value: "+86999223"}); err == nil {
		t.Fatal("the letters were read as digits and stored")
	}
}

func TestSendWithoutPhone(t *testing.T) {
	t.Parallel()
	r := newRig(t, twilioConfig("http://127.0.0.1:1"))
	_, err := r.a.Send(context.Background(), channels.Outbound{CustomerID: "c1",
		Identities: []sessions.Identity{{Kind: sessions.IdentityEmail, Value: "a@b.c"}}, Message: sessions.Message{Text: "x"}})
	if !errors.Is(err, channels.ErrNoAdapter) {
		t.Fatalf("err %v, want ErrNoAdapter", err)
	}
}

func TestPickPhone(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ids := []sessions.Identity{
		{Kind: sessions.IdentityPhone, Value: "+8613800000001", LinkedAt: now},
		{Kind: sessions.IdentityPhone, Value: "+8613800000002", Verified: true, LinkedAt: now.Add(-time.Hour)},
		{Kind: sessions.IdentityPhone, Value: "+8613800000003", Verified: true, LinkedAt: now.Add(-time.Minute)},
		{Kind: sessions.IdentityPhone, Value: "+86999223", Verified: true, LinkedAt: now}, // stored before numbers were checked
		{Kind: sessions.IdentityEmail, Value: "x@y.z"},
	}
	if got, _ := pickPhone(ids); got != "+8613800000003" {
		t.Fatalf("picked %s", got)
	}
}

func TestMatchKeyword(t *testing.T) {
	t.Parallel()
	c := Config{}.withDefaults()
	tests := []struct {
		text string
		want keyword
	}{
		{"STOP", optOutKeyword}, {"stop", optOutKeyword}, {" Stop\n", optOutKeyword},
		{"UNSUBSCRIBE", optOutKeyword}, {"退订", optOutKeyword}, {" 退订 ", optOutKeyword},
		{"td", optOutKeyword}, {"TD", optOutKeyword},
		{"START", optInKeyword}, {"start", optInKeyword},
		{"STOP please", noKeyword}, {"don't stop", noKeyword}, {"", noKeyword}, {"TDD", noKeyword},
	}
	for _, tt := range tests {
		if got, _ := matchKeyword(tt.text, c.OptOutKeywords, c.OptInKeywords); got != tt.want {
			t.Errorf("matchKeyword(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

// fakeGateway is a json SMS gateway: it checks Omnigate's signature with
// the Standard Webhooks reference library and records the messages.
type fakeGateway struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []JSONMessage
	errs []error
}

func newFakeGateway(t *testing.T, secret string) *fakeGateway {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		defer g.mu.Unlock()
		if err := wh.Verify(body, r.Header); err != nil {
			g.errs = append(g.errs, err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var m JSONMessage
		if err := json.Unmarshal(body, &m); err != nil || r.Header.Get("webhook-id") != m.ID {
			g.errs = append(g.errs, errors.New("bad body or webhook-id"))
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		g.got = append(g.got, m)
		_ = json.NewEncoder(w).Encode(map[string]string{"id": "gw-" + m.ID})
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func TestJSONProviderEndToEnd(t *testing.T) {
	t.Parallel()
	secret := signing.NewSecret()
	gw := newFakeGateway(t, secret)
	cfg := Config{Providers: []ProviderConfig{{Name: "cmpp", Kind: KindJSON, From: "+8610690001",
		URL: gw.srv.URL, Secret: secret, PublicURL: "https://gw.example.com/channels/sms/cmpp"}}}
	r := newRig(t, cfg)
	ref, _ := standardwebhooks.NewWebhook(secret)
	post := func(body string, ts time.Time, sign bool) int {
		req := httptest.NewRequest(http.MethodPost, "/channels/sms/cmpp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		id := "wh_" + sessions.NewID("x")
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", itoa(ts.Unix()))
		if sign {
			sig, _ := ref.Sign(id, ts, []byte(body))
			req.Header.Set("webhook-signature", sig)
		}
		w := httptest.NewRecorder()
		r.mux.ServeHTTP(w, req)
		return w.Code
	}
	msg := `{"type":"message","id":"gw-1","from":"+8613812345678","to":"+8610690001","text":"hi"}`
	if c := post(msg, time.Now(), true); c != http.StatusOK {
		t.Fatalf("signed message: %d", c)
	}
	if c := post(msg, time.Now(), true); c != http.StatusOK {
		t.Fatalf("retry: %d", c)
	}
	if c := post(msg, time.Now().Add(-6*time.Minute), true); c != http.StatusForbidden {
		t.Fatalf("stale message: %d, want 403", c)
	}
	if c := post(msg, time.Now(), false); c != http.StatusForbidden {
		t.Fatalf("unsigned message: %d, want 403", c)
	}
	if c := post(`{"type":"message","id":"gw-2","from":"+8613812345678","extra":1}`, time.Now(), true); c != http.StatusBadRequest {
		t.Fatalf("unknown field: %d, want 400", c)
	}
	cust := owner(t, r.store, "+8613812345678")
	evs := timeline(t, r.store, cust)
	if got := strings.Join(kinds(evs), ","); got != "status_change,message_in" {
		t.Fatalf("timeline %s", got)
	}
	ids, _ := r.store.Identities(context.Background(), cust)
	rc, err := r.a.Send(context.Background(), channels.Outbound{CustomerID: cust, ConversationID: evs[1].ConversationID,
		EventID: "evt_out1", Identities: ids, Message: sessions.Message{Text: "您好"}})
	if err != nil || rc.ID != "gw-evt_out1" {
		t.Fatalf("send: %+v %v", rc, err)
	}
	gw.mu.Lock()
	got, errs := gw.got, gw.errs
	gw.mu.Unlock()
	if len(errs) > 0 || len(got) != 1 {
		t.Fatalf("gateway: %d messages, errors %v", len(got), errs)
	}
	if m := got[0]; m.To != "+8613812345678" || m.Text != "您好" || m.Encoding != UCS2 || m.Segments != 1 ||
		m.Ref.EventID != "evt_out1" || m.StatusURL == "" {
		t.Fatalf("gateway got %+v", m)
	}
	status := `{"type":"status","id":"gw-evt_out1","to":"+8613812345678","status":"DELIVERED","ref":{"event_id":"evt_out1","conversation_id":"` +
		evs[1].ConversationID + `","segments":1}}`
	if c := post(status, time.Now(), true); c != http.StatusOK {
		t.Fatalf("status: %d", c)
	}
	evs = timeline(t, r.store, cust)
	last := evs[len(evs)-1]
	var ds DeliveryStatus
	_ = json.Unmarshal(last.Payload, &ds)
	if last.Kind != sessions.KindDelivery || ds.Status != "delivered" || ds.EventID != "evt_out1" || last.ConversationID != evs[1].ConversationID {
		t.Fatalf("last event %+v %+v", last, ds)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestUnknownProviderAndLimits(t *testing.T) {
	t.Parallel()
	cfg := twilioConfig("http://127.0.0.1:1")
	cfg.MaxBodyBytes = 100
	r := newRig(t, cfg)
	w := httptest.NewRecorder()
	r.mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/channels/sms/nope", strings.NewReader("")))
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `"code":"not_found"`) {
		t.Fatalf("unknown provider: %d %s", w.Code, w.Body)
	}
	w = r.postTwilio(t, "", inbound("SM1", "+8613812345678", strings.Repeat("x", 200)), nil)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("large body: %d", w.Code)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := twilioConfig("")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{DefaultRegion: "XX", Outbound: "nope", Providers: []ProviderConfig{
		{Name: "Bad Name", Kind: "carrier-pigeon"},
		{Name: "j", Kind: KindJSON, URL: "ftp://x", Secret: "short"},
		{Name: "t", Kind: KindTwilio},
	}}
	err := bad.Validate()
	for _, want := range []string{"providers[0].name", "providers[0].kind", "providers[1].url", "providers[1].secret",
		"providers[2].account_sid", "providers[2].auth_token", "outbound", "default_region"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in %v", want, err)
		}
	}
	env := Config{Providers: []ProviderConfig{{Name: "t", Kind: KindTwilio, AuthTokenEnv: "TOK"}}}
	if err := env.ResolveEnv(func(k string) (string, bool) { return "from-env", k == "TOK" }); err != nil || env.Providers[0].AuthToken != "from-env" {
		t.Fatalf("ResolveEnv: %v %+v", err, env.Providers[0])
	}
}

// TestConcurrentStops: STOPs from one number arriving together list it
// once and are confirmed once.
func TestConcurrentStops(t *testing.T) {
	t.Parallel()
	fake := newFakeTwilio(t)
	r := newRig(t, twilioConfig(fake.srv.URL))
	const number = "+8613812345678"
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if w := r.postTwilio(t, "", inbound(fmt.Sprintf("SMstop%d", i), number, "STOP"), nil); w.Code != http.StatusOK {
				t.Errorf("stop %d: %d %s", i, w.Code, w.Body)
			}
		})
	}
	wg.Wait()
	if got := r.listed(t, number); len(got) != 1 {
		t.Fatalf("listed %+v", got)
	}
	if n := len(fake.messages()); n != 1 {
		t.Fatalf("%d confirmations for 8 concurrent STOPs, want 1", n)
	}
}
