package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/dialer"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

// Code is the machine-readable error code clients switch on. The set is
// part of the API: docs/openapi.yaml lists it, and a test keeps the two in
// step.
type Code string

// The catalogue: every error the API returns, with its status.
const (
	CodeInvalid            Code = "invalid"                // 400: well-formed but not acceptable
	CodeMalformedJSON      Code = "malformed_json"         // 400: not JSON, wrong types, unknown fields, trailing data
	CodeUnauthorized       Code = "unauthorized"           // 401: missing or unknown bearer token
	CodeForbidden          Code = "forbidden"              // 403: the role may not do this
	CodeNotFound           Code = "not_found"              // 404
	CodeMethodNotAllowed   Code = "method_not_allowed"     // 405
	CodeConflict           Code = "conflict"               // 409: state does not allow it (topic taken, resolved, client id reused)
	CodeMerged             Code = "merged"                 // 409: the customer was merged into another
	CodeIdentityTaken      Code = "identity_taken"         // 409: the identity belongs to another customer
	CodeWindowClosed       Code = "window_closed"          // 409: the channel can't reach the customer now (WeChat's 48-hour window, unfollowed); the message names the next best channel
	CodeOptedOut           Code = "opted_out"              // 409: the customer opted out of the channel (SMS STOP)
	CodeContactRefused     Code = "contact_refused"        // 409: the contact policy denied or deferred the message; reasons (and until) say why
	CodeUnreachable        Code = "unreachable"            // 409: no channel can reach the customer now (best-channel contact); reasons say why, channel:reason
	CodeRequestTimeout     Code = "request_timeout"        // 408: the body did not arrive in time (config http.body_timeout)
	CodeTooLarge           Code = "too_large"              // 413
	CodeRateLimited        Code = "rate_limited"           // 429: the channel refused more messages until the customer writes, or a rep's phone lookups are over the limit
	CodeUnsupportedMedia   Code = "unsupported_media_type" // 415: body is not application/json
	CodeInternal           Code = "internal"               // 500
	CodeSendFailed         Code = "send_failed"            // 502: the channel refused the message
	CodeChannelUnavailable Code = "channel_unavailable"    // 503: no adapter connected for the channel
	CodeStoreUnavailable   Code = "store_unavailable"      // 503: the store is closed or unreachable
)

var statusOf = map[Code]int{
	CodeInvalid:            http.StatusBadRequest,
	CodeMalformedJSON:      http.StatusBadRequest,
	CodeUnauthorized:       http.StatusUnauthorized,
	CodeForbidden:          http.StatusForbidden,
	CodeNotFound:           http.StatusNotFound,
	CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	CodeConflict:           http.StatusConflict,
	CodeMerged:             http.StatusConflict,
	CodeIdentityTaken:      http.StatusConflict,
	CodeWindowClosed:       http.StatusConflict,
	CodeOptedOut:           http.StatusConflict,
	CodeContactRefused:     http.StatusConflict,
	CodeUnreachable:        http.StatusConflict,
	CodeRequestTimeout:     http.StatusRequestTimeout,
	CodeTooLarge:           http.StatusRequestEntityTooLarge,
	CodeRateLimited:        http.StatusTooManyRequests,
	CodeUnsupportedMedia:   http.StatusUnsupportedMediaType,
	CodeInternal:           http.StatusInternalServerError,
	CodeSendFailed:         http.StatusBadGateway,
	CodeChannelUnavailable: http.StatusServiceUnavailable,
	CodeStoreUnavailable:   http.StatusServiceUnavailable,
}

// Codes lists the catalogue, for the spec test.
func Codes() []Code {
	out := make([]Code, 0, len(statusOf))
	for c := range statusOf {
		out = append(out, c)
	}
	return out
}

// Status returns the HTTP status of a code.
func (c Code) Status() int { return statusOf[c] }

// Error is an error with its place in the catalogue. Message is shown to
// the client; cause is logged for 5xx and never shown.
type Error struct {
	Code    Code
	Message string
	// Reasons are machine-readable words for a contact_refused
	// ("quiet_hours") or an unreachable ("sms:opted_out"); Until is when a deferred message may be sent.
	Reasons []string
	Until   time.Time
	cause   error
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }
func (e *Error) Unwrap() error { return e.cause }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// sentinels maps errors from the layers below onto the catalogue.
var sentinels = []struct {
	err  error
	code Code
}{
	{sessions.ErrNotFound, CodeNotFound},
	{sessions.ErrInvalid, CodeInvalid},
	{sessions.ErrIdentityTaken, CodeIdentityTaken},
	{sessions.ErrMerged, CodeMerged},
	{sessions.ErrConflict, CodeConflict},
	{sessions.ErrClosed, CodeStoreUnavailable},
	{contact.ErrInvalidSuppression, CodeInvalid},
	{contact.ErrInvalidTouch, CodeInvalid},
	{contact.ErrNoSuppression, CodeNotFound},
	{channels.ErrNoAdapter, CodeChannelUnavailable},
	{dialer.ErrNotFound, CodeNotFound},
	{dialer.ErrInvalid, CodeInvalid},
	{dialer.ErrState, CodeConflict},    // not in a state that allows it
	{dialer.ErrConflict, CodeConflict}, // changed meanwhile; retry
	{auth.ErrNoToken, CodeUnauthorized},
	{auth.ErrBadToken, CodeUnauthorized},
	{context.DeadlineExceeded, CodeStoreUnavailable},
	// The client went away or the server is stopping mid-request; nobody
	// reads the answer, and it is not a server bug worth a 500 in the log.
	{context.Canceled, CodeStoreUnavailable},
}

// toError places any error in the catalogue. Client errors keep the
// underlying message (it names ids the client sent, nothing internal);
// server errors get a fixed message and keep the cause for the log.
func toError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	code := CodeInternal
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			code = s.code
			break
		}
	}
	if code == CodeInternal {
		if _, ok := errors.AsType[net.Error](err); ok {
			code = CodeStoreUnavailable // a store that can't be reached
		}
	}
	msg := err.Error()
	switch code {
	case CodeInternal:
		msg = "internal error"
	case CodeStoreUnavailable:
		msg = "the store is unavailable; retry later"
	case CodeUnauthorized:
		msg = "send Authorization: Bearer <token> with a valid token"
	}
	return &Error{Code: code, Message: msg, cause: err}
}

// sendRefusals places each reason a channel did not take a message in
// the catalogue, with what to tell the caller.
var sendRefusals = map[channels.Reason]struct {
	code Code
	say  func(e *channels.SendError) string
}{
	// The adapter's text names the next best channel and never an address.
	channels.ReasonWindowClosed: {CodeWindowClosed, func(e *channels.SendError) string { return channels.Unreachable(e).Error() }},
	channels.ReasonOptedOut: {CodeOptedOut, func(e *channels.SendError) string {
		return fmt.Sprintf("the customer opted out of %s", e.Channel)
	}},
	channels.ReasonRateLimited: {CodeRateLimited, func(e *channels.SendError) string {
		return fmt.Sprintf("%s refuses more messages until the customer writes", e.Channel)
	}},
	channels.ReasonNoChannel: {CodeConflict, func(*channels.SendError) string {
		return "no channel is known for the customer: they have not written lately and have no active conversation"
	}},
	channels.ReasonNotConnected: {CodeChannelUnavailable, func(e *channels.SendError) string {
		return fmt.Sprintf("channel %q is not connected", e.Channel)
	}},
	channels.ReasonUnreachable: {CodeChannelUnavailable, func(e *channels.SendError) string {
		return fmt.Sprintf("channel %q can't reach the customer", e.Channel)
	}},
}

// sendError places the Sender's refusals and failures in the catalogue;
// other errors (the store's) go through toError as usual.
func sendError(err error) error {
	if e, ok := errors.AsType[*channels.RefusedError](err); ok {
		v := e.Verdict
		msg := "the contact policy refused the message"
		if v.Decision == channels.Defer {
			msg = "the contact policy deferred the message until " + v.Until.UTC().Format(time.RFC3339)
		}
		if len(v.Reasons) > 0 {
			msg += " (" + strings.Join(v.Reasons, ", ") + ")"
		}
		return &Error{Code: CodeContactRefused, Message: msg + "; nothing was sent or recorded",
			Reasons: v.Reasons, Until: v.Until, cause: err}
	}
	if errors.Is(err, channels.ErrClientIDReused) {
		return errorf(CodeConflict, "client_id was already used for a different message")
	}
	e, ok := errors.AsType[*channels.SendError](err)
	if !ok {
		return err
	}
	outcome := "nothing was sent or recorded"
	if e.Event != nil {
		outcome = "the message is recorded as failed"
	}
	if r, ok := sendRefusals[e.Reason]; ok {
		return &Error{Code: r.code, Message: r.say(e) + "; " + outcome, cause: err}
	}
	if e.Event == nil {
		// The adapter's own check failed (its store, its shutdown): a
		// server error, logged by writeError.
		return e.Err
	}
	// writeError logs the cause (adapters keep addresses out of errors).
	return &Error{Code: CodeSendFailed, Message: "the channel did not accept the message; it is recorded as failed, retry with a new client_id", cause: err}
}

type errorBody struct {
	Error struct {
		Code    Code      `json:"code"`
		Message string    `json:"message"`
		Reasons []string  `json:"reasons,omitempty"`
		Until   time.Time `json:"until,omitzero"`
		// RequestID is on server errors, the ones logged (with it).
		RequestID string `json:"request_id,omitempty"`
	} `json:"error"`
}
