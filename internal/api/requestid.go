package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"
)

// HeaderRequestID names a request in both directions: a caller (or the
// proxy in front) may send one, and every answer carries the one used.
const HeaderRequestID = "X-Request-Id"

// saneRequestID is what an incoming id may look like to be kept: short,
// and made of characters that are safe in a header, a log line and a
// URL (UUIDs, hex, a load balancer's dotted ids). Anything else is
// replaced, not cleaned, so a log never holds what a client made up to
// break it.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:/+=-]{1,128}$`)

type requestIDKey struct{}

// withRequestID picks the request's id (the caller's if sane, else a new
// random one), answers it in the header and keeps it in the context for
// writeError's log line and body.
func withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get(HeaderRequestID)
	if !saneRequestID.MatchString(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set(HeaderRequestID, id)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
}

// requestID is the id withRequestID chose, "" outside a request.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
