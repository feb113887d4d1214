// Package router decides who answers each contact: it holds the reps (skills,
// languages, tier, capacity per channel, presence, wrap-up) and the queues of
// routing tasks, and for every task picks the best rep, or says why it waits,
// or what the overflow action is.
//
// # What it does
//
// A conversation that needs a human becomes a Task with a priority (VIP above
// tiers A, B, C, D, none; configurable), required skills and language, the
// customer's owner and, for an assigned conversation, its assignee. Waiting
// tasks are served first in, first out within a priority, with continuous
// aging so low priority never starves (see PriorityConfig). Each queue
// (QueueConfig) tries rings from the inside out: the sticky assignee or the
// owner (waiting up to Owner.Wait for an owner who is online but busy,
// skipping at once one who is away or offline); reps with the exact skills
// and language; after Relaxed.After, a wider ring (tier 2, lower levels,
// fewer skills, any language); after Overflow.After, the overflow action
// (callback, message, or move to a channel whose queue has a free rep).
// Within a ring the queue's Select policy picks among reps with enough free
// capacity: longest idle (ties to fewest active), fewest active, or round
// robin. Capacity is a cost model: each rep holds Capacity units (100) and
// each task costs its channel's units (a call 100, a chat 25, a WeChat or
// SMS thread 20). Offline, away, on-call and wrapping-up reps are never
// chosen. A queue either assigns directly or offers with an accept timeout;
// an offer not accepted moves on and MaxMisses misses in a row set the rep
// away.
//
// Every decision is a Decision: the ring, every rep considered with the
// reason it was excluded, and why the winner won. It is JSON, and
// Decision.Event makes it the assignment event for the timeline.
//
// # What it must not do
//
// No I/O of its own: no HTTP, XML, SIP or WebSocket, and no writes to the
// sessions store. It returns decisions; the gateway records them on the
// timeline, updates the conversation, tells the inbox and the customer, and
// books callbacks. Its only outside dependency is the State it claims
// through, which a cluster backs with Valkey. It reads time only from its
// Clock, so tests and the simulator (router/sim) are deterministic.
//
// # State and clusters
//
// What must be atomic across gateway processes goes through a State: a
// conversation is pushed when it starts waiting, and giving it to a rep is
// one Claim that takes it out of its queue and adds its cost to the rep's
// claimed units, refused if another node took it first (the router forgets
// it: KindTaken) or if the rep would be over capacity (the router learns
// the rep's real load and chooses again). MemoryState serves one process;
// ValkeyState does each operation as one Lua script on Valkey/Redis, all
// keys in one hash slot, so no two nodes can double-assign a conversation
// or overfill a rep. The State also holds each rep's presence and load
// for every node: SetPresence writes through, and Sync brings a router's
// copy up to date with what other nodes claimed, released and set (a node
// also learns a rep's real load at once when its claim fails). A
// ValkeyState made for a node marks what the node holds and keeps a lease;
// when the lease lapses, other nodes take its tasks over (Push, Adopt; see
// ValkeyState). Adopt also counts assignments made outside the router (by
// a person, before a restart). The routing service (router/routing)
// drives all of this.
//
// The simulator in router/sim drives the real Router and checks it against
// Erlang C and Erlang A; router/REPORT.md compares strategies.
//
// # Concurrency
//
// A Router is safe for concurrent use: one mutex (Router.mu) guards all of
// it, held for the whole of each method, so each method sees and leaves a
// consistent state and decisions are made one at a time. Lock order:
// Router.mu, then the State's own lock (MemoryState.mu) inside State
// methods; a State never calls back into the Router. With ValkeyState the
// mutex is held across the script round trips, so one router makes about
// one assignment per two round trips (see BenchmarkDecisionValkey). Timers do not run by
// themselves: the caller calls Tick at NextDeadline (the gateway from one
// goroutine every 250 ms once it has passed, the simulator from its event
// loop), so no goroutine belongs to the router.
//
// The decisions a method returns must be acted on in order; a Decision is a
// value the caller owns.
package router
