// Package dialer runs outbound calling campaigns: who to call (a list, a
// segment or a CSV), when (schedule windows, the contact policy at the
// moment of dialing), how fast (pacing: preview, progressive, predictive,
// in package pacing), and what happened (attempts with ids and states that
// survive a restart, every one on the customer's timeline).
//
// Calls go out through a Trunk. The SIP trunk (the voice issue) and the
// simulated trunk used by tests and the demo (SimTrunk) implement it; the
// dialer knows nothing of SIP. A call the customer answers is bridged to
// a rep the routing service reserved (Reserve/Release); an answered call
// no rep can take within the connect limit (2s) is abandoned: the
// customer hears the campaign's recorded message, the abandonment counts
// against the campaign's cap, and the contact policy's lockout applies.
//
// # Pieces
//
//   - Spec (campaign.go, validate.go, csv.go): what a campaign's author
//     writes, YAML or JSON, strict; Validate lists every problem.
//   - Service (service.go, create.go, preview.go, progress.go): what the
//     gateway calls. Create resolves the audience and stores one attempt
//     per customer; Start, Pause, Resume, Stop, Approve, Reject move the
//     campaign; NextPreview, Dial, Skip, MarkOutcome are the rep's.
//   - Run (run.go, runner.go, call.go): once a second, for every campaign
//     this node holds the lease of, the pacer's number of due attempts is
//     dialed; each call is followed by a goroutine to its end.
//   - Store (store.go and store_*.go): campaigns and attempts, memory,
//     bolt (one node) and Valkey (cluster), held to one conformance suite.
//   - SimTrunk (simtrunk.go): calls without SIP, outcomes by number, on
//     the dialer's Clock; it records every dial.
//
// # Exactly once
//
// Every write to the store is a compare-and-set on the record's version.
// An attempt moves to dialing in the store before Trunk.Dial is asked, so
// a crash after that never dials it again: the node that next runs the
// campaign concludes it (OutcomeInterrupted) and schedules the customer's
// next try by the retry rules, atomically with the conclusion, so nobody
// is skipped either. In a cluster one node runs a campaign under a lease
// it renews every tick; when it lapses another node takes over the same
// way. Each node also renews a heartbeat every tick, and an attempt
// names the node that placed its call: a runner concludes a call only
// when its node's heartbeat has lapsed (or it is its own node, restarted),
// so a call a live node follows (a rep's preview dial served there, or
// calls of a campaign whose lease moved) is left to finish there.
//
// # What it must not do
//
// Log or show a rep a customer's number (MaskNumber; logs name attempt
// ids). Dial without the contact policy's allow at that moment. Import
// internal/.
//
// # Concurrency
//
// A Service is safe for concurrent use. Service.mu guards the runners,
// the calls followed and the reps' release times; a runner's mu guards
// its pacer and abandonment counts. Neither is held while the other is
// taken, nor across a call to the store, the router, the policy or the
// trunk.
package dialer
