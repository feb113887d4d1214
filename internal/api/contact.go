package api

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

// The contact policy's routes. Who may do what:
//
//   - The what-if check is for the people and systems that plan contacts
//     (admins, supervisors, integrators); a rep's reply is judged when it
//     is sent, and the refusal says why.
//   - The do-not-contact list as a whole (list, add, remove, import,
//     export) is for admins, supervisors and integrators (a CRM is where
//     opt-outs usually come from and go back to), not reps: it is every
//     opted-out phone number, email and WeChat account at once, a bulk
//     export of personal data that no conversation needs. A rep sees the
//     entries of the customer in front of them instead
//     (GET /v1/customers/{id}/suppressions), as they see any customer's
//     profile and timeline.
//   - The ledger of a customer's touches is readable by every role that
//     reads timelines: it holds less than the timeline (channel, purpose,
//     topic and time; no text, no address).
func (s *Server) registerContact() {
	s.handle("POST /v1/contact-policy/check", s.checkContact, admin, supervisor, integrator)
	s.handle("GET /v1/suppressions", s.listSuppressions, admin, supervisor, integrator)
	s.handle("POST /v1/suppressions", s.addSuppression, admin, supervisor, integrator)
	s.handle("DELETE /v1/suppressions", s.removeSuppression, admin, supervisor, integrator)
	s.handle("POST /v1/suppressions/import", s.importSuppressions, admin, supervisor, integrator)
	s.handle("GET /v1/suppressions/export", s.exportSuppressions, admin, supervisor, integrator)
	s.handle("GET /v1/customers/{id}/suppressions", s.customerSuppressions, admin, supervisor, rep, integrator)
	s.handle("GET /v1/customers/{id}/contacts", s.customerContacts, admin, supervisor, rep, integrator)
}

// policy returns the contact policy, or not_found when the gateway runs
// without one.
func (s *Server) policy() (*ContactDeps, error) {
	if s.contact == nil {
		return nil, errorf(CodeNotFound, "no contact policy is configured")
	}
	return s.contact, nil
}

// liveCustomer loads the customer a contact route names: not_found when
// there is none, merged when it was merged into another.
func (s *Server) liveCustomer(ctx context.Context, id string) (sessions.Customer, error) {
	c, err := s.store.Customer(ctx, id)
	if err != nil {
		return c, err
	}
	if c.MergedInto != "" {
		return c, errorf(CodeMerged, "customer %s was merged into %s; ask about that one", c.ID, c.MergedInto)
	}
	return c, nil
}

type checkRequest struct {
	CustomerID string `json:"customer_id"`
	// ConversationID is the conversation the contact would go into; empty
	// for none.
	ConversationID string `json:"conversation_id"`
	Channel        string `json:"channel"`
	Purpose        string `json:"purpose"`
	Topic          string `json:"topic"`
	Campaign       string `json:"campaign"`
	// At asks what the answer would be then (RFC 3339); empty means now.
	At string `json:"at"`
}

type checkResponse struct {
	Decision channels.Decision `json:"decision"`
	Until    time.Time         `json:"until,omitzero"`
	Reasons  []contact.Reason  `json:"reasons"`
	// At is the instant judged.
	At         time.Time        `json:"at"`
	Handoff    *contact.Handoff `json:"handoff,omitempty"`
	TimeZones  []string         `json:"time_zones,omitempty"`
	ZoneSource string           `json:"zone_source,omitempty"`
}

// checkContact judges a contact as the policy would, recording nothing.
func (s *Server) checkContact(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	deps, err := s.policy()
	if err != nil {
		return err
	}
	var req checkRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if req.CustomerID == "" {
		return errorf(CodeInvalid, "customer_id is required")
	}
	if _, err := s.liveCustomer(r.Context(), req.CustomerID); err != nil {
		return err
	}
	at := s.now()
	if req.At != "" {
		if at, err = time.Parse(time.RFC3339, req.At); err != nil {
			return errorf(CodeInvalid, "at: %q is not an RFC 3339 time (2026-03-02T09:00:00+08:00)", req.At)
		}
	}
	d, err := deps.Policy.Evaluate(r.Context(), contact.Request{
		CustomerID: req.CustomerID, ConversationID: req.ConversationID, Channel: req.Channel, Purpose: req.Purpose,
		Topic: req.Topic, Campaign: req.Campaign, At: at, DryRun: true,
	})
	if err != nil {
		return err
	}
	if d.Reasons == nil {
		d.Reasons = []contact.Reason{} // "reasons": [], never null
	}
	WriteJSON(w, http.StatusOK, checkResponse{Decision: d.Decision, Until: d.Until, Reasons: d.Reasons,
		At: at.UTC(), Handoff: d.Handoff, TimeZones: d.TimeZones, ZoneSource: d.ZoneSource})
	return nil
}

// customerContacts pages through the customer's touches in the ledger,
// newest first (what a rep or an auditor asks first is "what happened
// lately"), from since on. The cursor is the last touch returned: pages
// stay in place while new touches arrive.
func (s *Server) customerContacts(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q, err := Query(r, "since", "limit", "cursor")
	if err != nil {
		return err
	}
	deps, err := s.policy()
	if err != nil {
		return err
	}
	var since time.Time
	if v := q.Get("since"); v != "" {
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			return errorf(CodeInvalid, "since: %q is not an RFC 3339 time", v)
		}
	}
	limit, err := IntParam(q, "limit")
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var after *contact.Touch
	if v := q.Get("cursor"); v != "" {
		t, err := decodeTouchCursor(v)
		if err != nil {
			return err
		}
		after = &t
	}
	c, err := s.store.Customer(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	touches, err := deps.Ledger.Touches(r.Context(), c.ID, since)
	if err != nil {
		return err
	}
	slices.Reverse(touches) // the ledger lists oldest first
	if after != nil {
		i, _ := slices.BinarySearchFunc(touches, *after, func(t, cur contact.Touch) int { return -touchCompare(t, cur) })
		// BinarySearch finds the cursor's place; start past it.
		if i < len(touches) && touchCompare(touches[i], *after) == 0 {
			i++
		}
		touches = touches[i:]
	}
	next := ""
	if len(touches) > limit {
		touches = touches[:limit]
		next = encodeTouchCursor(touches[limit-1])
	}
	WriteJSON(w, http.StatusOK, NewPage(touches, next))
	return nil
}

// touchCompare orders touches as the ledgers do: by time, then id.
func touchCompare(a, b contact.Touch) int {
	return cmp.Or(a.At.Compare(b.At), strings.Compare(a.ID, b.ID))
}

func encodeTouchCursor(t contact.Touch) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.At.UTC().Format(time.RFC3339Nano) + " " + t.ID))
}

func decodeTouchCursor(c string) (contact.Touch, error) {
	bad := errorf(CodeInvalid, "cursor: not a cursor this route gave")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return contact.Touch{}, bad
	}
	at, id, ok := strings.Cut(string(b), " ")
	t, err := time.Parse(time.RFC3339Nano, at)
	if !ok || err != nil {
		return contact.Touch{}, bad
	}
	return contact.Touch{At: t, ID: id}, nil
}

// refusalReasonOther labels a reason that is not one of the contact
// policy's (a policy of another kind behind the Sender).
const refusalReasonOther = "other"

func newRefusals(reg *prometheus.Registry) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "omnigate", Subsystem: "contact", Name: "refusals_total",
		Help: "Outbound contacts the contact policy denied or deferred, by reason; a refusal with two reasons counts under both.",
	}, []string{"reason"})
	for _, reason := range append(contact.Reasons(), refusalReasonOther) {
		c.WithLabelValues(reason) // every series from the start, at 0
	}
	if reg != nil {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// refused records an outbound contact the policy refused: a
// contact_refused event on the customer's timeline (in the conversation
// it was for, if any), authored by whoever tried, and a count per reason.
// Nothing else records it: the Sender refuses before it writes anything.
// A failure to append is logged, not returned: the caller's answer is the
// refusal either way.
func (s *Server) refused(ctx context.Context, req channels.Request, e *channels.RefusedError) {
	for _, reason := range e.Verdict.Reasons {
		if !slices.Contains(contact.Reasons(), reason) {
			reason = refusalReasonOther
		}
		s.refusals.WithLabelValues(reason).Inc()
	}
	refusal := sessions.ContactRefusal{Decision: string(e.Verdict.Decision), Reasons: e.Verdict.Reasons,
		Until: e.Verdict.Until, Channel: e.Channel, Purpose: req.Purpose}
	if e.Verdict.HandoffTo != "" {
		// A task for the rep of the open work: the event in their
		// conversation, with what was to be said.
		refusal.HandedOff, refusal.Text = true, req.Message.Text
	}
	payload, err := json.Marshal(refusal)
	if err == nil {
		ev := sessions.Event{CustomerID: req.CustomerID, Kind: sessions.KindContactRefused, Channel: sessions.ChannelSystem,
			Author: req.Author, Payload: payload}
		switch {
		case e.Verdict.HandoffTo != "":
			ev.ConversationID = e.Verdict.HandoffTo
		case req.Conversation != nil:
			ev.ConversationID = req.Conversation.ID
		}
		_, _, err = s.store.Append(ctx, ev)
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "api: recording a contact refusal",
			slog.String("customer_id", req.CustomerID), slog.String("request_id", requestID(ctx)), slog.Any("error", err))
	}
}
