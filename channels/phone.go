package channels

import (
	"context"
	"slices"

	"github.com/omnigate/omnigate/sessions"
)

// PhoneStore is what ResolvePhone needs of the sessions store.
type PhoneStore interface {
	ResolveCustomer(ctx context.Context, id sessions.Identity, seed sessions.Customer) (sessions.Customer, bool, error)
	Identities(ctx context.Context, customerID string) ([]sessions.Identity, error)
	LinkIdentity(ctx context.Context, customerID string, id sessions.Identity, author string) (sessions.Event, bool, error)
}

// ResolvePhone finds (or creates) the customer of number, an E.164 phone
// identity. verified says the contact proved the number (an inbound SMS,
// a call whose number a trusted trunk asserted): an unverified identity
// the customer already has (a number typed into a form) is then upgraded.
// An unverified contact is recorded as such and upgrades nothing.
func ResolvePhone(ctx context.Context, st PhoneStore, number string, verified bool) (sessions.Customer, error) {
	id := sessions.Identity{Kind: sessions.IdentityPhone, Value: number, Verified: verified}
	c, created, err := st.ResolveCustomer(ctx, id, sessions.Customer{})
	if err != nil || created || !verified {
		return c, err
	}
	ids, err := st.Identities(ctx, c.ID)
	if err != nil {
		return c, err
	}
	if slices.ContainsFunc(ids, func(x sessions.Identity) bool { return x.Key() == id.Key() && !x.Verified }) {
		if _, _, err := st.LinkIdentity(ctx, c.ID, id, sessions.ChannelSystem); err != nil {
			return c, err
		}
	}
	return c, nil
}
