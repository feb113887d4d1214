package routing

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// reassignInterval is how often reps who left are looked at.
const reassignInterval = time.Second

// unassignment is the payload of the router's assignment event that takes
// a conversation back from a rep who is gone, shaped like a person's
// (assignee, from) so the inbox and webhooks read it alike.
type unassignment struct {
	Assignee string `json:"assignee"`
	From     string `json:"from"`
	Why      string `json:"why"`
}

// reassignAway takes back the open conversations this node's router holds
// for reps who have been away or offline for Config.ReassignAfter, and
// routes them again. A rep who comes back in time keeps them. The time a
// rep left is when this node first saw them gone (a rep away on another
// node is seen at the next sync), per node like idle times.
func (s *Service) reassignAway() {
	now := s.clock.Now()
	gone := map[string]bool{}
	for _, st := range s.r.Reps() {
		if st.Presence == router.PresenceAway || st.Presence == router.PresenceOffline || st.Presence == router.PresenceBreak {
			gone[st.ID] = true
		}
	}
	s.mu.Lock()
	var due []string
	for rep := range gone {
		since, ok := s.awaySince[rep]
		switch {
		case !ok:
			s.awaySince[rep] = now
		case now.Sub(since) >= s.cfg.ReassignAfter:
			due = append(due, rep)
		}
	}
	for rep := range s.awaySince {
		if !gone[rep] {
			delete(s.awaySince, rep)
		}
	}
	s.mu.Unlock()
	if len(due) == 0 {
		return
	}
	for _, ts := range s.r.Tasks() {
		if ts.Reserved || ts.Status != "active" || !slices.Contains(due, ts.RepID) {
			continue
		}
		s.apply(s.takeBack(ts.ConversationID, ts.RepID))
	}
}

// takeBack unassigns conv from rep, if it is still theirs and open, with
// an assignment event by the router saying why, and settles it, which
// routes it again.
func (s *Service) takeBack(conv, rep string) []router.Decision {
	defer s.lock(conv)()
	cv, err := s.store.Conversation(s.ctx, conv)
	if err != nil {
		s.fail("read conversation", err, slog.String("conversation", conv))
		return nil
	}
	if cv.Status != sessions.StatusOpen || cv.Assignee != rep {
		return nil
	}
	payload, err := json.Marshal(unassignment{From: rep,
		Why: fmt.Sprintf("%s was away or offline for %s", rep, s.cfg.ReassignAfter)})
	if err != nil {
		return nil
	}
	none := ""
	cv, _, err = s.store.UpdateConversation(s.ctx, conv, sessions.ConversationUpdate{Assignee: &none,
		Event: sessions.Event{Kind: sessions.KindAssignment, Author: sessions.AuthorRouter, Payload: payload}})
	if err != nil {
		s.fail("take back conversation", err, slog.String("conversation", conv))
		return nil
	}
	// The feed skips the router's own writes: settle here, which releases
	// the rep's hold and routes the conversation again.
	return s.settleLocked(cv)
}
