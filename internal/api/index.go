package api

import (
	"net/http"

	"github.com/omnigate/omnigate/docs"
)

// The index at /v1 and the OpenAPI document at /v1/openapi.yaml: what the
// start-up banner points at, open without a token like /healthz (the
// document is public in the repository anyway).

type index struct {
	Name    string   `json:"name"`
	OpenAPI string   `json:"openapi"`
	Auth    string   `json:"auth"`
	Routes  []string `json:"routes"`
}

// index lists the document and every route, from the registrations, so
// it never drifts from what is served.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, index{
		Name:    "Omnigate API v1",
		OpenAPI: "/v1/openapi.yaml",
		Auth:    "Authorization: Bearer <token> on every /v1 route but this index and the document; POST /v1/events takes a Standard Webhooks signature instead",
		Routes:  s.Routes(),
	})
}

// openAPI serves docs/openapi.yaml as embedded in the binary.
func openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(docs.OpenAPI))
}
