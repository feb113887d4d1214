package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/canned"
	"github.com/omnigate/omnigate/sessions"
)

// Config tunes the API.
type Config struct {
	// MaxBodyBytes caps a request body; larger bodies get 413 too_large.
	// Zero means 64 KiB, the size of the largest event payload a store
	// accepts.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// SendTimeout bounds one send through a channel adapter; the gateway
	// gives it to the channels.Sender. Zero means 30 seconds.
	SendTimeout time.Duration `yaml:"send_timeout"`
	// RepPhoneLookup lets role rep search customers by exact phone number
	// (GET /v1/customers?phone=), which confirms the full number behind a
	// mask. False, the zero value, keeps it to supervisors, admins and
	// integrators: a rep gets 403 forbidden.
	RepPhoneLookup bool `yaml:"rep_phone_lookup"`
	// RepPhoneLookupsPerMinute caps each rep's exact phone lookups, on each
	// gateway node, when RepPhoneLookup is on; the next one is 429
	// rate_limited. Zero means 10. Supervisors, admins and integrators
	// are not limited: they see numbers in full anyway.
	RepPhoneLookupsPerMinute int `yaml:"rep_phone_lookups_per_minute"`
	// DefaultRegion is the ISO 3166 region ("CN", "US") in which a phone
	// number searched without its country code (GET /v1/customers?phone=
	// or ?q=) is read. Empty, the zero value, means searches need the
	// country code.
	DefaultRegion string `yaml:"default_region"`
	// CannedResponses are the team's canned responses from the file,
	// read-only through the API. Empty means none.
	CannedResponses canned.Config `yaml:"canned_responses"`
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 0 || c.MaxBodyBytes > 16<<20 {
		errs = append(errs, fmt.Errorf("max_body_bytes: %d is not between 0 and 16 MiB", c.MaxBodyBytes))
	}
	if c.SendTimeout < 0 {
		errs = append(errs, fmt.Errorf("send_timeout: %v is negative", c.SendTimeout))
	}
	if c.RepPhoneLookupsPerMinute < 0 {
		errs = append(errs, fmt.Errorf("rep_phone_lookups_per_minute: %d is negative", c.RepPhoneLookupsPerMinute))
	}
	if c.DefaultRegion != "" && !sessions.ValidPhoneRegion(c.DefaultRegion) {
		errs = append(errs, fmt.Errorf("default_region: %q is not a region phone numbers know", c.DefaultRegion))
	}
	errs = append(errs, c.CannedResponses.Validate())
	return errors.Join(errs...)
}

func (c Config) maxBody() int64 {
	if c.MaxBodyBytes == 0 {
		return 64 << 10
	}
	return c.MaxBodyBytes
}

// Options are the API's dependencies.
type Options struct {
	Store sessions.Store      // required
	Auth  *auth.Authenticator // required
	// Sender sends messages to customers; nil means no channels, and every
	// send answers 503 channel_unavailable.
	Sender *channels.Sender
	// Metrics receives the API's collectors and is served on /metrics; nil
	// means no metrics and no /metrics route.
	Metrics *prometheus.Registry
	// Logger gets 5xx errors; nil discards.
	Logger *slog.Logger
	// Routing shows reps' presence and load in the directory and sets
	// presence; nil means the gateway runs no router.
	Routing Routing
	// Routes are other packages' routes under /v1, served like the API's
	// own (see Route); nil means none.
	Routes []Route
	// Now is the clock of the reps' phone lookup limit and of
	// do-not-contact entries added through the API; nil means time.Now.
	Now func() time.Time
	// Canned keeps the canned responses made through the API; nil means
	// in memory, lost on restart (tests).
	Canned canned.Store
	// Contact is the contact policy and its stores; nil means no policy
	// (the contact-policy routes answer 404, best channel sends with no
	// policy but the Sender's).
	Contact *ContactDeps
}

// Server serves the API. Build it with New.
type Server struct {
	cfg      Config
	store    sessions.Store
	auth     *auth.Authenticator
	outbound *channels.Sender
	log      *slog.Logger
	mux      *http.ServeMux
	routes   []string
	metrics  *metrics
	routing  Routing
	lookups  *phoneLookups
	contact  *ContactDeps
	canned   canned.Store
	now      func() time.Time
	refusals *prometheus.CounterVec
}

// New builds the server and registers its metrics.
func New(cfg Config, o Options) (*Server, error) {
	if o.Store == nil || o.Auth == nil {
		return nil, errors.New("api: Store and Auth are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{cfg: cfg, store: o.Store, auth: o.Auth, outbound: o.Sender, log: o.Logger, mux: http.NewServeMux(),
		routing: o.Routing, contact: o.Contact, now: o.Now, canned: o.Canned}
	if s.canned == nil {
		s.canned = canned.NewMemoryStore()
	}
	if o.Metrics != nil {
		m, err := newMetrics(o.Metrics)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}
	lookups, err := newPhoneLookups(cfg, o)
	if err != nil {
		return nil, err
	}
	s.lookups = lookups
	if s.refusals, err = newRefusals(o.Metrics); err != nil {
		return nil, err
	}
	s.register(o.Metrics)
	if err := s.contribute(o.Routes); err != nil {
		return nil, err
	}
	return s, nil
}

const (
	admin      = auth.RoleAdmin
	supervisor = auth.RoleSupervisor
	rep        = auth.RoleRep
	integrator = auth.RoleIntegrator
)

func (s *Server) register(reg *prometheus.Registry) {
	s.public("GET /healthz", s.healthz)
	s.public("GET /readyz", s.readyz)
	if reg != nil {
		s.public("GET /metrics", metricsHandler(reg))
	}
	s.public("GET /v1", s.index)
	s.public("GET /v1/openapi.yaml", openAPI)

	s.handle("GET /v1/customers", s.searchCustomers, admin, supervisor, rep, integrator)
	s.handle("GET /v1/customers/{id}", s.getCustomer, admin, supervisor, rep, integrator)
	s.handle("PATCH /v1/customers/{id}", s.patchCustomer, admin, supervisor, rep)
	s.handle("GET /v1/customers/{id}/timeline", s.timeline, admin, supervisor, rep, integrator)
	s.handle("POST /v1/customers/{id}/messages", s.postCustomerMessage, admin, integrator)
	s.handle("POST /v1/customers/{id}/merge", s.mergeCustomer, admin, supervisor)
	s.handle("POST /v1/customers/{id}/contact", s.postContact, admin, supervisor, integrator)

	s.handle("GET /v1/conversations", s.listConversations, admin, supervisor, rep)
	s.handle("GET /v1/conversations/{id}", s.getConversation, admin, supervisor, rep)
	s.handle("POST /v1/conversations/{id}/messages", s.postMessage, admin, supervisor, rep)
	s.handle("POST /v1/conversations/{id}/notes", s.postNote, admin, supervisor, rep)
	s.handle("POST /v1/conversations/{id}/assign", s.assign, admin, supervisor, rep)
	s.handle("POST /v1/conversations/{id}/resolve", s.resolve, admin, supervisor, rep)
	s.handle("POST /v1/conversations/{id}/reopen", s.reopen, admin, supervisor, rep)
	s.handle("POST /v1/conversations/{id}/pending", s.pending, admin, supervisor, rep)
	s.handle("POST /v1/conversations/{id}/accept", s.acceptOffer, supervisor, rep)
	s.handle("POST /v1/conversations/{id}/decline", s.declineOffer, supervisor, rep)

	s.handle("GET /v1/canned-responses", s.listCanned, admin, supervisor, rep)
	s.handle("POST /v1/canned-responses", s.postCanned, admin, supervisor, rep)
	s.handle("DELETE /v1/canned-responses/{id}", s.deleteCanned, admin, supervisor, rep)

	s.handle("GET /v1/reps", s.listReps, admin, supervisor, rep)
	s.handle("POST /v1/reps/{id}/presence", s.setPresence, admin, supervisor, rep)
	s.handle("GET /v1/break-reasons", s.breakReasons, admin, supervisor, rep)

	s.registerContact()
}

// Routes lists every registered pattern ("GET /v1/customers/{id}"), in
// registration order.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// handle registers an authenticated route open to roles, its body capped
// at Config.MaxBodyBytes.
func (s *Server) handle(pattern string, h Handler, roles ...auth.Role) {
	s.handleCapped(pattern, s.cfg.maxBody(), h, roles...)
}

// handleCapped registers a route authenticated by bearer token, open to
// roles, its body capped at limit. A rep's answer is masked here, whole
// (maskingWriter), so no handler masks anything itself.
func (s *Server) handleCapped(pattern string, limit int64, h Handler, roles ...auth.Role) {
	s.public(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.Request(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="omnigate"`)
			s.writeError(w, r, toError(err))
			return
		}
		if !slices.Contains(roles, p.Role) {
			s.writeError(w, r, errorf(CodeForbidden, "role %s may not %s", p.Role, pattern))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		out := w
		var masked *maskingWriter
		if p.SeesPhonesMasked() {
			masked = &maskingWriter{ResponseWriter: w}
			out = masked
		}
		if err := h(out, r, p); err != nil {
			s.writeError(out, r, toError(err))
		}
		if masked != nil {
			masked.flush()
		}
	})
}

// public registers a route without authentication, instrumented.
func (s *Server) public(pattern string, h http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
	s.mux.Handle(pattern, s.instrument(pattern, h))
}

// ServeHTTP routes the request; what matches no route gets a JSON 404 or
// 405 rather than the mux's plain text.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	s.instrument("unmatched", func(w http.ResponseWriter, r *http.Request) {
		// Ask the mux what it would have said: 405 comes with Allow.
		h, _ := s.mux.Handler(r)
		probe := &probeWriter{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			s.writeError(w, r, errorf(CodeMethodNotAllowed, "%s is not allowed here", r.Method))
			return
		}
		s.writeError(w, r, errorf(CodeNotFound, "no such route"))
	})(w, r)
}

// probeWriter records what a handler would answer, discarding the body.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header         { return p.header }
func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (p *probeWriter) WriteHeader(code int)        { p.status = code }

// writeError writes e in the catalogue's shape,
// {"error":{"code":"...","message":"..."}}, with its code's status, and
// logs the cause of a server error with the request's id, which the body
// then carries too (request_id), so a report can be matched to the log.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	status := e.Code.Status()
	if status == 0 {
		status = http.StatusInternalServerError
	}
	var body errorBody
	body.Error.Code, body.Error.Message = e.Code, e.Message
	body.Error.Reasons, body.Error.Until = e.Reasons, e.Until
	if status >= 500 {
		body.Error.RequestID = requestID(r.Context())
		// Route pattern only: paths and queries can carry personal data.
		s.log.LogAttrs(r.Context(), slog.LevelError, "api request failed",
			slog.String("route", r.Pattern), slog.Int("status", status),
			slog.String("code", string(e.Code)), slog.String("request_id", body.Error.RequestID), slog.Any("error", e.cause))
	}
	WriteJSON(w, status, body)
}

// healthz says the process is up; it checks nothing else, so an
// orchestrator does not restart a gateway whose store is briefly away.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether this node should get traffic: its store answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		e := toError(err)
		if e.Code == CodeInternal {
			e = &Error{Code: CodeStoreUnavailable, Message: "the store is unavailable; retry later", cause: err}
		}
		s.writeError(w, r, e)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
