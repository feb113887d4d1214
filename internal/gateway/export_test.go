package gateway

import (
	"context"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/sessions"
)

// StoreOf is the gateway's store, for tests that set up what no API
// does (linking a customer's identities).
func StoreOf(g *Gateway) sessions.Store { return g.store }

// WaitRouted waits until the routing service has handled every event the
// customer's timeline holds now: after it, what routing did with them is
// on the timeline and in the router, and what it did not do will not
// happen late.
func WaitRouted(ctx context.Context, g *Gateway, customerID string) error {
	seq, err := g.store.LastSeq(ctx, customerID)
	if err != nil {
		return err
	}
	return g.routing.WaitHandled(ctx, customerID, seq)
}

// ContactOf is the gateway's contact ledger and do-not-contact list.
func ContactOf(g *Gateway) (contact.Ledger, contact.Suppressions) {
	return g.contact.ledger, g.contact.sups
}

// WaitRecorded waits until the contact recorder has handled every event
// the customer's timeline holds now: after it, their inbound touches are
// on the ledger.
func WaitRecorded(ctx context.Context, g *Gateway, customerID string) error {
	seq, err := g.store.LastSeq(ctx, customerID)
	if err != nil {
		return err
	}
	return g.contact.recorder.WaitHandled(ctx, customerID, seq)
}
