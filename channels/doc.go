// Package channels is the boundary between Omnigate and the networks that
// reach customers: the web chat widget, WeChat official accounts, SMS and
// voice. Each network gets a sub-package (webchat, wechat, sms, voice) whose
// Adapter turns a timeline message into that network's wire format and back.
//
// This package holds what every adapter shares (the Adapter interface, the
// Outbound/Receipt values that cross it, the Registry the gateway fills at
// start-up) and the one outbound path, the Sender: every message to a
// customer (a rep's reply, an integrator's notice, later the dialer's)
// goes through Sender.Send, which chooses the channel by one rule
// (ReplyChannel), asks the contact Policy, records the message_out, sends
// through the adapter and records a delivery_status. Refusals are typed:
// *RefusedError (the Policy said deny or defer) and *SendError (a channel
// did not take the message; Reason says why, Event whether it was
// recorded), so callers map them without knowing any adapter.
//
// Best-channel contact (Sender.Reach, reach.go) sits on top of Send: it
// picks the channel the customer can receive on now (an open widget, an
// open WeChat window, a verified phone for SMS, else a callback for the
// voice queue), records the choice with every skipped channel's reason as
// a channel_choice event, and sends through Send.
//
// What it must not do: know about routing, reps or HTTP handlers, or
// import internal/. Adapters never import the router; cmd/gateway wires
// them together. An adapter does not write to the timeline: the Sender
// does, so the record is the same whichever adapter carried the message.
//
// Concurrency: a Registry is filled once, by NewRegistry, and is read-only
// afterwards, so Get is safe from any goroutine without locks. Adapters must
// make Send and CanSend safe for concurrent use. A Sender is immutable after
// NewSender; two Sends with one client id record and send the message once,
// because the store's append is idempotent by external id.
package channels
