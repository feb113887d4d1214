package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/omnigate/omnigate/internal/auth"
)

// Handler is a route's code: it writes a success response itself and
// returns errors for the server to write from the catalogue.
type Handler func(w http.ResponseWriter, r *http.Request, p auth.Principal) error

// Route is a route another package contributes to the API (package
// webhooks: /v1/events and /v1/webhooks/...). The server serves it as its
// own: it authenticates the request, caps the body, counts and times it
// in omnigate_http_*, and writes Handle's errors from the catalogue.
// Another package builds Routes and the gateway passes them in
// Options.Routes, so this package imports none of its contributors.
type Route struct {
	// Pattern is a ServeMux pattern with a method and a path under /v1/:
	// "POST /v1/events".
	Pattern string
	// Roles may call the route with a bearer token; the rest get 403.
	// Ignored when Signature is set.
	Roles []auth.Role
	// Signature, when set, authenticates by a signature over the body
	// instead of a bearer token.
	Signature *Signature
	// MaxBodyBytes caps the body; larger gets 413 too_large. Zero means
	// Config.MaxBodyBytes.
	MaxBodyBytes int64
	// Handle serves the request once authenticated.
	Handle Handler
}

// Signature authenticates a route whose callers sign the body rather than
// send a bearer token (Standard Webhooks). The server reads the capped
// body, calls Verify, and hands Handle the principal Verify returned, with
// the body readable again from the start.
type Signature struct {
	// Scheme is the WWW-Authenticate challenge's scheme on a 401
	// ("Standard-Webhooks").
	Scheme string
	// Verify checks the signature in h over body. Its error goes through
	// the catalogue: an *Error with CodeUnauthorized says what is wrong
	// with the signature.
	Verify func(h http.Header, body []byte) (auth.Principal, error)
}

func (rt Route) check() error {
	method, path, ok := strings.Cut(rt.Pattern, " ")
	switch {
	case !ok || method == "" || !strings.HasPrefix(path, "/v1/"):
		return fmt.Errorf("api: route %q: want a method and a path under /v1/", rt.Pattern)
	case rt.Handle == nil:
		return fmt.Errorf("api: route %q has no Handle", rt.Pattern)
	case rt.Signature == nil && len(rt.Roles) == 0:
		return fmt.Errorf("api: route %q: no role may call it and it takes no signature", rt.Pattern)
	case rt.Signature != nil && rt.Signature.Verify == nil:
		return fmt.Errorf("api: route %q: Signature without Verify", rt.Pattern)
	case rt.MaxBodyBytes < 0:
		return fmt.Errorf("api: route %q: MaxBodyBytes %d is negative", rt.Pattern, rt.MaxBodyBytes)
	}
	return nil
}

// contribute registers routes from Options.Routes after the API's own.
func (s *Server) contribute(routes []Route) error {
	var errs []error
	for _, rt := range routes {
		if err := rt.check(); err != nil {
			errs = append(errs, err)
		} else if slices.Contains(s.routes, rt.Pattern) {
			errs = append(errs, fmt.Errorf("api: route %q is registered twice", rt.Pattern))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, rt := range routes {
		limit := rt.MaxBodyBytes
		if limit == 0 {
			limit = s.cfg.maxBody()
		}
		if rt.Signature != nil {
			s.public(rt.Pattern, s.signed(rt.Pattern, *rt.Signature, limit, rt.Handle))
		} else {
			s.handleCapped(rt.Pattern, limit, rt.Handle, rt.Roles...)
		}
	}
	return nil
}

// signed serves a route authenticated by sig: read the capped body (413
// before any signature check, as a bearer route would answer once
// authenticated), verify, hand the body back.
func (s *Server) signed(pattern string, sig Signature, limit int64, h Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(w, r, limit)
		if err != nil {
			s.writeError(w, r, toError(err))
			return
		}
		p, err := sig.Verify(r.Header, body)
		if err != nil {
			e := toError(err)
			if e.Code == CodeUnauthorized && sig.Scheme != "" {
				w.Header().Set("WWW-Authenticate", sig.Scheme+` realm="omnigate"`)
			}
			s.writeError(w, r, e)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := h(w, r, p); err != nil {
			s.writeError(w, r, toError(err))
		}
	}
}

// The helpers below let contributed routes read requests exactly as the
// API's own routes do.

// DecodeJSON reads the (capped) body and decodes it into dst strictly:
// application/json only, no unknown fields, one value and nothing after
// it. Its errors are from the catalogue.
func DecodeJSON(r *http.Request, dst any) error { return decodeJSON(r, dst, false) }
