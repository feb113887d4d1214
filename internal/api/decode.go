package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// decodeJSON reads the whole (size-capped) body and decodes it into dst
// strictly: application/json only, no unknown fields, one value and
// nothing after it. With optional set, an empty body is fine and leaves
// dst alone.
func decodeJSON(r *http.Request, dst any, optional bool) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil
		}
		return errorf(CodeMalformedJSON, "request body is empty; send a JSON object")
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return errorf(CodeUnsupportedMedia, "send the body as Content-Type: application/json")
	}
	return UnmarshalJSON(b, dst)
}

// readBody reads the whole body, capped at limit.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, bodyError(err)
	}
	return b, nil
}

// bodyError places a failure to read a capped body in the catalogue.
func bodyError(err error) error {
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return errorf(CodeTooLarge, "request body is larger than %d bytes", mbe.Limit)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The gateway's read deadline on bodies (a client sending slowly).
		return errorf(CodeRequestTimeout, "the request body did not arrive in time")
	}
	return errorf(CodeMalformedJSON, "reading the request body: %v", err)
}

// UnmarshalJSON decodes b into dst as request bodies are decoded: no
// unknown fields, one value and nothing after it. Its errors are
// CodeMalformedJSON, saying where.
func UnmarshalJSON(b []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return errorf(CodeMalformedJSON, "%s", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(CodeMalformedJSON, "unexpected data after the JSON value")
	}
	return nil
}

func describeJSONError(err error) string {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return fmt.Sprintf("expected a JSON object, got %s", te.Value)
		}
		return fmt.Sprintf("field %q: expected %s, got %s", te.Field, te.Type, te.Value)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "JSON ends too early"
	}
	// Unknown fields: encoding/json says `json: unknown field "x"`.
	return strings.TrimPrefix(err.Error(), "json: ")
}

// Query returns the query parameters, rejecting names not in allowed (a
// typo like ?stauts=open must not silently list everything) and repeats.
func Query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errorf(CodeInvalid, "malformed query string")
	}
	for k, v := range q {
		if !slices.Contains(allowed, k) {
			return nil, errorf(CodeInvalid, "unknown query parameter %q; allowed: %s", k, strings.Join(allowed, ", "))
		}
		if len(v) > 1 {
			return nil, errorf(CodeInvalid, "query parameter %q given %d times", k, len(v))
		}
	}
	return q, nil
}

// IntParam parses an optional non-negative integer parameter; absent is 0.
func IntParam(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errorf(CodeInvalid, "%s: %q is not a non-negative integer", name, v)
	}
	return n, nil
}

// WriteJSON writes v as a JSON response that is never cached or sniffed.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// Page is the envelope of every list: NextCursor is empty on the last page.
type Page[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// NewPage is the envelope of a list: next is empty on the last page.
func NewPage[T any](data []T, next string) Page[T] {
	if data == nil {
		data = []T{} // "data": [], never null
	}
	return Page[T]{Data: data, NextCursor: next}
}
