// Package sessions holds Omnigate's domain: customers, their identities,
// conversations and the one ordered timeline of events per customer, and the
// Store that keeps them.
//
// Every channel resolves what it receives to a Customer through an Identity
// and appends an Event to that customer's timeline; when a human must
// answer, it does so with Intake, which gets or opens the Conversation for
// the customer and topic in the same write. Nothing here
// knows about HTTP, XML, SIP or routing; it must stay that way so the store
// can be swapped (bbolt on one node, Valkey for a cluster, memory in tests).
//
// Guarantees every Store implementation gives, checked by one conformance
// suite (conformance_test.go) run against all of them:
//
//   - Resolving an identity is atomic: concurrent first contacts with the same
//     identity create exactly one customer.
//   - Append is idempotent by (channel, external id) within a customer (and
//     the customers merged into it): a retry returns the stored event and
//     appends nothing.
//   - Sequence numbers in a customer's timeline start at 1, increase by 1 and
//     never have gaps, whatever the concurrency.
//   - A customer has at most one open or pending conversation per topic.
//   - Writes that change two things (a conversation and the event recording
//     the change) happen together or not at all.
//   - Intake never appends into a conversation that was resolved before the
//     append: choosing (or opening) the conversation and appending to it
//     are one write.
//   - An append that returned success is durable as far as the backend is
//     (bbolt: its write-ahead log record fsynced, see bolt_wal.go; Valkey:
//     per its persistence settings).
//
// Phone numbers have their one home here (phone.go: NormalizePhone,
// CheckPhone, IsE164), because every package that meets a number already
// imports sessions: channels normalise what customers type, the store
// accepts only what NormalizePhone returns, masking checks the shape.
//
// Concurrency: every Store method is safe for concurrent use. Subscriptions
// deliver events in per-customer sequence order; a subscriber that falls
// behind is cut off with ErrSlow rather than silently skipped, and catches up
// from the timeline (see Follow). Whatever follows the whole feed does so
// through a Consumer: it resubscribes for as long as its context lives,
// calls OnGap once the new subscription exists so the caller catches up,
// and keeps a per-customer watermark of what was handled, which tests wait
// on before asserting that something did not happen. Fanout is one Consumer
// shared by a node's per-customer watchers.
package sessions
