// Package routing is the routing service: it runs a router (package
// router, pure decisions) against the sessions store. It turns
// conversations that need a human into router tasks, writes the router's
// decisions on the timeline, feeds it presence, keeps it in step with the
// store and, in a cluster, with the other nodes, and holds reps for work
// outside the queues (Reserve and Release, for the dialer and voice).
//
// The gateway builds it with New from its Config (how it runs) and the
// router's Config (queues, rings, reps), gives it the store and, in a
// cluster, a router.ValkeyState (a Cluster), and tells it when reps'
// inbox sockets open and close (Connected).
//
// # The flow
//
// The store's change feed drives it, through one sessions.Consumer whose
// workers shard events by customer, so each customer's events are handled
// in order:
//
//   - A customer message (message_in; also integrator and call events) on
//     an open conversation with no assignee becomes a router task: priority
//     from the customer's VIP flag and tier, owner from the customer, the
//     channel from the event, skills from the channel's queue, language
//     from the customer's locale when some rep speaks it. A conversation
//     with an assignee keeps it (sticky): nothing to do. Intake is one
//     atomic store write (sessions.Store.Intake), so a message never lands
//     in a conversation resolved before it.
//   - A decision to assign is recorded with one UpdateConversation: the new
//     assignee and an assignment event whose payload is the router.Decision
//     (ring, candidates, why), which the inbox shows. Before writing, the
//     conversation is read again and the claim checked: a conversation
//     resolved or assigned meanwhile, or a claim lost to another node, is
//     released instead and nothing is written. Everything the router
//     writes has the author sessions.AuthorRouter, which is how the feed
//     tells the service's own writes from a person's.
//   - Any other change to a conversation (a person's assignment or
//     transfer, resolving, reopening) makes the router hold what the
//     conversation now says: resolved releases the rep's capacity (wrap-up
//     follows); a person's assignment moves the load to the new assignee
//     (Router.Adopt); unassigned means routed again.
//   - Presence: a rep's first inbox socket on a node makes them available;
//     when their last socket on every node has been closed for
//     Config.PresenceGrace they are set away. SetPresence sets it
//     directly.
//   - A ticker runs the router's timers (owner waits, widening rings,
//     overflow, wrap-up, offers expiring).
//   - A rep who has been away or offline for Config.ReassignAfter loses
//     their open conversations: each is unassigned by the router (an
//     assignment event saying why) and routed again, so a customer is not
//     left waiting on a rep who is gone. Coming back in time keeps them.
//   - Offers (a queue with offer.accept_timeout): an offer, and its end
//     (expired, declined, withdrawn), is an offer event on the timeline,
//     its payload the decision plus the rep and expires_at. The rep
//     answers through the API, which only appends the answer (an offer
//     event by rep:<id>); the node whose router holds the offer sees it in
//     the feed and calls Router.Accept (then records the assignment like a
//     direct one) or Router.Decline (the offer moves on). Other nodes do
//     not know the task and ignore it, so any node may take the request.
//   - Reconcile, at start, after the feed lost events (the consumer's gap)
//     and every Config.ReconcileInterval: every task the router holds is
//     checked against its conversation, and open conversations that no
//     router holds (unchanged for Config.ReconcileAfter, or all of them at
//     start) are routed or adopted.
//   - Reservations (Reserve): a rep held now for a call, or ErrNoRep; never
//     queued, never offered. They are router tasks named "rsv:<id>", so
//     capacity, on_call and wrap-up work as for conversations, and a dead
//     node's reservations are freed by whoever takes over its holdings.
//
// With a Cluster State, claims are Lua scripts: a conversation waits in at
// most one node's router (the first to push it; the others' pushes are
// refused and they drop it), a rep's claimed units never pass capacity
// whichever node claims, and only the holder may claim, release or drop
// what it holds. Each node renews a lease every Config.SyncInterval and,
// in the same loop, syncs its router with what other nodes claimed,
// released and set (Router.Sync). When a node dies, its lease lapses after
// Config.NodeLease and the others' reconcile takes over what it held:
// waiting or half-assigned conversations are pushed again (any claim that
// never became an assignment is freed), assigned ones are adopted so their
// capacity is released when they end. internal/gateway's
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
// What it must not do: speak HTTP, WebSocket or any channel's protocol,
// or import internal/ packages. It reads and writes the store and drives
// the router; the gateway wires it to the API and the inbox.
//
// Concurrency: New, then Start once, then Close once. Every other method
// is safe for concurrent use after New (Reserve, Release, SetPresence and
// Rep before Start, too).
package routing
