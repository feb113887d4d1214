package dialer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/sessions"
)

// target is one customer a campaign calls.
type target struct {
	customer sessions.Customer
	phone    string
	voice    bool // had voice contact before (a trial stratum)
}

// Create validates spec, resolves its audience (a CSV's numbers resolve
// to customers by phone identity, creating those unknown) and stores the
// campaign in state created with one due attempt per customer (held,
// for the rest of a trial campaign). The CSV is part of the Spec
// (Audience.CSV), so a bad line refuses the whole campaign: on any
// error (ErrInvalid, wrapping every problem) nothing is created, not
// even customers. Customers with no phone number are left out and
// counted (Campaign.NoPhone).
func (s *Service) Create(ctx context.Context, spec Spec) (Campaign, error) {
	errs := []error{spec.Validate(s.knownNow())}
	var entries []CSVEntry
	if strings.TrimSpace(spec.Audience.CSV) != "" {
		var err error
		entries, err = ParseCSV(strings.NewReader(spec.Audience.CSV), spec.Audience.Region)
		errs = append(errs, err)
	}
	if spec.Audience.Segment != nil && s.o.Segment == nil {
		errs = append(errs, fmt.Errorf("%w: audience.segment: this gateway cannot select customers by segment; list them or give a csv", ErrInvalid))
	}
	listed, err := s.listedCustomers(ctx, spec)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return Campaign{}, err
	}
	if _, err := s.o.Store.Campaign(ctx, spec.ID); err == nil {
		return Campaign{}, fmt.Errorf("%w: campaign %s exists", ErrInvalid, spec.ID)
	} else if !errors.Is(err, ErrNotFound) {
		return Campaign{}, err
	}

	spec = spec.withDefaults()
	c := Campaign{Spec: spec, State: StateCreated, CreatedAt: s.o.Clock.Now()}
	c.UpdatedAt = c.CreatedAt
	targets, err := s.targets(ctx, listed, entries, &c)
	if err != nil {
		return Campaign{}, err
	}
	if len(targets) == 0 {
		return Campaign{}, fmt.Errorf("%w: audience: none of its %d customers has a phone number", ErrInvalid, c.NoPhone)
	}
	c.Audience = len(targets)
	// The attempts hold the audience now; the campaign, read every tick,
	// does not carry a list or a CSV that may run to megabytes.
	c.Spec.Audience.Customers, c.Spec.Audience.CSV = nil, ""
	sample := map[int]string{}
	if spec.Trial != nil {
		sample = trialSample(targets, spec.Trial.Sample)
		c.TrialSize = len(sample)
	}
	// Attempts first, the campaign last: a crash between leaves attempts
	// no campaign names, never a campaign missing customers. A Create
	// retried after such a crash overwrites those leftovers (ids are
	// deterministic) and concludes any the new audience has no place for.
	left, err := s.o.Store.Attempts(ctx, spec.ID)
	if err != nil {
		return Campaign{}, err
	}
	stale := make(map[string]Attempt, len(left))
	for _, a := range left {
		stale[a.ID] = a
	}
	var all []Attempt
	for i, t := range targets {
		a := Attempt{ID: attemptID(spec.ID, i, 1), Campaign: spec.ID, CustomerID: t.customer.ID, Number: t.phone,
			Try: 1, State: AttemptDue, Due: c.CreatedAt, Version: stale[attemptID(spec.ID, i, 1)].Version}
		delete(stale, a.ID)
		if stratum, ok := sample[i]; ok {
			a.Trial, a.Stratum = true, stratum
		} else if spec.Trial != nil {
			a.State = AttemptHeld
		}
		all = append(all, a)
	}
	for _, a := range stale {
		a.State, a.Outcome = AttemptDone, OutcomeSkipped
		all = append(all, a)
	}
	for batch := range slices.Chunk(all, maxBatch) {
		if _, err := s.o.Store.SaveAttempts(ctx, batch...); err != nil {
			return Campaign{}, fmt.Errorf("dialer: campaign %s: storing attempts: %w", spec.ID, err)
		}
	}
	return s.o.Store.CreateCampaign(ctx, c)
}

// listedCustomers returns the customers the spec lists and its segment
// selects, every unknown one an error.
func (s *Service) listedCustomers(ctx context.Context, spec Spec) ([]sessions.Customer, error) {
	ids := slices.Clone(spec.Audience.Customers)
	if seg := spec.Audience.Segment; seg != nil && s.o.Segment != nil {
		more, err := s.o.Segment(ctx, *seg)
		if err != nil {
			return nil, fmt.Errorf("dialer: audience.segment: %w", err)
		}
		ids = append(ids, more...)
	}
	var out []sessions.Customer
	var errs []error
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		c, err := s.o.Sessions.Customer(ctx, id)
		switch {
		case errors.Is(err, sessions.ErrNotFound):
			errs = append(errs, fmt.Errorf("%w: audience.customers: no customer %s", ErrInvalid, id))
		case err != nil:
			return nil, err
		case c.MergedInto != "":
			errs = append(errs, fmt.Errorf("%w: audience.customers: %s was merged into %s", ErrInvalid, id, c.MergedInto))
		default:
			out = append(out, c)
		}
	}
	return out, errors.Join(errs...)
}

// targets resolves the audience to customers with a number, in order:
// listed and segment customers, then the CSV's.
func (s *Service) targets(ctx context.Context, listed []sessions.Customer, entries []CSVEntry, c *Campaign) ([]target, error) {
	var out []target
	seen := map[string]bool{}
	add := func(cust sessions.Customer, phone string) error {
		if seen[cust.ID] {
			return nil
		}
		seen[cust.ID] = true
		voice, err := s.hadVoice(ctx, cust.ID)
		if err != nil {
			return err
		}
		out = append(out, target{customer: cust, phone: phone, voice: voice})
		return nil
	}
	for _, cust := range listed {
		ids, err := s.o.Sessions.Identities(ctx, cust.ID)
		if err != nil {
			return nil, err
		}
		phone := bestPhone(ids)
		if phone == "" {
			c.NoPhone++
			continue
		}
		if err := add(cust, phone); err != nil {
			return nil, err
		}
	}
	for _, e := range entries {
		cust, created, err := s.o.Sessions.ResolveCustomer(ctx,
			sessions.Identity{Kind: sessions.IdentityPhone, Value: e.Phone}, sessions.Customer{Name: e.Name})
		if err != nil {
			return nil, fmt.Errorf("dialer: csv line %d: %w", e.Line, err)
		}
		if created {
			c.NewCustomers++
		}
		if err := add(cust, e.Phone); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bestPhone is the number to call: a verified phone identity first.
func bestPhone(ids []sessions.Identity) string {
	phone := ""
	for _, id := range ids {
		if id.Kind != sessions.IdentityPhone {
			continue
		}
		if id.Verified {
			return id.Value
		}
		if phone == "" {
			phone = id.Value
		}
	}
	return phone
}

// hadVoice reports whether the ledger has a voice touch of the customer.
func (s *Service) hadVoice(ctx context.Context, customerID string) (bool, error) {
	ts, err := s.o.Ledger.Touches(ctx, customerID, s.o.Clock.Now().AddDate(-1, 0, 0))
	if err != nil {
		return false, fmt.Errorf("dialer: touches of customer %s: %w", customerID, err)
	}
	return slices.ContainsFunc(ts, func(t contact.Touch) bool { return t.Channel == sessions.ChannelVoice }), nil
}
