package api

import (
	"net/http"
	"slices"

	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/canned"
	"github.com/omnigate/omnigate/sessions"
)

// cannedView is a canned response as the API returns it: with Expanded
// when the request named a customer.
type cannedView struct {
	canned.Response
	Expanded string `json:"expanded,omitempty"`
}

// listCanned answers the responses the caller may insert: the
// configuration's and the stored team ones, then the caller's own. With
// ?customer_id= each carries its text expanded for that customer and the
// caller (canned.Expand), as the reply box inserts it.
func (s *Server) listCanned(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q, err := Query(r, "customer_id")
	if err != nil {
		return err
	}
	rs := s.cfg.CannedResponses.Responses()
	for _, owner := range []string{canned.Team, p.ID} {
		if owner == p.ID && !p.IsRep() {
			continue
		}
		got, err := s.canned.List(r.Context(), owner)
		if err != nil {
			return err
		}
		rs = append(rs, got...)
	}
	out := make([]cannedView, len(rs))
	for i, c := range rs {
		out[i] = cannedView{Response: c}
	}
	if id := q.Get("customer_id"); id != "" {
		c, err := s.store.Customer(r.Context(), id)
		if err != nil {
			return err
		}
		v := canned.Vars{CustomerName: c.Name, RepName: p.ID}
		if rep, ok := s.auth.Rep(p.ID); ok && rep.Name != "" {
			v.RepName = rep.Name
		}
		for i := range out {
			out[i].Expanded = canned.Expand(out[i].Text, v)
		}
	}
	WriteJSON(w, http.StatusOK, NewPage(out, ""))
	return nil
}

// cannedOwner is whose responses scope names for p: team ones are
// supervisors' and admins' to write, personal ones each rep's own.
func cannedOwner(p auth.Principal, scope string) (string, error) {
	switch {
	case scope == canned.ScopeTeam && (p.Role == auth.RoleSupervisor || p.Role == auth.RoleAdmin):
		return canned.Team, nil
	case scope == canned.ScopeTeam:
		return "", errorf(CodeForbidden, "only supervisors and admins write team responses")
	case scope == canned.ScopePersonal && p.IsRep():
		return p.ID, nil
	case scope == canned.ScopePersonal:
		return "", errorf(CodeForbidden, "API keys have no personal responses")
	}
	return "", errorf(CodeInvalid, "scope must be team or personal")
}

func (s *Server) postCanned(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	var req canned.Response
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	owner, err := cannedOwner(p, req.Scope)
	if err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return &Error{Code: CodeInvalid, Message: err.Error()}
	}
	have, err := s.canned.List(r.Context(), owner)
	if err != nil {
		return err
	}
	if len(have) >= canned.MaxPerOwner {
		return errorf(CodeConflict, "at most %d %s responses; delete one first", canned.MaxPerOwner, req.Scope)
	}
	taken := func(c canned.Response) bool { return c.Shortcut == req.Shortcut }
	if slices.ContainsFunc(have, taken) || (owner == canned.Team && slices.ContainsFunc(s.cfg.CannedResponses.Responses(), taken)) {
		return errorf(CodeConflict, "shortcut %q is taken", req.Shortcut)
	}
	req.ID, req.ReadOnly = sessions.NewID("can"), false
	if err := s.canned.Put(r.Context(), owner, req); err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, req)
	return nil
}

// deleteCanned removes a stored team response (supervisors, admins) or
// one of the caller's own. The configuration's are read-only.
func (s *Server) deleteCanned(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	for _, scope := range []string{canned.ScopePersonal, canned.ScopeTeam} {
		owner, err := cannedOwner(p, scope)
		if err != nil {
			continue
		}
		ok, err := s.canned.Delete(r.Context(), owner, id)
		if err != nil {
			return err
		}
		if ok {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	}
	if slices.ContainsFunc(s.cfg.CannedResponses.Responses(), func(c canned.Response) bool { return c.ID == id }) {
		return errorf(CodeConflict, "canned response %s is in the configuration; change it there", id)
	}
	return errorf(CodeNotFound, "no canned response %s of yours", id)
}
