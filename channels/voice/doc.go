// Package voice is the voice channel's inbound side: calls the SIP user
// agent (dialer/sip) accepted from a trunk are put on the customer's one
// timeline and handed to the routing service like any other contact, and
// the reps the router chooses are rung on their sip_uri until one
// answers, the caller leaves, or the call overflows.
//
// One call, in order (Adapter.Handle is the UA's InboundHandler):
//
//   - The caller's number (sip.InboundCall.From) is normalised to E.164
//     and resolved to a customer as a phone identity: verified when a
//     trusted trunk asserted it (P-Asserted-Identity), else recorded
//     unverified (never evidence for a merge). A caller with no usable
//     number is refused (480) and nothing is stored.
//   - Store.Intake appends a call event (author "customer", step
//     "incoming", external id "call:<Call-ID>") to the customer's
//     general conversation (topic ""), opening one on voice when none is
//     active: the call joins the open conversation like a message would
//     (a pending one, waiting on the customer, is reopened).
//     The routing service sees it on the feed and routes the conversation
//     on the voice queue: owner first, VIP and tier, skills, longest idle.
//   - The adapter follows the customer's timeline (sessions.Follow) for
//     the router's decisions on that conversation. An offer to rep R
//     rings R's phone until the offer expires (the voice queue's
//     offer.accept_timeout is the ring time); R answering answers the
//     caller, bridges the two and appends R's acceptance, so the router
//     assigns the conversation to R. R not answering lets the offer
//     expire: the router counts the miss (offer.max_misses in a row set R
//     away) and offers the next rep. A direct assignment (a queue without
//     offers) or a conversation already assigned (sticky) rings that rep
//     for Config.RingTime; not answered, the call overflows.
//   - While nobody answers, the caller hears ringback, or Config.Hold on a
//     loop. After Config.MaxWait, or on the router's overflow decision,
//     the call overflows: bridged to Config.Voicemail when set, else the
//     caller is told unavailable (480) and a callback is requested
//     (Options.Callback: the gateway's channels.Sender.Reach on voice,
//     which records a callback_requested event the router routes to a
//     rep).
//   - A caller who hangs up before a rep answered is an abandoned inbound
//     call. Every step is a call event (CallEvent: numbers masked, SIP
//     code, ring, queue and talk time, rep, outcome, who hung up) in the
//     conversation; the router's offers and assignment sit between them.
//
// Wrap-up: the call's router task holds the rep (a call costs the whole
// capacity) until the conversation is resolved or transferred; the
// router's wrap_up for voice then runs before the rep gets new work.
//
// Limits: a call into a conversation the router already holds as a
// waiting chat is put to whoever that task is offered to, as a chat; an
// assignee (sticky) who does not answer sends the call to overflow
// rather than to the next rep; a rep who answers just as their offer
// expires is bridged while the router offers the conversation on (the
// acceptance comes too late); calls are followed on the node that took
// them (a gateway that dies drops its calls, as the UA holds them).
//
// What it must not do: import the router or internal/, decide who
// answers (the routing service does), speak SIP (dialer/sip does), or
// show a rep a number unmasked.
//
// Concurrency: Handle runs on the call's own goroutine (the UA's); each
// call has one more goroutine, started by Handle, that records the call's
// end, and one following the timeline while the call waits. Close waits
// for them. An Adapter is safe for concurrent use.
package voice
