// Package signing signs and verifies HTTP payloads with the Standard
// Webhooks scheme (https://www.standardwebhooks.com): the headers
// webhook-id, webhook-timestamp (Unix seconds) and webhook-signature, a
// space-separated list of "v1,<base64 HMAC-SHA256>" over
// "<id>.<timestamp>.<body>", keyed with a secret written "whsec_<base64>".
//
// Omnigate uses it both ways: integrators sign what they POST to /v1/events,
// the generic SMS provider signs its webhooks, and Omnigate signs every
// webhook it delivers and every message it hands the generic SMS provider.
//
// What it must not do: know about HTTP routing, stores or retries; it is
// pure functions over bytes and headers, safe for concurrent use.
package signing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names, lower case as the specification writes them (net/http
// canonicalises them on the wire anyway).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Tolerance is how far a webhook-timestamp may lie in the past or the
// future: 5 minutes, as the specification recommends.
const Tolerance = 5 * time.Minute

// SecretPrefix starts every secret in its written form.
const SecretPrefix = "whsec_"

// Errors Verify returns. All of them mean "refuse the request" (401); they
// differ only so the caller can say why.
var (
	ErrMissingHeaders = errors.New("signing: webhook-id, webhook-timestamp and webhook-signature are required")
	ErrBadTimestamp   = errors.New("signing: webhook-timestamp is not Unix seconds")
	ErrStale          = errors.New("signing: webhook-timestamp is more than 5 minutes away from now")
	ErrNoMatch        = errors.New("signing: no signature matches")
	ErrBadSecret      = errors.New("signing: secret is not whsec_<base64> of at least 24 bytes")
)

// MinSecretBytes is the shortest key accepted: 192 bits.
const MinSecretBytes = 24

// Secret is a decoded signing key.
type Secret []byte

// ParseSecret decodes "whsec_<base64>" (the prefix is optional, as in the
// reference libraries).
func ParseSecret(s string) (Secret, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), SecretPrefix))
	if err != nil || len(raw) < MinSecretBytes {
		return nil, ErrBadSecret
	}
	return Secret(raw), nil
}

// NewSecret returns a fresh random secret in its written form (32 bytes).
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails on supported platforms
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// String is the written form, whsec_<base64>.
func (s Secret) String() string { return SecretPrefix + base64.StdEncoding.EncodeToString(s) }

// Sign returns the webhook-signature value for one message: "v1,<base64>".
func (s Secret) Sign(id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(s.mac(id, ts.Unix(), body))
}

func (s Secret) mac(id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, s)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// SetHeaders signs body and writes the three headers onto h.
func (s Secret) SetHeaders(h http.Header, id string, ts time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, s.Sign(id, ts, body))
}

// Verify checks h's headers against body with any of secrets (several
// during a rotation, or one per integration) at time now, and returns the
// index of the secret that matched and the message id. Every secret is
// tried, without stopping at a match, so the time taken does not tell
// which one matched.
func Verify(secrets []Secret, h http.Header, body []byte, now time.Time) (index int, id string, err error) {
	id = h.Get(HeaderID)
	tsHeader := h.Get(HeaderTimestamp)
	sigHeader := h.Get(HeaderSignature)
	if id == "" || tsHeader == "" || sigHeader == "" {
		return -1, "", ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return -1, "", ErrBadTimestamp
	}
	// Compare in seconds: time.Unix with an absurd value must not overflow
	// a Duration.
	if d := now.Unix() - unix; d > int64(Tolerance/time.Second) || d < -int64(Tolerance/time.Second) {
		return -1, "", ErrStale
	}
	var given [][]byte
	for _, part := range strings.Fields(sigHeader) {
		version, sig, ok := strings.Cut(part, ",")
		if !ok || version != "v1" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(sig)
		if err != nil || len(b) != sha256.Size {
			continue
		}
		given = append(given, b)
	}
	index = -1
	for i, s := range secrets {
		want := s.mac(id, unix, body)
		for _, g := range given {
			if hmac.Equal(g, want) && index < 0 {
				index = i
			}
		}
	}
	if index < 0 {
		return -1, id, ErrNoMatch
	}
	return index, id, nil
}

// Describe is a short reason for a client, from a Verify error.
func Describe(err error) string {
	switch {
	case errors.Is(err, ErrMissingHeaders):
		return "sign the request: webhook-id, webhook-timestamp and webhook-signature headers are required (Standard Webhooks)"
	case errors.Is(err, ErrBadTimestamp):
		return "webhook-timestamp must be Unix seconds"
	case errors.Is(err, ErrStale):
		return fmt.Sprintf("webhook-timestamp is more than %v from the server's clock; sign with the current time", Tolerance)
	}
	return "webhook-signature does not match the body with any configured secret"
}
