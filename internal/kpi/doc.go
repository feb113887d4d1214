// Package kpi counts the contact centre's KPIs from the store's change
// feed, as events happen (never by scanning timelines), and serves them:
// GET /v1/reports/kpis (JSON or CSV), the omnigate_kpi_* gauges, and the
// live view the wallboard frame carries (internal/inbox).
//
// It lives under internal/ because it serves HTTP (api.Route) and reads
// roles (auth); it reads the feed with a sessions.Consumer like routing,
// the inbox and webhooks, and the routing configuration (router.Config)
// for each queue's service-level target and which queue a channel's
// contacts wait in.
//
// # Counting
//
// Every count is kept per 15-minute slot (UTC) under the whole team and
// under each queue, channel and rep the event names; an hour or a day is
// the sum of its slots, so one set of counters answers every interval.
// A slot's counters are a map (Counts) the stores add field by field.
// Speed of answer goes into a histogram (one-second buckets to a minute,
// then coarser, to an hour), so p90 needs no sample kept: it is the
// upper bound of the bucket holding the 90th percentile, exact to the
// second within a minute.
//
// # Definitions
//
//   - A contact is a customer's first message in a conversation (counted
//     on its channel), or their first message on another channel in a
//     conversation still open: that one is also a merged contact (the
//     channels joined into one open conversation). A repeat contact comes
//     from a customer who made one within the 24 hours before (as this
//     node has seen since it started).
//   - A wait starts with a customer's message on a conversation nobody
//     holds (offered), or when the router takes a conversation back from
//     a rep who left (routing.reassign_after), and ends when a rep takes
//     it: the router's assignment or accepted offer (its waited_ms is the
//     wait), or a person's assignment (event time minus the wait's start).
//     Answered within the queue's service_level_target (default 20s)
//     counts towards the service level.
//   - Abandoned (chat): the conversation was resolved while still
//     waiting for its first rep: the customer left and someone closed it,
//     or it was closed unanswered. Web chat has no "visitor left" signal,
//     so a visitor who closes the tab and is never closed is still
//     waiting. Voice calls abandoned in queue count once calls are routed
//     through the same feed. Overflowed: the overflow action (callback,
//     message) ended the wait.
//   - Service level = answered within target / (answered + abandoned);
//     abandon rate = abandoned / (answered + abandoned); ASA = the
//     answered waits' mean.
//   - First response: a contact's start to a rep's first message_out.
//     Handle time: the first assignment to resolution; resolution time:
//     the contact's start to resolution.
//   - Suppressed ("duplicate contacts avoided"): contact_refused events,
//     the contact policy's denials and deferrals, by channel.
//   - Dialer: a call event by anyone but the customer whose payload has an
//     "outcome" (dialer.Outcome) is an attempt; answered and abandoned are
//     connects. Connect rate = connects / attempts; abandon rate =
//     abandoned / connects. Events without an outcome are not counted.
//   - Rep time, from routing's rep states (routing.Service.OnRepState)
//     and the conversations each rep holds (from the feed): logged in is
//     every state but offline; handling is holding a conversation, on a
//     call, wrap-up or after-call work; break and away as set. Occupancy
//     = handling / (logged in - break); utilisation = handling / logged
//     in. Time is accrued at each change and at every flush.
//
// # State and clusters
//
// Counts go to a Store once a second: BoltStore (<data_dir>/kpi.db) on
// one node, ValkeyStore in a cluster; at start the engine loads today's
// slots, so a restart keeps the day. Every node's consumer sees every
// event, so every node keeps the live view (who waits, reps' states), but
// only the node holding the Valkey lease (Store.Lead) adds its counts to
// the store: nothing is counted twice, and a report read on any node is
// the leader's. When the leader dies, another takes the lease within its
// 5s; what the old leader had not flushed (at most a second) and the
// events of the gap until the lease passes are not counted.
//
// Limits: what the engine follows per conversation (who holds it, since
// when it waits) and per customer (their last contact) is in memory; a
// restart forgets it, so a wait or a hold that spans a restart is not
// counted at its end (an answer still is: its wait is in the event) and
// repeats are counted from the restart on. Days are UTC days.
//
// Concurrency: New, then Start once, then Close once; Report, Snapshot,
// RepState and the HTTP route are safe for concurrent use after New.
package kpi
