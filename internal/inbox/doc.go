// Package inbox is the reps' live connection: the WebSocket the inbox web
// app (widget/inbox) keeps open at /inbox/ws. Everything a rep does goes
// through the REST API (package api); this socket only pushes what
// changed, so the app never has to poll:
//
//   - the timeline events of the conversations the rep may see and has
//     open (feed.go): their own and those offered to them, the customer
//     they watch, and, for supervisors and admins who ask (the events
//     view), every event, on any node (the store's change feed);
//   - the conversation, freshly read, after each assignment, transfer or
//     status change of those;
//   - list views (unassigned; all for supervisors) as conversations
//     frames coalesced per Config.ListFlushInterval, one frame per view
//     marshalled once for every socket following it, so a burst of new
//     conversations costs each socket a frame per interval, not one per
//     event;
//   - typing indicators of the customer the rep is looking at, and the
//     rep's own typing the other way, to the visitor's widget
//     (webchat.Typing);
//   - presence: a rep is online while at least one inbox socket of theirs
//     is open (Options.OnPresence, for the router).
//
// Every frame a socket of role rep gets has every phone-like sequence in
// it masked (redact.JSON), whatever field it is in (a topic, a name, a
// message's text, an integrator's data), exactly as the API masks its
// answers; conn.write is the one place frames leave, so a new frame or
// field cannot forget it.
//
// The frames and close codes are documented in docs/inbox-protocol.md;
// the close codes are in closecodes.go, split into "reconnect"
// (4000-4499) and "don't reconnect" (4500-4999) as in package webchat.
// The rep authenticates with the same bearer token the API takes, in the
// first frame or the Sec-WebSocket-Protocol header, never in the URL,
// which proxies and access logs keep.
//
// The timeline, not this socket, is the source of truth. A socket that
// cannot keep up is closed with CloseSlow rather than fed a gap; so is
// every socket when the hub's own subscription falls behind. The client
// then reconnects, reloads its conversation list and reads what it missed
// from GET /v1/customers/{id}/timeline?after=<last seq>. Events may arrive
// twice around a reconnect (once live, once from the REST reload):
// clients drop an event whose seq they already have.
//
// What it must not do: write to the store (replies, notes and assignments
// are API calls, with the API's checks), show a rep what the API would not
// (the one masking decision is maskFor), or block the change feed on a
// slow socket.
//
// Concurrency: the hub follows the store's change feed with a
// sessions.Consumer (one worker, which resubscribes on its own; after a
// gap the hub closes the sockets open across it; it alone touches
// Hub.convs) and hands each event to the sockets it concerns without
// blocking (melody queues it; a full queue closes the socket as slow);
// flushLoop sends the list views. Hub.conns holds every socket with its
// principal, for frames meant for supervisors only. Per socket, melody's reader
// goroutine applies the rep's frames in order and its writer goroutine
// writes. Locks: Hub.presenceMu is taken before Hub.mu; the typing
// pub/sub's own lock is held while it calls the hub, which then takes
// Hub.mu, so Hub.mu is never held while publishing typing. melody's
// per-session locks nest inside Hub.mu.
package inbox
