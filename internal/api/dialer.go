package api

import (
	"cmp"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/omnigate/omnigate/dialer"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

// The rep's side of the dialer: the preview card, dial or skip, and the
// outcome after a call.
//
// Attempt ids ("spring.000042.1") hold digit runs that the masking of a
// rep's answers takes for phone numbers, so these routes name attempts
// by a ticket, the id's bytes as letters, which survives the masking;
// a path may also give the id itself.

// repCard is the preview card as a rep gets it.
type repCard struct {
	dialer.Card
	AttemptID string `json:"attempt_id"` // the ticket
}

// repAttempt is an attempt as its rep sees it: the customer's name and
// the number masked.
type repAttempt struct {
	AttemptID  string              `json:"attempt_id"` // the ticket
	Campaign   string              `json:"campaign"`
	CustomerID string              `json:"customer_id"`
	Name       string              `json:"name,omitempty"`
	Number     string              `json:"number"` // masked
	State      dialer.AttemptState `json:"state"`
	Outcome    dialer.Outcome      `json:"outcome,omitempty"`
	Policy     string              `json:"policy,omitempty"`
	Reasons    []string            `json:"reasons,omitempty"`
	EndedAt    time.Time           `json:"ended_at,omitzero"`
	RepOutcome string              `json:"rep_outcome,omitempty"`
}

func toRepAttempt(a dialer.Attempt) repAttempt {
	return repAttempt{AttemptID: ticket(a.ID), Campaign: a.Campaign, CustomerID: a.CustomerID, Number: dialer.MaskNumber(a.Number),
		State: a.State, Outcome: a.Outcome, Policy: a.Policy, Reasons: a.Reasons, EndedAt: a.EndedAt, RepOutcome: a.RepOutcome}
}

// maxUnmarked bounds the calls listed for the outcome form.
const maxUnmarked = 5

// preview answers the rep's next preview card (null when there is none),
// the call they are on (null when none) and their answered calls still
// without an outcome, newest first.
func (h dialerRoutes) preview(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	svc, err := h.svc()
	if err != nil {
		return err
	}
	if _, err := Query(r); err != nil {
		return err
	}
	var out struct {
		Preview         *repCard     `json:"preview"`
		OnCall          *repAttempt  `json:"on_call"`
		AwaitingOutcome []repAttempt `json:"awaiting_outcome"`
	}
	card, err := svc.NextPreview(r.Context(), p.ID)
	switch {
	case err == nil:
		out.Preview = &repCard{Card: card, AttemptID: ticket(card.AttemptID)}
	case !errors.Is(err, dialer.ErrNotFound):
		return dialerError(err)
	}
	if out.OnCall, out.AwaitingOutcome, err = h.repCalls(r, svc, p.ID); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// repCalls finds, in the campaigns that dialed, the call rep is on and
// rep's answered calls without a rep-marked outcome, each with the
// customer's name.
func (h dialerRoutes) repCalls(r *http.Request, svc DialerService, rep string) (*repAttempt, []repAttempt, error) {
	cs, err := svc.Campaigns(r.Context())
	if err != nil {
		return nil, nil, dialerError(err)
	}
	var onCall *repAttempt
	unmarked := []repAttempt{}
	for _, c := range cs {
		if c.State == dialer.StateCreated {
			continue
		}
		as, err := h.d.Attempts(r.Context(), c.ID())
		if err != nil {
			return nil, nil, dialerError(err)
		}
		for _, a := range as {
			switch {
			case a.Rep != rep:
			case a.State == dialer.AttemptAnswered || a.State == dialer.AttemptBridged:
				ra := toRepAttempt(a)
				onCall = &ra
			case a.State == dialer.AttemptDone && a.Outcome == dialer.OutcomeAnswered && a.RepOutcome == "":
				unmarked = append(unmarked, toRepAttempt(a))
			}
		}
	}
	slices.SortFunc(unmarked, func(a, b repAttempt) int { return b.EndedAt.Compare(a.EndedAt) })
	unmarked = unmarked[:min(len(unmarked), maxUnmarked)]
	for i := range unmarked {
		if unmarked[i].Name, err = h.name(r, unmarked[i].CustomerID); err != nil {
			return nil, nil, err
		}
	}
	if onCall != nil {
		if onCall.Name, err = h.name(r, onCall.CustomerID); err != nil {
			return nil, nil, err
		}
	}
	return onCall, unmarked, nil
}

// name is the customer's name; "" for one not found.
func (h dialerRoutes) name(r *http.Request, customerID string) (string, error) {
	c, err := h.d.Customers.Customer(r.Context(), customerID)
	if errors.Is(err, sessions.ErrNotFound) {
		return "", nil
	}
	return c.Name, err
}

func (h dialerRoutes) dial(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	svc, err := h.svc()
	if err != nil {
		return err
	}
	if err := decodeJSON(r, &struct{}{}, true); err != nil {
		return err
	}
	a, err := svc.Dial(r.Context(), p.ID, attemptParam(r))
	return writeAttempt(w, a, err)
}

func (h dialerRoutes) skip(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	svc, err := h.svc()
	if err != nil {
		return err
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &body, true); err != nil {
		return err
	}
	a, err := svc.Skip(r.Context(), p.ID, attemptParam(r), cmp.Or(strings.TrimSpace(body.Reason), "skipped by the rep"))
	return writeAttempt(w, a, err)
}

func (h dialerRoutes) outcome(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	svc, err := h.svc()
	if err != nil {
		return err
	}
	var body struct {
		Outcome string `json:"outcome"`
		Note    string `json:"note"`
	}
	if err := DecodeJSON(r, &body); err != nil {
		return err
	}
	a, err := svc.MarkOutcome(r.Context(), p.ID, attemptParam(r), strings.TrimSpace(body.Outcome), body.Note)
	return writeAttempt(w, a, err)
}

func writeAttempt(w http.ResponseWriter, a dialer.Attempt, err error) error {
	if err != nil {
		return dialerError(err)
	}
	WriteJSON(w, http.StatusOK, toRepAttempt(a))
	return nil
}

// ticket is an attempt id as letters: each byte's two hex digits shifted
// to a-p.
func ticket(id string) string {
	b := []byte(hex.EncodeToString([]byte(id)))
	for i, c := range b {
		if c <= '9' {
			b[i] = c - '0' + 'a'
		} else {
			b[i] = c - 'a' + 'k'
		}
	}
	return string(b)
}

// attemptParam is the attempt the path names.
func attemptParam(r *http.Request) string { return untick(r.PathValue("id")) }

// untick is the attempt id of a ticket; anything else (an attempt id
// itself has a dot, a ticket none) is returned as it is.
func untick(v string) string {
	if strings.Contains(v, ".") || len(v)%2 != 0 {
		return v
	}
	b := []byte(v)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'j':
			b[i] = c - 'a' + '0'
		case c >= 'k' && c <= 'p':
			b[i] = c - 'k' + 'a'
		default:
			return v
		}
	}
	id, err := hex.DecodeString(string(b))
	if err != nil {
		return v
	}
	return string(id)
}
