package api

import (
	"net/http"

	"github.com/omnigate/omnigate/internal/auth"
)

// repView is one entry of the rep directory: who a conversation can be
// assigned or transferred to. Tokens never leave package auth.
type repView struct {
	ID   string    `json:"id"`
	Name string    `json:"name"`
	Role auth.Role `json:"role"`
}

// listReps lists every rep and supervisor, sorted by id. The directory
// comes from configuration and is small, so there is no cursor.
func (s *Server) listReps(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := query(r); err != nil {
		return err
	}
	reps := s.auth.Reps()
	out := make([]repView, len(reps))
	for i, rep := range reps {
		name := rep.Name
		if name == "" {
			name = rep.ID
		}
		out[i] = repView{ID: rep.ID, Name: name, Role: rep.Role}
	}
	writeJSON(w, http.StatusOK, newPage(out, ""))
	return nil
}
