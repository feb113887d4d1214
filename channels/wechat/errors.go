package wechat

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/omnigate/omnigate/channels"
)

// Errors Send and SetTyping return, wrapped. ErrWindowClosed and
// ErrUnsubscribed come inside an *UnreachableError, which also matches
// channels.ErrNoAdapter (the customer can't be reached on this channel
// now) and names the next best channel.
var (
	// ErrWindowClosed: the customer last wrote to every account they can
	// be reached on more than the window (48 hours) ago, or WeChat
	// answered errcode 45015. Nothing was sent. Only a message from the
	// customer reopens the window; reach them on another channel.
	ErrWindowClosed = errors.New("wechat: customer-service window closed (no message from the customer in the last 48 hours)")
	// ErrUnsubscribed: the customer unfollowed the account (or WeChat
	// answered 43004). Nothing was sent.
	ErrUnsubscribed = errors.New("wechat: the customer no longer follows the official account")
	// ErrTooManyMessages: WeChat answered 45047, too many
	// customer-service messages to this customer without a reply from
	// them. Nothing was sent; wait for the customer to write.
	// It wraps channels.ErrRateLimited.
	ErrTooManyMessages = fmt.Errorf("wechat: errcode 45047 (%w)", channels.ErrRateLimited)
	// ErrNoMedia: the message has media this adapter can't send (not an
	// image, or no Options.Media to read it with).
	ErrNoMedia = errors.New("wechat: media can't be sent")
	// ErrTokenUnavailable: no access token could be had (WeChat refused
	// the AppSecret, or another node holds the refresh lock and has not
	// published a token in time).
	ErrTokenUnavailable = errors.New("wechat: no access token")
	// ErrClosed: the adapter was closed.
	ErrClosed = errors.New("wechat: adapter closed")
)

// UnreachableError says why a customer can't get a WeChat message now and
// where to reach them instead. errors.Is matches its Reason
// (ErrWindowClosed or ErrUnsubscribed) and channels.ErrNoAdapter; the HTTP
// API maps it to a clear client error whose message is Error().
type UnreachableError struct {
	// Reason is ErrWindowClosed or ErrUnsubscribed.
	Reason error
	// Account is the key of the account the customer last wrote to; empty
	// when they never wrote to a configured account within the window.
	Account string
	// LastInbound is when the customer last wrote to Account; zero when
	// not within the window.
	LastInbound time.Time
	// Next is the customer's next best channel ("sms" when a phone number
	// is known, else "webchat" when they used the widget), empty when
	// there is none.
	Next string
}

func (e *UnreachableError) Error() string {
	var b strings.Builder
	b.WriteString(e.Reason.Error())
	if e.Account != "" {
		fmt.Fprintf(&b, "; account %s", e.Account)
	}
	if !e.LastInbound.IsZero() {
		fmt.Fprintf(&b, ", last message from the customer %s", e.LastInbound.UTC().Format(time.RFC3339))
	}
	if e.Next != "" {
		fmt.Fprintf(&b, "; next best channel: %s", e.Next)
	} else {
		b.WriteString("; no other channel is known for the customer")
	}
	return b.String()
}

// NextChannel is Next. With it the HTTP API can find the next best
// channel through errors.As with an interface{ NextChannel() string },
// without importing this package.
func (e *UnreachableError) NextChannel() string { return e.Next }

// Unwrap lets errors.Is match the reason and channels.ErrNoAdapter.
func (e *UnreachableError) Unwrap() []error { return []error{e.Reason, channels.ErrNoAdapter} }

// APIError is an errcode from the WeChat API that has no sentinel of its
// own. Its message is WeChat's errmsg, which never quotes an OpenID.
type APIError struct {
	// API is the path called, such as "/cgi-bin/message/custom/send".
	API     string
	Code    int64
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("wechat: %s: errcode %d: %s", e.API, e.Code, e.Message)
}

// WeChat errcodes this package acts on.
const (
	codeInvalidCredential = 40001 // access token invalid or not the latest
	codeInvalidToken      = 40014 // access token malformed
	codeTokenExpired      = 42001
	codeRequireSubscribe  = 43004 // the customer does not follow the account
	codeOutOfWindow       = 45015 // response out of time limit (48 h)
	codeTooManyMessages   = 45047 // out of response count limit
)

// tokenRejected reports whether WeChat refused the access token itself, so
// one refresh and one retry are worth it.
func tokenRejected(code int64) bool {
	return code == codeInvalidCredential || code == codeTokenExpired || code == codeInvalidToken
}

// Callback errors: the one catalogue of what /channels/wechat/{key}
// answers besides "success" and the handshake's echostr. WeChat only looks
// at the status (anything but 200 within 5 s is retried, up to three
// times); the JSON body, {"error":{"code":...,"message":...}}, is for
// people reading logs and for tests. Nothing is stored for any of them.
type callbackError struct {
	status  int
	code    string
	message string
}

var (
	errUnknownAccount = callbackError{http.StatusNotFound, "unknown_account", "no official account has this key"}
	errMethod         = callbackError{http.StatusMethodNotAllowed, "method_not_allowed", "only GET (handshake) and POST (messages)"}
	errBadQuery       = callbackError{http.StatusBadRequest, "bad_request", "signature, timestamp and nonce are required"}
	errBadSignature   = callbackError{http.StatusForbidden, "bad_signature", "the signature does not match the account's token"}
	errStale          = callbackError{http.StatusForbidden, "stale_timestamp", "the timestamp is too far from the server's clock"}
	errReplay         = callbackError{http.StatusForbidden, "replayed", "this timestamp and nonce were already used with another body"}
	errTooLarge       = callbackError{http.StatusRequestEntityTooLarge, "too_large", "the body is larger than max_body_bytes"}
	errContentType    = callbackError{http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be declared text/xml (or application/xml), as WeChat sends it"}
	errMalformed      = callbackError{http.StatusBadRequest, "malformed_xml", "the body is not one WeChat XML message"}
	errNotEncrypted   = callbackError{http.StatusBadRequest, "not_encrypted", "the account is in safe mode and the body is not encrypted"}
	errEncrypted      = callbackError{http.StatusBadRequest, "unexpected_encryption", "the account is in plain mode and the body is encrypted; set its mode"}
	errDecrypt        = callbackError{http.StatusBadRequest, "decrypt_failed", "the encrypted body does not decrypt with the account's key and AppID"}
	errStore          = callbackError{http.StatusServiceUnavailable, "store_unavailable", "the message could not be stored; WeChat will retry"}
	errShutdown       = callbackError{http.StatusServiceUnavailable, "shutting_down", "this node is stopping; WeChat will retry"}
)

func (e callbackError) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.status)
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": e.code, "message": e.message}})
	_, _ = w.Write(append(b, '\n'))
}
