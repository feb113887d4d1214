package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/omnigate/omnigate/dialer"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

// The dialer's routes: campaigns for supervisors and admins
// (campaigns.go), the preview card and call outcomes for reps
// (dialer.go). Who may do what:
//
//   - Campaigns (create, start, pause, resume, stop, approve, reject,
//     progress, the trial's report) are supervisors' and admins' work.
//     A campaign names many customers' numbers at once (its CSV), so
//     integrators and reps do not read them.
//   - The preview card, dial, skip and the outcome are the rep's own:
//     a rep acts only on the attempts the dialer gave them; supervisors,
//     who take calls too, likewise. Numbers are masked for reps as in
//     every answer (maskingWriter).

// DialerService is what the routes need of the dialer
// (*dialer.Service).
type DialerService interface {
	Create(ctx context.Context, spec dialer.Spec) (dialer.Campaign, error)
	Campaign(ctx context.Context, id string) (dialer.Campaign, error)
	Campaigns(ctx context.Context) ([]dialer.Campaign, error)
	Start(ctx context.Context, id string) (dialer.Campaign, error)
	Pause(ctx context.Context, id string) (dialer.Campaign, error)
	Resume(ctx context.Context, id string) (dialer.Campaign, error)
	Stop(ctx context.Context, id string) (dialer.Campaign, error)
	Approve(ctx context.Context, id string) (dialer.Campaign, error)
	Reject(ctx context.Context, id, reason string) (dialer.Campaign, error)
	Progress(ctx context.Context, id string) (dialer.CampaignProgress, error)
	TrialReport(ctx context.Context, id string) (dialer.TrialResult, error)
	NextPreview(ctx context.Context, rep string) (dialer.Card, error)
	Dial(ctx context.Context, rep, attemptID string) (dialer.Attempt, error)
	Skip(ctx context.Context, rep, attemptID, reason string) (dialer.Attempt, error)
	MarkOutcome(ctx context.Context, rep, attemptID, outcome, note string) (dialer.Attempt, error)
}

// DialerDeps is the dialer for its routes.
type DialerDeps struct {
	Service DialerService
	// Attempts lists a campaign's attempts (the dialer's store): a rep's
	// calls still waiting for the outcome form are found in them.
	Attempts func(ctx context.Context, campaign string) ([]dialer.Attempt, error)
	// Customers names the customers of a rep's calls.
	Customers interface {
		Customer(ctx context.Context, id string) (sessions.Customer, error)
	}
}

// maxCampaignBody caps POST /v1/campaigns, whose body carries the CSV:
// dialer.MaxCSVLines lines of a number and a name.
const maxCampaignBody = 8 << 20

// campaignActions are the POST /v1/campaigns/{id}/<action> routes
// without a body.
var campaignActions = map[string]func(DialerService, context.Context, string) (dialer.Campaign, error){
	"start":   DialerService.Start,
	"pause":   DialerService.Pause,
	"resume":  DialerService.Resume,
	"stop":    DialerService.Stop,
	"approve": DialerService.Approve,
}

// DialerRoutes are the campaign and dialer routes; with d nil (no
// dialer configured) every one answers 404 not_found.
func DialerRoutes(d *DialerDeps) []Route {
	h := dialerRoutes{d}
	managers := []auth.Role{admin, supervisor}
	callers := []auth.Role{supervisor, rep}
	routes := []Route{
		{Pattern: "GET /v1/campaigns", Roles: managers, Handle: h.list},
		{Pattern: "POST /v1/campaigns", Roles: managers, Handle: h.create, MaxBodyBytes: maxCampaignBody},
		{Pattern: "GET /v1/campaigns/{id}", Roles: managers, Handle: h.get},
		{Pattern: "POST /v1/campaigns/{id}/reject", Roles: managers, Handle: h.reject},
		{Pattern: "GET /v1/campaigns/{id}/progress", Roles: managers, Handle: h.progress},
		{Pattern: "GET /v1/campaigns/{id}/trial", Roles: managers, Handle: h.trial},
		{Pattern: "GET /v1/dialer/preview", Roles: callers, Handle: h.preview},
		{Pattern: "POST /v1/dialer/attempts/{id}/dial", Roles: callers, Handle: h.dial},
		{Pattern: "POST /v1/dialer/attempts/{id}/skip", Roles: callers, Handle: h.skip},
		{Pattern: "POST /v1/dialer/attempts/{id}/outcome", Roles: callers, Handle: h.outcome},
	}
	for _, name := range []string{"start", "pause", "resume", "stop", "approve"} {
		routes = append(routes, Route{Pattern: "POST /v1/campaigns/{id}/" + name, Roles: managers, Handle: h.action(name)})
	}
	return routes
}

type dialerRoutes struct{ d *DialerDeps }

// svc returns the dialer, or not_found when the gateway runs none.
func (h dialerRoutes) svc() (DialerService, error) {
	if h.d == nil {
		return nil, errorf(CodeNotFound, "no dialer is configured (dialer.trunk)")
	}
	return h.d.Service, nil
}

func (h dialerRoutes) list(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	svc, err := h.svc()
	if err != nil {
		return err
	}
	if _, err := Query(r); err != nil {
		return err
	}
	cs, err := svc.Campaigns(r.Context())
	if err != nil {
		return dialerError(err)
	}
	WriteJSON(w, http.StatusOK, NewPage(cs, ""))
	return nil
}

// create takes a dialer.Spec as JSON, the CSV of numbers in
// audience.csv: one request creates the campaign with its whole list or
// nothing, and a bad list is refused with every bad line's number.
func (h dialerRoutes) create(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	svc, err := h.svc()
	if err != nil {
		return err
	}
	var spec dialer.Spec
	if err := DecodeJSON(r, &spec); err != nil {
		return err
	}
	c, err := svc.Create(r.Context(), spec)
	if err != nil {
		return dialerError(err)
	}
	WriteJSON(w, http.StatusCreated, c)
	return nil
}

func (h dialerRoutes) get(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	return campaignJSON(h, w, r, DialerService.Campaign)
}

func (h dialerRoutes) progress(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	return campaignJSON(h, w, r, DialerService.Progress)
}

func (h dialerRoutes) trial(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	return campaignJSON(h, w, r, DialerService.TrialReport)
}

// campaignJSON answers what fn says of the campaign in the path.
func campaignJSON[T any](h dialerRoutes, w http.ResponseWriter, r *http.Request, fn func(DialerService, context.Context, string) (T, error)) error {
	svc, err := h.svc()
	if err != nil {
		return err
	}
	v, err := fn(svc, r.Context(), r.PathValue("id"))
	if err != nil {
		return dialerError(err)
	}
	WriteJSON(w, http.StatusOK, v)
	return nil
}

func (h dialerRoutes) action(name string) Handler {
	fn := campaignActions[name]
	return func(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
		if err := decodeJSON(r, &struct{}{}, true); err != nil {
			return err
		}
		return campaignJSON(h, w, r, fn)
	}
}

func (h dialerRoutes) reject(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	svc, err := h.svc()
	if err != nil {
		return err
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if err := DecodeJSON(r, &body); err != nil {
		return err
	}
	if strings.TrimSpace(body.Reason) == "" {
		return errorf(CodeInvalid, "reason: say why the trial is rejected")
	}
	c, err := svc.Reject(r.Context(), r.PathValue("id"), body.Reason)
	if err != nil {
		return dialerError(err)
	}
	WriteJSON(w, http.StatusOK, c)
	return nil
}

// dialerError places the dialer's errors in the catalogue. An invalid
// campaign lists every problem, one a line, without the package's
// prefix.
func dialerError(err error) error {
	if !errors.Is(err, dialer.ErrInvalid) {
		return err
	}
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, dialer.ErrInvalid.Error()+": ")
	}
	return &Error{Code: CodeInvalid, Message: strings.Join(lines, "\n"), cause: err}
}
