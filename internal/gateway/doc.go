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
// conversations at once), then close the store, which flushes and syncs
// it.
//
// # Routing
//
// routing.go runs the router (package router) for the gateway. The store's
// change feed drives it, with events sharded by conversation over a few
// workers so each conversation's events are handled in order:
//
//   - A customer message (message_in; also integrator and call events) on
//     an open conversation with no assignee becomes a router task: priority
//     from the customer's VIP flag and tier, owner from the customer, the
//     channel from the event, skills from the channel's queue, language
//     from the customer's locale when some rep speaks it. A conversation
//     with an assignee keeps it (sticky): nothing to do.
//   - A decision to assign is recorded with one UpdateConversation: the new
//     assignee and an assignment event whose payload is the router.Decision
//     (ring, candidates, why), which the inbox shows. Before writing, the
//     conversation is read again and the claim checked: a conversation
//     resolved or assigned meanwhile, or a claim lost to another node, is
//     released instead and nothing is written.
//   - Any other change to a conversation (a person's assignment or
//     transfer, resolving, reopening) makes the router hold what the
//     conversation now says: resolved releases the rep's capacity (wrap-up
//     follows); a person's assignment moves the load to the new assignee
//     (Router.Adopt); unassigned means routed again.
//   - Presence: a rep's first inbox socket on a node makes them available;
//     when their last socket on every node has been closed for
//     routing.presence_grace they are set away. POST
//     /v1/reps/{id}/presence sets it directly; GET /v1/reps shows it with
//     each rep's load.
//   - A ticker runs the router's timers (owner waits, widening rings,
//     overflow, wrap-up, offers expiring).
//   - Offers (a queue with offer.accept_timeout): an offer, and its end
//     (expired, declined, withdrawn), is an offer event on the timeline,
//     its payload the decision plus the rep and expires_at. The rep
//     answers through POST /v1/conversations/{id}/accept or /decline,
//     which only appends the answer (an offer event by rep:<id>); the
//     node whose router holds the offer sees it in the feed and calls
//     Router.Accept (then records the assignment like a direct one) or
//     Router.Decline (the offer moves on). Other nodes do not know the
//     task and ignore it, so any node may take the request.
//   - Reconcile, at start, after the feed fell behind (sessions.ErrSlow:
//     the subscription is renewed first, so nothing after it is missed)
//     and every routing.reconcile_interval: every task the router holds is
//     checked against its conversation, and open conversations that no
//     router holds (unchanged for routing.reconcile_after, or all of them
//     at start) are routed or adopted.
//
// With the valkey store the router's State is a router.ValkeyState on the
// same server, one per process (a "node"). Claims are Lua scripts: a
// conversation waits in at most one node's router (the first to push it;
// the others' pushes are refused and they drop it), a rep's claimed units
// never pass capacity whichever node claims, and only the holder may
// claim, release or drop what it holds. Each node renews a lease every
// routing.sync_interval and, in the same loop, syncs its router with what
// other nodes claimed, released and set (Router.Sync). When a node dies,
// its lease lapses after routing.node_lease and the others' reconcile
// takes over what it held: waiting or half-assigned conversations are
// pushed again (any claim that never became an assignment is freed),
// assigned ones are adopted so their capacity is released when they end.
// TestClusterRouting proves it with three processes, 2,000 chats, 50 reps
// and one node killed midway, checked from the timelines.
//
// Limits: FIFO holds within a node's queue, not across nodes; wrap-up and
// idle times are per node; offer events are appended after the router
// decided, outside the conversation's lock, so two steps racing on one
// conversation (an expiry and a release) may land out of order; overflow
// decisions are recorded on the timeline but not acted on; a rep whose
// node died with their socket stays available until they reconnect or
// are set away.
//
// What it must not do: hold business logic. Anything a handler, router or
// adapter does belongs in that package; this one only connects them.
//
// Concurrency: New, then Run once. URLs and Addr are safe at any time after
// New. routing.go documents its own locks.
package gateway
