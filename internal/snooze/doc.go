// Package snooze opens pending conversations again when their snooze
// ends: a rep sets a conversation pending until a time (POST
// /v1/conversations/{id}/pending, snooze_until on the status_change
// event's payload), and at that time the Waker sets it open, recording
// why (reason snooze_ended). A customer's message into a snoozed
// conversation opens it at once (reason customer_replied).
//
// The schedule is in memory, built from the store: at start from every
// pending conversation's latest status change, then from the change feed
// (a sessions.Consumer), so a restart forgets nothing and nothing is kept
// twice. Time comes from Options.Now and wakes are made by WakeDue, so a
// test moves the clock and calls WakeDue instead of waiting.
//
// In a cluster every node runs a Waker over the shared feed. A wake reads
// the conversation first and opens only one still pending; two nodes
// waking within the same instant can both record the reopen (the state
// is the same, open, with two status_change events). A per-wake lock in
// Valkey would make it one; the duplicate was judged harmless for now.
//
// What it must not do: reopen what a person changed since the snooze
// (any later status change unschedules it), or block the feed (a wake is
// one read and one write).
//
// Concurrency: the feed's one worker and the timer goroutine share the
// schedule under Waker.mu; store calls are made without it.
package snooze
