// Package sms is the SMS channel: provider webhooks in (customer messages
// and delivery reports) and the channels.Adapter that texts customers.
//
// Providers sit side by side behind the Provider interface: a
// Twilio-compatible one (provider_twilio.go: form webhooks checked with
// X-Twilio-Signature, the Messages API at a configurable base URL, status
// callbacks) and a generic JSON one for other gateways (provider_json.go:
// JSON both ways, signed both ways with Standard Webhooks). The gateway
// mounts Adapter at POST /channels/sms/{provider}.
//
// Inbound, in order: authenticate (signature, and freshness for Standard
// Webhooks), normalise the sender to E.164 (sessions.NormalizePhone, with
// Config.DefaultRegion for national numbers; a sender that is not a real
// number is refused with 400 invalid), resolve the customer by that
// number as a verified phone identity (the message proves it), then append
// a message_in whose external id is "<provider>:<provider message id>", so
// a provider's retry is acknowledged and not appended twice. Ordinary
// messages join the customer's general conversation (topic ""), opened on
// sms when none is active. A message that is exactly an opt-out keyword
// (STOP, UNSUBSCRIBE, 退订, TD; any case, trimmed) puts the number on the
// contact policy's do-not-contact list (contact.Suppressions: Kind phone,
// Channel sms, Source sms_stop; optout.go) and is confirmed once; START
// takes it off. Keyword messages are recorded but open no conversation.
//
// Delivery reports become delivery_status events (DeliveryStatus payload),
// one per message and state. Omnigate's reference (event id, conversation
// id, segment count) travels with each outbound message (Twilio: in the
// StatusCallback URL, which Twilio signs; JSON: in "ref") and comes back
// with the reports.
//
// Outbound, Send refuses a listed number with ErrOptedOut before any
// provider is called, and lists a number the provider reports unsubscribed
// (Twilio error 21610). Segments (GSM-7 or UCS-2, Count) are computed for
// every message and recorded in the payloads this package writes.
//
// Known edge: the conversation is opened before the message is appended (as
// webchat does), so a provider retry that arrives after the conversation
// it first landed in was resolved opens a new conversation while the
// message itself is not appended again.
//
// What it must not do: route, write a rep's message_out (the API records it
// before calling Send), or log or return a phone number unmasked.
//
// Concurrency: an Adapter is immutable after New; ServeHTTP and Send are
// safe for concurrent use. Providers share one http.Client.
package sms
