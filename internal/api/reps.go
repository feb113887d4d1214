package api

import (
	"context"
	"net/http"

	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/router"
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
	// SetPresence sets the presence of a rep the router knows; presence is
	// one of Presences.
	SetPresence(ctx context.Context, rep string, presence router.Presence) error
}

// Presences are the values a rep's presence may be set to. Wrap-up is the
// router's own and cannot be set.
var Presences = []string{"available", "away", "offline", "on_call"}

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
	valid := false
	for _, v := range Presences {
		valid = valid || v == req.Status
	}
	if !valid {
		return errorf(CodeInvalid, "status %q is not available, away, offline or on_call", req.Status)
	}
	if s.routing == nil {
		return errorf(CodeNotFound, "routing is not running, so there is no presence")
	}
	if err := s.routing.SetPresence(r.Context(), id, router.Presence(req.Status)); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, s.repView(rep))
	return nil
}
