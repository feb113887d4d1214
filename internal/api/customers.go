package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions"
)

// customerView is a customer with its identities, as GET returns it.
type customerView struct {
	sessions.Customer
	Identities []sessions.Identity `json:"identities"`
}

func (s *Server) customerView(r *http.Request, c sessions.Customer) (customerView, error) {
	ids, err := s.store.Identities(r.Context(), c.ID)
	if err != nil {
		return customerView{}, err
	}
	if ids == nil {
		ids = []sessions.Identity{}
	}
	return customerView{Customer: c, Identities: ids}, nil
}

// searchCustomers finds customers by phone or email identity (exact,
// after normalising), tag or name substring (customerQuery). There is no
// cursor: a search is meant to find a handful. An exact phone lookup is
// guarded (phoneLookups): it confirms the number behind a rep's mask.
func (s *Server) searchCustomers(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q, err := Query(r, "phone", "email", "name", "tag", "q", "limit")
	if err != nil {
		return err
	}
	limit, err := IntParam(q, "limit")
	if err != nil {
		return err
	}
	cq, err := customerQuery(q, s.cfg.DefaultRegion)
	if err != nil {
		return err
	}
	cq.Limit = min(limit, 500)
	if cq.Phone != "" {
		if err := s.lookups.admit(r.Context(), p, cq.Phone); err != nil {
			return err
		}
	}
	cs, err := s.store.FindCustomers(r.Context(), cq)
	if err != nil {
		return err
	}
	if cq.Phone != "" {
		s.lookups.done(r.Context(), p, cq.Phone, len(cs))
	}
	WriteJSON(w, http.StatusOK, NewPage(cs, ""))
	return nil
}

func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	c, err := s.store.Customer(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := s.customerView(r, c)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, v)
	return nil
}

// patchCustomer applies a sessions.CustomerUpdate. Owner, tier and VIP
// decide who serves a customer and how fast, so only supervisors and
// admins set them; reps keep the profile (name, tags, locale...) current.
func (s *Server) patchCustomer(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	var u sessions.CustomerUpdate
	if err := decodeJSON(r, &u, false); err != nil {
		return err
	}
	if u.Name == nil && u.Tier == nil && u.VIP == nil && u.Owner == nil && u.Tags == nil &&
		u.TimeZone == nil && u.Locale == nil && u.Attributes == nil {
		return errorf(CodeInvalid, "update changes nothing")
	}
	if (u.Tier != nil || u.VIP != nil || u.Owner != nil) && p.Role != auth.RoleAdmin && p.Role != auth.RoleSupervisor {
		return errorf(CodeForbidden, "only supervisors and admins set owner, tier and vip")
	}
	if u.Owner != nil && *u.Owner != "" {
		if _, ok := s.auth.Rep(*u.Owner); !ok {
			return errorf(CodeInvalid, "owner: no rep %q", *u.Owner)
		}
	}
	for k := range u.Attributes {
		if k == "" || len(k) > 64 {
			return errorf(CodeInvalid, "attributes: keys must be 1-64 bytes")
		}
	}
	if err := u.Validate(); err != nil {
		return err
	}
	u.Author = p.Author()
	c, err := s.store.UpdateCustomer(r.Context(), r.PathValue("id"), u)
	if err != nil {
		return err
	}
	v, err := s.customerView(r, c)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, v)
	return nil
}

// timeline pages through a customer's events after a sequence number. The
// next cursor is the last sequence returned: pass it back as ?after=.
func (s *Server) timeline(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	q, err := Query(r, "after", "limit")
	if err != nil {
		return err
	}
	var after uint64
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return errorf(CodeInvalid, "after: %q is not a sequence number", v)
		}
	}
	n, err := IntParam(q, "limit")
	if err != nil {
		return err
	}
	limit := sessions.TimelineLimit(n)
	evs, err := s.store.Timeline(r.Context(), r.PathValue("id"), after, limit)
	if err != nil {
		return err
	}
	next := ""
	if len(evs) == limit {
		next = strconv.FormatUint(evs[len(evs)-1].Seq, 10)
	}
	WriteJSON(w, http.StatusOK, NewPage(evs, next))
	return nil
}

type customerMessageRequest struct {
	textRequest
	// Purpose tells the contact policy why the message is sent; empty
	// means channels.PurposeNotice.
	Purpose string `json:"purpose"`
}

// readNotice reads the body of a message sent to a customer unasked into
// req, whose message part is msg: text and client id required, purpose
// notice unless given.
func readNotice(r *http.Request, req any, msg *customerMessageRequest) error {
	if _, err := Query(r); err != nil {
		return err
	}
	if err := decodeJSON(r, req, false); err != nil {
		return err
	}
	if err := msg.validate(true); err != nil {
		return err
	}
	if msg.Purpose == "" {
		msg.Purpose = channels.PurposeNotice
	}
	return nil
}

// postCustomerMessage sends an integrator's message (a notice the customer
// did not ask for, such as "your parcel ships today") through the same
// Sender as reps' replies: into the customer's active conversation if they
// have one, else onto their timeline outside any conversation. It does not
// open a conversation, which would queue the notice for a rep; the
// customer's answer opens one as any message of theirs does.
func (s *Server) postCustomerMessage(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req customerMessageRequest
	if err := readNotice(r, &req, &req); err != nil {
		return err
	}
	c, err := s.store.Customer(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if c.MergedInto != "" {
		return errorf(CodeMerged, "customer %s was merged into %s; send to that one", c.ID, c.MergedInto)
	}
	return s.send(w, r, channels.Request{CustomerID: c.ID,
		Message: sessions.Message{Text: req.Text, ClientID: req.ClientID}, Author: p.Author(), Purpose: req.Purpose})
}

type mergeRequest struct {
	// From is the customer merged away; the path names the one kept.
	From string `json:"from"`
	// Evidence says why a person decided these are one customer.
	Evidence string `json:"evidence"`
}

type mergeResponse struct {
	Customer customerView   `json:"customer"`
	Event    sessions.Event `json:"event"`
}

// mergeCustomer merges from into the path's customer. The store does it
// atomically, so a failed merge leaves both customers as they were.
func (s *Server) mergeCustomer(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if _, err := Query(r); err != nil {
		return err
	}
	var req mergeRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	into := r.PathValue("id")
	switch {
	case req.From == "":
		return errorf(CodeInvalid, "from: the customer to merge is required")
	case req.From == into:
		return errorf(CodeInvalid, "from: cannot merge a customer into itself")
	case strings.TrimSpace(req.Evidence) == "" || len(req.Evidence) > 500:
		return errorf(CodeInvalid, "evidence: say why these are one customer, in 1-500 bytes")
	}
	ev, err := s.store.Merge(r.Context(), into, req.From, req.Evidence, p.Author())
	if err != nil {
		return err
	}
	c, err := s.store.Customer(r.Context(), into)
	if err != nil {
		return err
	}
	v, err := s.customerView(r, c)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, mergeResponse{Customer: v, Event: ev})
	return nil
}
