package inbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"

	"github.com/omnigate/omnigate/sessions"
	"github.com/omnigate/omnigate/sessions/redact"
)

// Frame types. docs/inbox-protocol.md is the reference for each.
const (
	// client → server
	frameAuth   = "auth"
	frameWatch  = "watch"
	frameView   = "view"
	frameTyping = "typing"
	framePing   = "ping"
	// server → client
	frameReady        = "ready"
	frameEvent        = "event"
	frameConversation = "conversation"
	// A list view's changes, coalesced; or, after too many, resync.
	frameConversations = "conversations"
	frameResync        = "resync"
	frameViews         = "views" // the answer to view
	framePong          = "pong"
	frameError         = "error"
	// frameTyping is also sent by the server.
)

// Error codes of error frames. Each comes just before the close it
// explains.
const (
	ErrCodeBadRequest   = "bad_request"
	ErrCodeUnauthorized = "unauthorized"
	ErrCodeForbidden    = "forbidden"
)

// Subprotocol is the WebSocket subprotocol the server speaks. A client
// that authenticates in the Sec-WebSocket-Protocol header offers it first,
// then BearerPrefix + the base64url (unpadded) token; the server answers
// with Subprotocol alone, so the token is never echoed.
const (
	Subprotocol  = "omnigate.inbox.v1"
	BearerPrefix = "omnigate.bearer."
)

// TypingTTL is how long a typing indicator stays on without being
// repeated; senders repeat "on" every few seconds while typing.
const TypingTTL = 6000 // milliseconds

var customerIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// clientFrame is any frame a rep sends. Only the fields of its Type are
// set.
type clientFrame struct {
	Type string `json:"type"`
	// auth
	Token string `json:"token,omitempty"`
	// watch, typing: the customer shown; "" in watch stops watching.
	CustomerID string `json:"customer_id,omitempty"`
	// typing
	On bool `json:"on,omitempty"`
	// view: the list views to follow, replacing the previous ones.
	Views []string `json:"views,omitempty"`
}

var errFrame = errors.New("inbox: bad frame")

// parseFrame decodes one frame strictly: one JSON object of a known type,
// no unknown fields, nothing after it, fields valid for the type.
func parseFrame(b []byte) (clientFrame, error) {
	var f clientFrame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("%w: %v", errFrame, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return f, fmt.Errorf("%w: data after the JSON object", errFrame)
	}
	switch f.Type {
	case frameAuth:
		if f.Token == "" || len(f.Token) > 1024 {
			return f, fmt.Errorf("%w: auth needs a token", errFrame)
		}
	case frameWatch:
		if f.CustomerID != "" && !customerIDRe.MatchString(f.CustomerID) {
			return f, fmt.Errorf("%w: customer_id is malformed", errFrame)
		}
	case frameView:
		if len(f.Views) > int(numViews) {
			return f, fmt.Errorf("%w: view lists at most %d views", errFrame, numViews)
		}
		for i, name := range f.Views {
			if _, ok := parseView(name); !ok || slices.Contains(f.Views[:i], name) {
				return f, fmt.Errorf("%w: view %q is unknown or repeated", errFrame, name)
			}
		}
	case frameTyping:
		if !customerIDRe.MatchString(f.CustomerID) {
			return f, fmt.Errorf("%w: typing needs a customer_id", errFrame)
		}
	case framePing:
	case "":
		return f, fmt.Errorf("%w: no type", errFrame)
	default:
		return f, fmt.Errorf("%w: unknown type %q", errFrame, f.Type)
	}
	if f.Type != frameAuth && f.Token != "" {
		return f, fmt.Errorf("%w: token is only for auth", errFrame)
	}
	if f.Type != frameView && f.Views != nil {
		return f, fmt.Errorf("%w: views is only for view", errFrame)
	}
	return f, nil
}

// RepInfo is who the socket belongs to, as ready tells the client.
type RepInfo struct {
	// ID is the rep id (assignee, owner) or, for an admin key, its name.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Role is rep, supervisor or admin.
	Role string `json:"role"`
}

type readyFrame struct {
	Type string  `json:"type"`
	Rep  RepInfo `json:"rep"`
	// Masked says phone numbers in events are masked for this role.
	Masked          bool `json:"masked"`
	MaxMessageBytes int  `json:"max_message_bytes"`
	TypingTTLMS     int  `json:"typing_ttl_ms"`
	// Views are the list views this role may follow (view frame).
	Views []string `json:"views"`
}

type eventFrame struct {
	Type  string         `json:"type"`
	Event sessions.Event `json:"event"`
}

type conversationFrame struct {
	Type         string                `json:"type"`
	Conversation sessions.Conversation `json:"conversation"`
}

type typingFrame struct {
	Type       string `json:"type"`
	CustomerID string `json:"customer_id"`
	// From is "customer" or "rep:<id>" (a colleague on the same customer).
	From    string `json:"from"`
	RepName string `json:"rep_name,omitempty"`
	On      bool   `json:"on"`
}

type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type pongFrame struct {
	Type string `json:"type"`
}

// outFrame is one server frame, marshalled once and masked at most once
// however many sockets it goes to. A frame given to more than one socket
// is used under Hub.mu.
type outFrame struct{ full, masked []byte }

func newFrame(v any) *outFrame {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only frame types of this file, which always marshal
	}
	return &outFrame{full: b}
}

// bytes is the frame as a socket sees it: for a socket that sees phone
// numbers masked (maskFor), with every phone-like sequence in it masked
// (redact.JSON), whatever field it is in.
func (f *outFrame) bytes(masked bool) []byte {
	if !masked {
		return f.full
	}
	if f.masked == nil {
		f.masked = redact.JSON(f.full)
	}
	return f.masked
}
