// Package gateway wires a loaded config.Config into a running gateway: it
// opens the store, builds the router, the channel registry, the HTTP API
// and the sockets, listens, and shuts everything down in order.
// cmd/gateway's main only parses flags, loads the config and calls New and
// Run; tests start the same gateway on 127.0.0.1:0.
//
// Shutdown order, once Run's context ends: stop accepting connections,
// drain in-flight HTTP requests for up to Config.ShutdownTimeout (then cut
// the rest), close the WebSockets with the "shutdown" code, stop routing
// (in a cluster, giving up this node's lease so the others take over its
// conversations at once), close the channels and webhooks, then the
// contact policy's recorder, ledger and do-not-contact list (which the
// channels write to), then the store, which flushes and syncs it.
//
// # Contact policy
//
// contact.go opens the contact ledger and the do-not-contact list
// (<data_dir>/contact.db and suppressions.db on one node; Valkey under the
// store's key prefix in a cluster), builds the contact.Policy the
// channels.Sender asks about every message, gives the SMS and WeChat
// adapters the list (STOP, unfollow), gives the API the three
// (api.ContactDeps), and starts one contact.Recorder per node.
//
// # Dialer
//
// dialer.go runs the dialer's Service when the config has dialer.trunk:
// its store (<data_dir>/dialer.db on one node; Valkey under the store's
// key prefix in a cluster, where campaign leases live too), the
// simulated trunk with its rules (diallog.go wraps it with dial_log), the
// routing service for reps, the contact policy and ledger, the campaigns
// the file declares, and the API's campaign and preview routes. Run
// starts it after routing; shutdown stops it (waiting up to
// shutdown_timeout for calls in progress) before routing closes. The
// sessions store it gets resolves a campaign's conversation once its
// attempt concludes (dialerSessions), so routing's start-up reconcile
// does not give the dialer's conversations to reps.
//
// # Limits on clients
//
// Two classes of route (limits.go): requests, whose bodies get
// config http.body_timeout to arrive (a deadline on the connection, lifted
// once the body is read), and WebSockets, hijacked and long-lived, which
// get none. The listener caps open connections at http.max_connections
// and refuses, rather than queues, the one after.
//
// # Routing
//
// Routing runs in its own package, router/routing (the routing service):
// the gateway builds it (with a router.ValkeyState on its Valkey client in
// a cluster), tells it when reps' inbox sockets open and close, gives it
// to the API for the rep directory and presence, and starts and closes it
// in order.
//
// What it must not do: hold business logic. Anything a handler, router or
// adapter does belongs in that package; this one only connects them.
//
// Concurrency: New, then Run once. URLs and Addr are safe at any time after
// New.
package gateway
