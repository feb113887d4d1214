// Package webhooks is integrator webhooks both ways: events in at
// POST /v1/events, Omnigate's timeline events out to registered endpoints
// (dispatcher, sender), and the admin API for endpoints, delivery logs,
// dead letters and replay under /v1/webhooks. The Standard Webhooks scheme
// signs both directions (subpackage signing).
//
// The HTTP routes are Service.Routes, served by internal/api like every
// /v1 route: it checks the admin role or, for /v1/events, has the
// signature verified (intake.verify) before the handler runs, caps the
// body, counts the request and writes errors from its catalogue. This
// package returns errors; it writes none.
//
// # Events in
//
// A request is authenticated before anything is parsed: the secret that
// verifies its webhook-signature names the integration (Config.Integrations;
// each may have a previous secret during a rotation), and a
// webhook-timestamp more than 5 minutes from the server's clock is refused.
// The body is decoded strictly, and a customer named by an OpenID or a
// site user must be under a configured official account or web site
// (Options.WeChatAccounts, Options.Sites), or nothing is stored. The
// event is appended as kind "integrator"
// on channel "api" with external id = webhook-id, so the store makes a
// replay return the first event. Order of work, so that a replay changes
// nothing: resolve the customer; find the active conversation on the topic
// (if none, search the timeline for the webhook-id before opening one, so a
// replay after the conversation was resolved opens nothing); append; only
// for a new event, update the customer. A crash between the append and the
// update loses the update (the event, which records it, stands).
//
// # Webhooks out: the outbox and the feed
//
// Deliveries live in an Outbox (BoltOutbox: its own fsynced bbolt file);
// a delivery Enqueue returned for is attempted until it succeeds or ages
// out (Config.MaxAge) into the dead letters, whatever happens to the
// process. Each has a webhook-id derived from (endpoint, event), the same
// on every retry, replay, restart and node, so receivers deduplicate by it.
// Delivery is at least once: a crash after the receiver answered 2xx and
// before the outcome was recorded sends it again, with the same id.
//
// The store's change feed has no global sequence and may drop a
// subscriber (ErrSlow), and a process can die between an append and the
// moment its dispatcher enqueues it. So the feed is only a hint and the
// timelines are the truth: the outbox keeps, per customer, the last
// sequence handled (a cursor), moved in the same write as the deliveries
// it produced. A live event that follows its customer's cursor is used as
// it is; a gap, or a customer never seen (read from sequence 1), is filled
// from the timeline. Start subscribes before returning, and after every
// (re)subscription a recovery pass catches up, from their timelines:
// every customer the outbox knows, every customer with an open or pending
// conversation, every customer with a conversation created since the last
// checkpoint less 5 minutes, customers the intake marked (Touch), and
// customers whose enqueue failed.
//
// The one gap, exactly: an event appended while the feed could not bring
// it to the dispatcher (just before a crash, during an ErrSlow cut-off, or
// while the delivering node was down in a cluster), for a customer the
// outbox had never recorded, who has no active conversation and none
// created near the checkpoint. That is the first events of a brand-new
// customer outside any conversation (an identity link, a merge, an
// integrator event from another path). Such events are not lost from the
// timeline and are delivered late, when that customer's next event arrives
// (an unknown customer is read from sequence 1); only if none ever does
// are they never delivered. A global change sequence in sessions.Store
// would close it.
//
// An endpoint gets only events that happened after it was created, of the
// kinds it filters on. While no endpoint exists the dispatcher writes
// nothing (no cursor moves, no fsync per batch); the first event after an
// endpoint is created reads each customer's gap from the timeline. Events copied by a merge are new events (Origin
// set) and are delivered as such. Deliveries are not ordered with each
// other; data.seq orders one customer's events.
//
// Retries back off exponentially from RetryBase to RetryMax with equal
// jitter, for MaxAge (24 h), at most Concurrency in flight per endpoint.
// An endpoint whose every attempt fails for DisableAfter is disabled: its
// pending deliveries, and what it is owed while disabled, become dead
// letters; the admin is told by an error log, the
// omnigate_webhooks_endpoints_disabled_total metric and Options.OnDisable.
// Enabling it and replaying its dead letters resumes.
//
// Cluster: the outbox is a file of one node. Run delivery on one node
// (Config.NoDelivery on the others) and route /v1/webhooks to it; any node
// takes /v1/events. Two delivering nodes would send everything twice,
// under the same webhook-ids.
//
// What it must not do: log payloads, phone numbers or URLs' query strings;
// write a customer's timeline except through the intake; block the store's
// feed (a batch is one outbox write).
//
// Concurrency: Service methods are safe for concurrent use. The
// dispatcher follows the feed with a sessions.Consumer (one worker, events
// in batches; it resubscribes on its own and its OnGap starts a recovery
// pass); recovery runs beside it, and dispatcher.mu
// serialises them per batch so a customer's cursor moves one way. The
// sender's mu guards only its in-flight counts and is never held during
// I/O. Outbox implementations are safe for concurrent use.
package webhooks
