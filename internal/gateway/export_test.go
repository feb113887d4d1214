package gateway

import (
	"context"

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
