// Package api is Omnigate's REST API under /v1 for reps' tools, supervisors
// and integrators, plus the operational endpoints /healthz, /readyz and
// /metrics. docs/openapi.yaml describes every route; a test keeps the two
// in step.
//
// Who may do what (roles from package auth):
//
//	route                                   admin supervisor rep integrator
//	GET  customers, customer, timeline        ✓      ✓        ✓*     ✓
//	PATCH customer (name, tags, locale...)    ✓      ✓        ✓
//	PATCH customer (owner, tier, vip)         ✓      ✓
//	POST merge                                ✓      ✓
//	POST customer messages (notices)          ✓                      ✓
//	GET  conversations                        ✓      ✓        ✓
//	POST notes                                ✓      ✓        ✓
//	POST messages, assign, resolve, reopen    ✓      ✓        ✓†
//	GET  reps (the directory, for transfers)  ✓      ✓        ✓
//	campaigns: create, start ... progress     ✓      ✓
//	dialer: preview card, dial, skip, outcome        ✓        ✓
//
//	* every phone-like sequence masked (redact.JSON over the whole answer,
//	  errors included: maskingWriter), whatever field it is in; and no
//	  exact phone lookup (?phone=) unless Config.RepPhoneLookup allows it,
//	  then rate-limited per rep and audited.
//	† only on conversations assigned to them or to no one.
//
// Other packages contribute routes under /v1 (Route, Options.Routes):
// internal/webhooks' POST /v1/events, authenticated by a Standard Webhooks
// signature the server has checked (Signature), and its admin-only
// /v1/webhooks/... API; the dialer's /v1/campaigns and /v1/dialer routes
// (DialerRoutes, campaigns.go and dialer.go), built here on the
// dialer's Service, which knows no HTTP. They are served exactly as the API's own routes:
// the same authentication, body cap, catalogue, logging and
// omnigate_http_* metrics, so this package imports none of them.
//
// GET /v1 is an index of every route and GET /v1/openapi.yaml the
// document itself (package docs embeds it), both open without a token.
// Every answer carries X-Request-Id (the caller's if sane, else a new
// one); a server error logs it and repeats it in its body.
//
// Every error is JSON from one catalogue (errors.go). Request bodies are
// capped (Config.MaxBodyBytes) and decoded strictly: unknown fields and
// trailing data are errors, never ignored. A request that fails writes
// nothing; the one exception is a message a channel refused after it was
// recorded, which stays on the timeline with its failed delivery (see
// channels.Sender.Send for why). Both message routes are one call to the
// channels.Sender; this package only validates, checks permissions and
// maps the Sender's refusals onto the catalogue (sendError).
//
// What it must not do: hold state of its own (everything is in the
// sessions.Store, so any gateway node can answer any request), log personal
// data (queries carry phone numbers: only route patterns are logged), or
// know a channel's wire format (channels.Adapter does).
//
// Concurrency: a Server is immutable after New and safe for concurrent use.
package api
