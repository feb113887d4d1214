package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

// echo answers who called and what body it read.
func echo(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var v map[string]any
	if err := api.DecodeJSON(r, &v); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"by": p.Author(), "body": v})
	return nil
}

// TestContributedRoutes: a route another package contributes is served
// as the API's own: bearer roles or a signature checked by the shell, the
// body capped before the signature is checked, errors from the catalogue,
// every request counted.
func TestContributedRoutes(t *testing.T) {
	t.Parallel()
	store := sessions.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	reg := prometheus.NewRegistry()
	verified := 0
	sig := &api.Signature{Scheme: "Test-Sig", Verify: func(h http.Header, body []byte) (auth.Principal, error) {
		verified++
		if h.Get("Sig") != fmt.Sprintf("%d", len(body)) {
			return auth.Principal{}, &api.Error{Code: api.CodeUnauthorized, Message: "bad signature"}
		}
		return auth.Principal{Role: auth.RoleIntegrator, ID: "shop"}, nil
	}}
	srv, err := api.New(api.Config{MaxBodyBytes: 64}, api.Options{Store: store, Auth: auth.New(authConfig), Metrics: reg,
		Routes: []api.Route{
			{Pattern: "POST /v1/signed", Signature: sig, MaxBodyBytes: 32, Handle: echo},
			{Pattern: "POST /v1/admin-only", Roles: []auth.Role{auth.RoleAdmin}, Handle: echo},
		}})
	if err != nil {
		t.Fatal(err)
	}
	big := `{"x":"` + strings.Repeat("a", 100) + `"}`
	tests := []struct {
		name, path, token, sig, body string
		status                       int
		want, challenge              string
	}{
		{"signed", "/v1/signed", "", "8", `{"a":1}` + "\n", 200, `{"body":{"a":1},"by":"integrator:shop"}`, ""},
		{"bad signature", "/v1/signed", "", "1", `{"a":1}`, 401, `{"error":{"code":"unauthorized","message":"bad signature"}}`, `Test-Sig realm="omnigate"`},
		{"a bearer token is no signature", "/v1/signed", adminToken, "", `{"a":1}`, 401, `"unauthorized"`, `Test-Sig realm="omnigate"`},
		{"over the route's cap, before the signature", "/v1/signed", "", "", `{"x":"` + strings.Repeat("a", 40) + `"}`, 413,
			`{"error":{"code":"too_large","message":"request body is larger than 32 bytes"}}`, ""},
		{"signed, not JSON", "/v1/signed", "", "3", `{"a`, 400, `"malformed_json"`, ""},
		{"admin", "/v1/admin-only", adminToken, "", `{"a":1}`, 200, `{"body":{"a":1},"by":"admin:ops"}`, ""},
		{"anonymous", "/v1/admin-only", "", "", `{"a":1}`, 401, `"unauthorized"`, `Bearer realm="omnigate"`},
		{"rep", "/v1/admin-only", aliceToken, "", `{"a":1}`, 403,
			`{"error":{"code":"forbidden","message":"role rep may not POST /v1/admin-only"}}`, ""},
		{"over the API's cap", "/v1/admin-only", adminToken, "", big, 413,
			`{"error":{"code":"too_large","message":"request body is larger than 64 bytes"}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			if tt.sig != "" {
				req.Header.Set("Sig", tt.sig)
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, req)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("%d %s, want %d with %s", w.Code, w.Body, tt.status, tt.want)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
		})
	}
	// The oversized body never reached Verify.
	if verified != 4 {
		t.Errorf("Verify called %d times, want 4", verified)
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(w.Body)
	for _, want := range []string{
		`omnigate_http_requests_total{code="2xx",route="POST /v1/signed"} 1`,
		`omnigate_http_requests_total{code="4xx",route="POST /v1/signed"} 4`,
		`omnigate_http_requests_total{code="2xx",route="POST /v1/admin-only"} 1`,
		`omnigate_http_requests_total{code="4xx",route="POST /v1/admin-only"} 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestNewRefusesBadRoutes: a contributed route nobody could call, or that
// clashes with another, is an error from New naming it.
func TestNewRefusesBadRoutes(t *testing.T) {
	t.Parallel()
	store := sessions.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	admins := []auth.Role{auth.RoleAdmin}
	tests := []struct {
		name  string
		route api.Route
		want  string
	}{
		{"no method", api.Route{Pattern: "/v1/x", Roles: admins, Handle: echo}, `"/v1/x": want a method`},
		{"outside /v1", api.Route{Pattern: "GET /x", Roles: admins, Handle: echo}, `"GET /x": want a method and a path under /v1/`},
		{"no handle", api.Route{Pattern: "GET /v1/x", Roles: admins}, "has no Handle"},
		{"no roles, no signature", api.Route{Pattern: "GET /v1/x", Handle: echo}, "no role may call it"},
		{"signature without verify", api.Route{Pattern: "GET /v1/x", Signature: &api.Signature{}, Handle: echo}, "Signature without Verify"},
		{"negative cap", api.Route{Pattern: "GET /v1/x", Roles: admins, MaxBodyBytes: -1, Handle: echo}, "negative"},
		{"the API's own", api.Route{Pattern: "GET /v1/reps", Roles: admins, Handle: echo}, `"GET /v1/reps" is registered twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := api.New(api.Config{}, api.Options{Store: store, Auth: auth.New(authConfig), Routes: []api.Route{tt.route}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error with %s", err, tt.want)
			}
		})
	}
}
