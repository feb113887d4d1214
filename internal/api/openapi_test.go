package api_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/omnigate/omnigate/docs"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/kpi"
	"github.com/omnigate/omnigate/internal/webhooks"
	"github.com/omnigate/omnigate/sessions"
)

// TestOpenAPIMatchesRoutes fails when a registered route is missing from
// docs/openapi.yaml or the spec describes a route the server doesn't have,
// and when the error codes drift apart.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	// The embedded document: what GET /v1/openapi.yaml serves is the file.
	raw := []byte(docs.OpenAPI)
	var spec struct {
		OpenAPI    string                          `yaml:"openapi"`
		Paths      map[string]map[string]yaml.Node `yaml:"paths"`
		Components struct {
			Schemas struct {
				ErrorCode struct {
					Enum []string `yaml:"enum"`
				} `yaml:"ErrorCode"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(spec.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", spec.OpenAPI)
	}

	methods := []string{"get", "put", "post", "patch", "delete", "head", "options", "trace"}
	var inSpec []string
	for path, item := range spec.Paths {
		for key := range item {
			if slices.Contains(methods, key) {
				inSpec = append(inSpec, strings.ToUpper(key)+" "+path)
			}
		}
	}

	// Every /v1 route is the API's, internal/webhooks' and the dialer's
	// contributed as the gateway does.
	store := sessions.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	wh, err := webhooks.New(webhooks.Config{}, webhooks.Options{Store: store, Outbox: webhooks.NewMemoryOutbox()})
	if err != nil {
		t.Fatal(err)
	}
	reports, err := kpi.New(kpi.Config{}, kpi.Options{Store: kpi.NewMemoryStore(), Feed: store})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{}, api.Options{Store: store, Auth: auth.New(authConfig), Metrics: prometheus.NewRegistry(),
		Routes: append(append(wh.Routes(), reports.Routes()...), api.DialerRoutes(nil)...)})
	if err != nil {
		t.Fatal(err)
	}
	registered := srv.Routes()
	for _, r := range registered {
		if !slices.Contains(inSpec, r) {
			t.Errorf("route %q is registered but not in docs/openapi.yaml", r)
		}
	}
	for _, r := range inSpec {
		if !slices.Contains(registered, r) {
			t.Errorf("docs/openapi.yaml describes %q, which the server does not register", r)
		}
	}
	if !slices.Contains(registered, "GET /v1/customers/{id}") || !slices.Contains(registered, "POST /v1/events") {
		t.Errorf("Routes() looks wrong: %v", registered)
	}

	var codes []string
	for _, c := range api.Codes() {
		codes = append(codes, string(c))
	}
	slices.Sort(codes)
	specCodes := slices.Sorted(slices.Values(spec.Components.Schemas.ErrorCode.Enum))
	if !slices.Equal(codes, specCodes) {
		t.Errorf("error codes differ:\n  api:  %v\n  spec: %v", codes, specCodes)
	}
}
