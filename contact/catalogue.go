package contact

import (
	"context"
	"fmt"
	"slices"
)

// Channels are the channels a contact may go out on, in a fixed order: the
// words a do-not-contact entry or a check may name.
func Channels() []string { return slices.Clone(knownChannels) }

// Reasons are every reason code the policy gives, in a fixed order: the
// labels of a metric by reason.
func Reasons() []string {
	return []string{ReasonDoNotContact, ReasonNoConsent, ReasonQuietHours, ReasonHoliday, ReasonFrequencyCap,
		ReasonMinGap, ReasonOpenWork, ReasonDuplicateTopic, ReasonAbandonedLockout}
}

// Purposes are the purposes p judges (the built-in four and the
// configured ones), sorted. "reply" is not among them: it is judged as
// service, so a do-not-contact entry for service holds replies too.
func (p *Policy) Purposes() []string { return sortedKeys(p.cfg.purposes) }

// CustomerSuppressions are the do-not-contact entries that apply to a
// customer on some channel for some purpose: on its id or one of its
// identities (phone, email, WeChat OpenID), each entry once, in List
// order. An entry naming a channel or purpose p does not know applies to
// no contact and is left out.
//
// Suppressions can only Match per channel and purpose, so this asks once
// per pair: a few dozen lookups, meant for showing one customer, not for
// the path of every contact.
func (p *Policy) CustomerSuppressions(ctx context.Context, customerID string) ([]Suppression, error) {
	ids, err := p.o.Store.Identities(ctx, customerID)
	if err != nil {
		return nil, fmt.Errorf("contact: identities of customer %s: %w", customerID, err)
	}
	keys := suppressionKeys(customerID, ids)
	seen := map[string]Suppression{}
	for _, ch := range knownChannels {
		for purpose := range p.cfg.purposes {
			found, err := p.o.Suppressions.Match(ctx, keys, ch, purpose)
			if err != nil {
				return nil, fmt.Errorf("contact: suppressions of customer %s: %w", customerID, err)
			}
			for _, s := range found {
				seen[s.key()] = s
			}
		}
	}
	out := make([]Suppression, 0, len(seen))
	for _, k := range sortedKeys(seen) {
		out = append(out, seen[k])
	}
	return out, nil
}
