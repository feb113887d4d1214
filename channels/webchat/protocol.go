package webchat

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omnigate/omnigate/sessions"
)

// Frame types. docs/webchat-protocol.md is the reference for each.
const (
	// client → server
	frameHello   = "hello"
	frameMessage = "message"
	frameTyping  = "typing"
	frameOffline = "offline"
	// server → client
	frameWelcome      = "welcome"
	frameEvent        = "event"
	frameAck          = "ack"
	frameAvailability = "availability"
	frameError        = "error"
)

// Error codes of error frames: the catalogue the widget translates.
const (
	// ErrCodeBadRequest: the frame could not be understood; a close with
	// CloseBadRequest follows.
	ErrCodeBadRequest = "bad_request"
	// ErrCodeIdentityRefused: the signed identity did not verify; a close
	// with CloseIdentityRefused follows.
	ErrCodeIdentityRefused = "identity_refused"
	// ErrCodeInvalid: a message or form field is missing or malformed. The
	// frame named by client_id was not applied; resending it unchanged
	// will fail again. The socket stays open.
	ErrCodeInvalid = "invalid"
	// ErrCodeServer: the server could not apply the frame; a close with
	// CloseServerError follows, and the client resends after reconnecting.
	ErrCodeServer = "server_error"
	// ErrCodeTooManyRequests: over a rate limit (the visitor's frames, or
	// new visitors from the client's address); the frame was not applied
	// and a close with CloseTooManyRequests follows. The client resends
	// after reconnecting with backoff.
	ErrCodeTooManyRequests = "too_many_requests"
)

// Field limits. The frame size cap (Site.MaxMessageBytes) bounds them all;
// these keep single fields sane.
const (
	maxClientID = 64
	maxName     = 100
	maxEmail    = 254
	maxLang     = 35
)

var errFrame = errors.New("webchat: bad frame")

// clientFrame is any frame a visitor sends, decoded and checked. Only the
// fields of its Type are set.
type clientFrame struct {
	Type string `json:"type"`
	// hello: the last sequence the client saw and the customer it belongs
	// to (from an earlier welcome or ack), and the browser's language.
	After      uint64 `json:"after,omitempty"`
	CustomerID string `json:"customer_id,omitempty"`
	Lang       string `json:"lang,omitempty"`
	// hello: the browser's IANA time zone and the page the widget is on,
	// hints for naming the visitor (visitor.go); dropped when malformed.
	TimeZone string `json:"tz,omitempty"`
	Page     string `json:"page,omitempty"`
	// hello: the credentials. They travel here, not in the socket URL,
	// which proxies and access logs keep. UserExpires is Unix seconds; 0
	// means the deprecated signature without an expiry.
	Visitor     string `json:"visitor,omitempty"`
	UserID      string `json:"user_id,omitempty"`
	UserHash    string `json:"user_hash,omitempty"`
	UserExpires int64  `json:"user_expires,omitempty"`
	// message and offline
	ClientID string `json:"client_id,omitempty"`
	Text     string `json:"text,omitempty"`
	// typing
	On bool `json:"on,omitempty"`
	// offline: the form's fields; Message is the text left.
	Name    string `json:"name,omitempty"`
	Email   string `json:"email,omitempty"`
	Phone   string `json:"phone,omitempty"`
	Message string `json:"message,omitempty"`
}

// fieldError is a problem with one field of a well-formed frame: the
// frame is refused with ErrCodeInvalid but the socket stays open.
type fieldError struct{ msg string }

func (e *fieldError) Error() string { return e.msg }

func invalid(format string, args ...any) error { return &fieldError{fmt.Sprintf(format, args...)} }

// parseFrame decodes one text frame from a visitor. A frame that is not a
// JSON object of a known type wraps errFrame; a known frame with a bad
// field gives a *fieldError (and the frame, for its client id).
func parseFrame(data []byte) (clientFrame, error) {
	var f clientFrame
	if !utf8.Valid(data) {
		return f, fmt.Errorf("%w: not UTF-8", errFrame)
	}
	// Unmarshal, not a Decoder: it refuses anything after the value too,
	// without a Decoder's buffer per frame.
	if err := json.Unmarshal(data, &f); err != nil {
		return clientFrame{}, fmt.Errorf("%w: %v", errFrame, err)
	}
	switch f.Type {
	case frameHello:
		if f.CustomerID != "" && (len(f.CustomerID) > 64 || !isToken(f.CustomerID)) {
			return f, invalid("customer_id is malformed")
		}
		if f.Lang != "" && (len(f.Lang) > maxLang || !isLangTag(f.Lang)) {
			f.Lang = "" // a hint only: drop it rather than refuse the socket
		}
		f.TimeZone, f.Page = checkZone(f.TimeZone), checkPage(f.Page)
		if f.UserExpires < 0 {
			return f, invalid("user_expires is negative")
		}
	case frameMessage:
		if err := checkClientID(f.ClientID); err != nil {
			return f, err
		}
		if err := checkText(f.Text); err != nil {
			return f, err
		}
	case frameTyping:
	case frameOffline:
		if err := checkClientID(f.ClientID); err != nil {
			return f, err
		}
		if err := checkText(f.Message); err != nil {
			return f, err
		}
		f.Name = strings.TrimSpace(f.Name)
		if utf8.RuneCountInString(f.Name) > maxName || strings.ContainsFunc(f.Name, isControl) {
			return f, invalid("name is longer than %d characters or has a control character", maxName)
		}
		if f.Email == "" && f.Phone == "" {
			return f, invalid("the form needs an email or a phone number")
		}
		if f.Email != "" {
			e, ok := normalizeEmail(f.Email)
			if !ok {
				return f, invalid("email is not an address")
			}
			f.Email = e
		}
		if f.Phone != "" {
			// No default region: a visitor may be anywhere, so the country
			// code is asked for rather than guessed.
			p, err := sessions.NormalizePhone(f.Phone, "")
			if pe, ok := errors.AsType[*sessions.PhoneError](err); ok {
				return f, invalid("phone: %s; write a real number in international form, such as +8613812345678", pe.Reason)
			}
			f.Phone = p
		}
	case "":
		return clientFrame{}, fmt.Errorf("%w: no type", errFrame)
	default:
		return clientFrame{}, fmt.Errorf("%w: unknown type %.32q", errFrame, f.Type)
	}
	return f, nil
}

func checkClientID(id string) error {
	if id == "" || len(id) > maxClientID || !isToken(id) {
		return invalid("client_id must be 1 to %d letters, digits, '-', '_', '.' or ':'", maxClientID)
	}
	return nil
}

func checkText(s string) error {
	if strings.TrimSpace(s) == "" {
		return invalid("text is empty")
	}
	return nil
}

// isToken reports whether s has only characters safe in ids.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func isLangTag(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// normalizeEmail lower-cases an address and checks its shape: one "@",
// something on both sides, a dot in the domain, no spaces.
func normalizeEmail(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(s) > maxEmail || !strings.Contains(domain, ".") ||
		strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.ContainsAny(s, " \t\r\n|<>\"") || strings.Contains(domain, "@") {
		return "", false
	}
	return s, true
}

// Server frames. Each is marshalled on its own; the type field comes first
// so a client can switch on it while reading.

type welcomeFrame struct {
	Type string `json:"type"`
	// CustomerID is empty for a visitor who has not written yet: the
	// customer is made by the first message or offline form, whose ack
	// names it.
	CustomerID string `json:"customer_id,omitempty"`
	// LastSeq is the head of the timeline when the socket was set up.
	LastSeq uint64 `json:"last_seq"`
	// After is where the replay that follows starts: the client's after,
	// or, for a new client or a reset, the start of the recent history.
	After uint64 `json:"after"`
	// Reset tells the client to drop what it shows: its after belonged to
	// another customer (the visitor was merged) or to no timeline at all.
	Reset           bool `json:"reset,omitempty"`
	Verified        bool `json:"verified,omitempty"`
	MaxMessageBytes int  `json:"max_message_bytes"`
}

// eventFrame is a timeline event as the visitor may see it: no notes, no
// rep ids, no identities, no integrator data; only the fields below.
type eventFrame struct {
	Type string             `json:"type"`
	Seq  uint64             `json:"seq"`
	Kind sessions.EventKind `json:"kind"`
	Time time.Time          `json:"time"`
	// From is "visitor", "rep" or "system".
	From     string           `json:"from"`
	RepName  string           `json:"rep_name,omitempty"`
	Text     string           `json:"text,omitempty"`
	Media    []sessions.Media `json:"media,omitempty"`
	ClientID string           `json:"client_id,omitempty"`
	// Status is set on status_change events.
	Status sessions.ConversationStatus `json:"status,omitempty"`
}

type ackFrame struct {
	Type     string `json:"type"`
	ClientID string `json:"client_id"`
	Seq      uint64 `json:"seq"`
	// CustomerID is the customer the frame was stored for, to send back
	// in the next hello (the first message makes it).
	CustomerID string `json:"customer_id"`
	// Duplicate says the frame had been applied before (a resend).
	Duplicate bool `json:"duplicate,omitempty"`
}

type typingFrame struct {
	Type    string `json:"type"`
	On      bool   `json:"on"`
	RepName string `json:"rep_name,omitempty"`
}

type availabilityFrame struct {
	Type   string `json:"type"`
	Agents bool   `json:"agents"`
}

type errorFrame struct {
	Type     string `json:"type"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
	ClientID string `json:"client_id,omitempty"`
}

// visibleEvent turns a timeline event into what the visitor may see, or
// reports false for events that are not the visitor's business: internal
// notes, identity and merge records, integrator events, calls, delivery
// reports, and messages on channels other than web chat (a shared browser
// must not show a customer's SMS or WeChat history). repName resolves a
// rep id to a display name; the id itself never leaves the server.
func visibleEvent(ev sessions.Event, repName func(string) string) (eventFrame, bool) {
	f := eventFrame{Type: frameEvent, Seq: ev.Seq, Kind: ev.Kind, Time: ev.Time, From: "system"}
	rep, isRep := strings.CutPrefix(ev.Author, "rep:")
	switch {
	case ev.Author == "customer":
		f.From = "visitor"
	case isRep:
		f.From = "rep"
	}
	switch ev.Kind {
	case sessions.KindMessageIn, sessions.KindMessageOut:
		if ev.Channel != sessions.ChannelWebchat {
			return eventFrame{}, false
		}
		var m sessions.Message
		if json.Unmarshal(ev.Payload, &m) != nil {
			return eventFrame{}, false
		}
		f.Text, f.Media = m.Text, m.Media
		if ev.Kind == sessions.KindMessageIn {
			// Only the visitor's own ids go back: they match the echo to
			// what the widget shows as "sending".
			f.ClientID = m.ClientID
		}
		if isRep {
			f.RepName = repName(rep)
		}
	case sessions.KindStatusChange:
		var c sessions.ConversationChange
		if json.Unmarshal(ev.Payload, &c) != nil || !c.Status.Valid() {
			return eventFrame{}, false
		}
		f.Status, f.From = c.Status, "system"
	case sessions.KindAssignment, sessions.KindTransfer:
		// Two payloads: a ConversationChange from the API names the new
		// assignee; a router decision names the rep in rep_id, and its kind
		// says whether the rep got the conversation ("assign", "accepted")
		// or not yet (offers, queueing: not the visitor's business).
		var c struct {
			Assignee string `json:"assignee"`
			Decision string `json:"kind"`
			RepID    string `json:"rep_id"`
		}
		if json.Unmarshal(ev.Payload, &c) != nil {
			return eventFrame{}, false
		}
		who := c.Assignee
		if who == "" && (c.Decision == "assign" || c.Decision == "accepted") {
			who = c.RepID
		}
		if who == "" {
			return eventFrame{}, false
		}
		f.RepName, f.From = repName(strings.TrimPrefix(who, "rep:")), "system"
	default:
		return eventFrame{}, false
	}
	return f, true
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with this file's frame types
	}
	return b
}
