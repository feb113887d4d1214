package gateway

import "github.com/omnigate/omnigate/sessions"

// StoreOf is the gateway's store, for tests that set up what no API
// does (linking a customer's identities).
func StoreOf(g *Gateway) sessions.Store { return g.store }
