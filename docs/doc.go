// Package docs holds the documents the gateway serves as they are in this
// directory: OpenAPI is docs/openapi.yaml, answered at GET
// /v1/openapi.yaml by package internal/api. It lives here, beside the
// files, because go:embed reaches only its own package's directory and
// below; the documents stay plain files that people edit and link to.
//
// What it must not do: hold code. Concurrency: read-only.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml, the description of every /v1 route.
//
//go:embed openapi.yaml
var OpenAPI string
