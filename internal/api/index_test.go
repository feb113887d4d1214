package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/docs"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

// TestIndexAndSpec: /v1, the URL the start-up banner prints, answers with
// an index naming the OpenAPI document and the routes, and the document
// is served as it is in docs/, without a token.
func TestIndexAndSpec(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1", nil))
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1 = %d %s: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var index struct {
		OpenAPI string   `json:"openapi"`
		Routes  []string `json:"routes"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &index); err != nil {
		t.Fatal(err)
	}
	if index.OpenAPI != "/v1/openapi.yaml" || !slices.Equal(index.Routes, f.srv.Routes()) {
		t.Fatalf("index = %+v", index)
	}

	w = httptest.NewRecorder()
	f.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/openapi.yaml", nil))
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/yaml") || w.Body.String() != docs.OpenAPI {
		t.Fatalf("GET /v1/openapi.yaml = %d %s, %d bytes", w.Code, w.Header().Get("Content-Type"), w.Body.Len())
	}
	if !strings.HasPrefix(docs.OpenAPI, "openapi: 3.1") {
		t.Fatalf("docs.OpenAPI starts %.40q", docs.OpenAPI)
	}
}

// TestRequestID: every answer carries X-Request-Id, the caller's when it
// is sane, a new one otherwise; a server error puts it in its body and
// its log line, so a report can be matched to the log.
func TestRequestID(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	store := sessions.NewMemoryStore()
	srv, err := api.New(api.Config{}, api.Options{Store: store, Auth: auth.New(authConfig),
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, id string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if id != "" {
			r.Header.Set("X-Request-Id", id)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	for _, id := range []string{"3f2a9c1e-6b7d-4e0a-9f51-2c8d7e6b1a40", "lb-1.abc:42"} {
		if got := get("/healthz", id).Header().Get("X-Request-Id"); got != id {
			t.Errorf("X-Request-Id %q echoed as %q", id, got)
		}
	}
	seen := map[string]bool{}
	for _, id := range []string{"", strings.Repeat("a", 200), "two words", "<script>", "ü"} {
		got := get("/v1/nope", id).Header().Get("X-Request-Id")
		if got == "" || got == id || seen[got] {
			t.Errorf("X-Request-Id %q answered with %q; want a new one", id, got)
		}
		seen[got] = true
	}

	// A closed store: /readyz fails with a 503, which is logged.
	_ = store.Close()
	w := get("/readyz", "ticket-77")
	var body struct {
		Error struct {
			Code      string `json:"code"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 503 || body.Error.RequestID != "ticket-77" {
		t.Fatalf("503 body %s (%v), want request_id ticket-77", w.Body, err)
	}
	if !strings.Contains(logs.String(), `"request_id":"ticket-77"`) {
		t.Fatalf("the error's log line lacks its request id:\n%s", logs.String())
	}
	// A client error is not logged, so its body needs no id; the header
	// has it.
	if w := get("/v1/nope", "x-1"); strings.Contains(w.Body.String(), "request_id") || w.Header().Get("X-Request-Id") != "x-1" {
		t.Fatalf("404: %s %v", w.Body, w.Header())
	}
}
