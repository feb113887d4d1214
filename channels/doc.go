// Package channels is the boundary between Omnigate and the networks that
// reach customers: the web chat widget, WeChat official accounts, SMS and
// voice. Each network gets a sub-package (webchat, wechat, sms, voice) whose
// Adapter turns a timeline message into that network's wire format and back.
//
// This package holds only what every adapter shares: the outbound Adapter
// interface, the Outbound/Receipt values that cross it, and the Registry the
// gateway fills at start-up.
//
// What it must not do: know about routing, reps or HTTP handlers. Adapters
// never import the router; cmd/gateway wires them together. An adapter does
// not write to the timeline either: the caller records a message_out before
// sending and a delivery_status after, so the record is the same whichever
// adapter carried the message.
//
// Concurrency: a Registry is filled once, by NewRegistry, and is read-only
// afterwards, so Get is safe from any goroutine without locks. Adapters must
// make Send safe for concurrent use.
package channels
