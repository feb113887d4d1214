package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/router/routing"
)

// Routing is what the API needs of the router: each rep's routing status
// for the directory, and setting a rep's presence. The gateway passes its
// router's; nil means no routing (the directory shows no presence and
// setting it answers 404).
// *routing.Service is one.
type Routing interface {
	// Rep is the rep's status as the router sees it now (tier and capacity
	// in force); an error for a rep the router does not know.
	Rep(id string) (router.RepStatus, error)
	// SetState sets the presence of a rep the router knows, with a break's
	// reason (routing.ErrBadState for a presence that cannot be set or a
	// reason that does not go with it).
	SetState(ctx context.Context, rep string, presence router.Presence, reason string) error
	// State is the rep's state now: presence, break reason, since when.
	State(rep string) (routing.RepState, error)
	// BreakReasons are the configured break reason codes.
	BreakReasons() []routing.BreakReason
}

// RepRouting is a rep's routing status in the directory.
type RepRouting struct {
	// Presence is available, away, offline, on_call or wrap_up.
	Presence string `json:"presence"`
	// Used is the capacity units the rep's conversations take now, of
	// Capacity; Active counts them.
	Used      int            `json:"used"`
	Capacity  int            `json:"capacity"`
	Active    int            `json:"active"`
	Skills    map[string]int `json:"skills,omitempty"`
	Languages []string       `json:"languages,omitempty"`
	Tier      int            `json:"tier,omitempty"`
	// Reason is the break reason code while on break.
	Reason string `json:"reason,omitempty"`
	// Since is when the rep entered the current state (RFC 3339).
	Since time.Time `json:"since,omitzero"`
}

// repView is one entry of the rep directory: who a conversation can be
// assigned or transferred to, and (with routing) whether they are taking
// work. Tokens never leave package auth.
type repView struct {
	ID   string    `json:"id"`
	Name string    `json:"name"`
	Role auth.Role `json:"role"`
	*RepRouting
}

func (s *Server) repView(rep auth.Rep) repView {
	name := rep.Name
	if name == "" {
		name = rep.ID
	}
	v := repView{ID: rep.ID, Name: name, Role: rep.Role}
	if s.routing != nil {
		if st, err := s.routing.Rep(rep.ID); err == nil {
			v.RepRouting = &RepRouting{Presence: string(st.Presence), Used: st.Used, Capacity: st.Capacity,
				Active: st.Active, Skills: st.Skills, Languages: st.Languages, Tier: st.Tier}
			if rs, err := s.routing.State(rep.ID); err == nil {
				v.Reason, v.Since = rs.Reason, rs.Since
			}
		}
	}
	return v
}

// listReps lists every rep and supervisor, sorted by id. The directory
// comes from configuration and is small, so there is no cursor.
func (s *Server) listReps(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	reps := s.auth.Reps()
	out := make([]repView, len(reps))
	for i, rep := range reps {
		out[i] = s.repView(rep)
	}
	WriteJSON(w, http.StatusOK, NewPage(out, ""))
	return nil
}

type presenceRequest struct {
	Status string `json:"status"`
	// Reason is required with "break": one of GET /v1/break-reasons.
	Reason string `json:"reason"`
}

// breakReasons lists the break reason codes a rep on break gives.
func (s *Server) breakReasons(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	reasons := []routing.BreakReason{}
	if s.routing != nil {
		reasons = s.routing.BreakReasons()
	}
	WriteJSON(w, http.StatusOK, map[string]any{"reasons": reasons})
	return nil
}

// setPresence sets a rep's presence: reps their own, supervisors and
// admins anyone's. Routing acts on it at once (an available rep gets
// waiting work; an away one gets no more).
func (s *Server) setPresence(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	var req presenceRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	id := r.PathValue("id")
	rep, ok := s.auth.Rep(id)
	if !ok {
		return errorf(CodeNotFound, "no rep %q", id)
	}
	if p.Role == auth.RoleRep && p.ID != id {
		return errorf(CodeForbidden, "reps may set only their own presence")
	}
	if !router.Presence(req.Status).Settable() {
		return errorf(CodeInvalid, "status %q is not available, away, offline, on_call, break or after_call_work", req.Status)
	}
	if s.routing == nil {
		return errorf(CodeNotFound, "routing is not running, so there is no presence")
	}
	err := s.routing.SetState(r.Context(), id, router.Presence(req.Status), req.Reason)
	if errors.Is(err, routing.ErrBadState) {
		return errorf(CodeInvalid, "%s", strings.TrimPrefix(err.Error(), "routing: "))
	}
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, s.repView(rep))
	return nil
}
