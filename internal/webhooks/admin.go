package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

// admin serves the endpoint API under /v1/webhooks, to admins only.
type admin struct {
	s *Service
}

// routes are the admin API's routes, for internal/api to serve.
func (a *admin) routes() []api.Route {
	adminOnly := func(pattern string, h api.Handler) api.Route {
		return api.Route{Pattern: pattern, Roles: []auth.Role{auth.RoleAdmin}, Handle: h}
	}
	return []api.Route{
		adminOnly("GET /v1/webhooks/endpoints", a.listEndpoints),
		adminOnly("POST /v1/webhooks/endpoints", a.createEndpoint),
		adminOnly("GET /v1/webhooks/endpoints/{id}", a.getEndpoint),
		adminOnly("DELETE /v1/webhooks/endpoints/{id}", a.deleteEndpoint),
		adminOnly("POST /v1/webhooks/endpoints/{id}/enable", a.enableEndpoint),
		adminOnly("GET /v1/webhooks/endpoints/{id}/deliveries", a.listDeliveries),
		adminOnly("GET /v1/webhooks/endpoints/{id}/attempts", a.listAttempts),
		adminOnly("GET /v1/webhooks/endpoints/{id}/dead-letters", a.listDead),
		adminOnly("POST /v1/webhooks/endpoints/{id}/dead-letters/replay", a.replayDead),
		adminOnly("GET /v1/webhooks/deliveries/{id}", a.getDelivery),
		adminOnly("POST /v1/webhooks/deliveries/{id}/replay", a.replayDelivery),
	}
}

// EndpointView is an endpoint as the API shows it: never its secret,
// except once in the answer that created it.
type EndpointView struct {
	Endpoint
	// Secret is only in the answer to POST /v1/webhooks/endpoints.
	Secret string `json:"secret,omitempty"`
}

func view(ep Endpoint) EndpointView {
	ep.Secret = ""
	return EndpointView{Endpoint: ep}
}

func (a *admin) listEndpoints(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	eps, err := a.s.ob.Endpoints(r.Context())
	if err != nil {
		return err
	}
	out := make([]EndpointView, len(eps))
	for i, ep := range eps {
		out[i] = view(ep)
	}
	api.WriteJSON(w, http.StatusOK, api.NewPage(out, ""))
	return nil
}

// CreateEndpointRequest is the body of POST /v1/webhooks/endpoints.
type CreateEndpointRequest struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types"`
	Description string   `json:"description"`
	// Secret is "whsec_<base64>"; empty means generate one (returned once).
	Secret         string `json:"secret"`
	MaxConcurrency int    `json:"max_concurrency"`
}

func (a *admin) createEndpoint(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req CreateEndpointRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := checkURL(req.URL, a.s.cfg.AllowHTTP); err != nil {
		return apiError(api.CodeInvalid, "url: "+err.Error())
	}
	if err := checkEventTypes(req.EventTypes); err != nil {
		return apiError(api.CodeInvalid, "event_types: "+err.Error())
	}
	if req.MaxConcurrency < 0 || req.MaxConcurrency > 64 {
		return apiError(api.CodeInvalid, "max_concurrency: not between 0 and 64")
	}
	if len(req.Description) > 500 {
		return apiError(api.CodeInvalid, "description: longer than 500 bytes")
	}
	if req.Secret == "" {
		req.Secret = signing.NewSecret()
	} else if _, err := signing.ParseSecret(req.Secret); err != nil {
		return apiError(api.CodeInvalid, "secret: "+err.Error())
	}
	ep := Endpoint{ID: sessions.NewID("ep"), URL: req.URL, Secret: req.Secret, EventTypes: req.EventTypes,
		Description: req.Description, MaxConcurrency: req.MaxConcurrency, Source: "api", CreatedAt: a.s.now().UTC()}
	if err := a.s.ob.PutEndpoint(r.Context(), ep); err != nil {
		return err
	}
	a.s.log.Info("webhooks: endpoint registered", slog.String("endpoint", ep.ID), slog.String("by", p.Author()))
	v := view(ep)
	v.Secret = ep.Secret
	api.WriteJSON(w, http.StatusCreated, v)
	return nil
}

func (a *admin) getEndpoint(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	ep, err := a.s.ob.Endpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, view(ep))
	return nil
}

func (a *admin) deleteEndpoint(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	ep, err := a.s.ob.Endpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if ep.Source == "config" {
		return apiError(api.CodeConflict, fmt.Sprintf("endpoint %s is configured in the file; remove it there", ep.ID))
	}
	if err := a.s.ob.DeleteEndpoint(r.Context(), ep.ID); err != nil {
		return err
	}
	a.s.log.Info("webhooks: endpoint deleted", slog.String("endpoint", ep.ID), slog.String("by", p.Author()))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// enableEndpoint re-enables a disabled endpoint. Its dead letters stay
// dead until replayed (POST .../dead-letters/replay), so an operator
// decides whether the receiver wants the backlog.
func (a *admin) enableEndpoint(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	ep, err := a.s.ob.Endpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	ep.Disabled, ep.DisabledAt, ep.DisabledReason, ep.FailingSince = false, time.Time{}, "", time.Time{}
	if err := a.s.ob.PutEndpoint(r.Context(), ep); err != nil {
		return err
	}
	a.s.log.Info("webhooks: endpoint enabled", slog.String("endpoint", ep.ID), slog.String("by", p.Author()))
	api.WriteJSON(w, http.StatusOK, view(ep))
	return nil
}

func (a *admin) listDeliveries(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	return a.deliveries(w, r, "")
}

func (a *admin) listDead(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	return a.deliveries(w, r, StateDead)
}

func (a *admin) deliveries(w http.ResponseWriter, r *http.Request, state State) error {
	allowed := []string{"limit", "cursor"}
	if state == "" {
		allowed = append(allowed, "state")
	}
	q, err := api.Query(r, allowed...)
	if err != nil {
		return err
	}
	if state == "" {
		state = State(q.Get("state"))
		if state != "" && state != StatePending && state != StateDelivered && state != StateDead {
			return apiError(api.CodeInvalid, fmt.Sprintf("state: %q is not pending, delivered or dead", state))
		}
	}
	limit, err := api.IntParam(q, "limit")
	if err != nil {
		return err
	}
	if _, err := a.s.ob.Endpoint(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	ds, next, err := a.s.ob.Deliveries(r.Context(), DeliveryQuery{EndpointID: r.PathValue("id"), State: state,
		Cursor: q.Get("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, api.NewPage(ds, next))
	return nil
}

func (a *admin) listAttempts(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q, err := api.Query(r, "limit", "cursor")
	if err != nil {
		return err
	}
	limit, err := api.IntParam(q, "limit")
	if err != nil {
		return err
	}
	if _, err := a.s.ob.Endpoint(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	as, next, err := a.s.ob.Attempts(r.Context(), r.PathValue("id"), q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, api.NewPage(as, next))
	return nil
}

func (a *admin) getDelivery(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	d, err := a.s.ob.Delivery(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, d)
	return nil
}

func (a *admin) replayDelivery(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	d, err := a.s.ob.Delivery(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.replayable(r.Context(), d.EndpointID); err != nil {
		return err
	}
	d, err = a.s.ob.Replay(r.Context(), d.ID, a.s.now())
	if err != nil {
		return err
	}
	a.s.kick()
	api.WriteJSON(w, http.StatusOK, d)
	return nil
}

// ReplayResult answers a bulk replay.
type ReplayResult struct {
	Replayed int `json:"replayed"`
	// More is true when dead letters remain (a call replays up to 1,000).
	More bool `json:"more"`
}

func (a *admin) replayDead(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	id := r.PathValue("id")
	if err := a.replayable(r.Context(), id); err != nil {
		return err
	}
	var res ReplayResult
	cursor := ""
	for res.Replayed < 1000 {
		ds, next, err := a.s.ob.Deliveries(r.Context(), DeliveryQuery{EndpointID: id, State: StateDead, Cursor: cursor, Limit: 500})
		if err != nil {
			return err
		}
		for _, d := range ds {
			if res.Replayed == 1000 {
				res.More = true
				break
			}
			if _, err := a.s.ob.Replay(r.Context(), d.ID, a.s.now()); err != nil && !errors.Is(err, ErrConflict) {
				return err
			}
			res.Replayed++
		}
		if next == "" || res.More {
			break
		}
		cursor = next
	}
	a.s.log.Info("webhooks: dead letters replayed", slog.String("endpoint", id), slog.Int("deliveries", res.Replayed), slog.String("by", p.Author()))
	a.s.kick()
	api.WriteJSON(w, http.StatusOK, res)
	return nil
}

func (a *admin) replayable(ctx context.Context, endpointID string) error {
	ep, err := a.s.ob.Endpoint(ctx, endpointID)
	if err != nil {
		return err
	}
	if ep.Disabled {
		return apiError(api.CodeConflict, fmt.Sprintf("endpoint %s is disabled; enable it first", ep.ID))
	}
	return nil
}
