// Package webchat is the web chat channel: the WebSocket endpoint the
// embeddable widget (package widget) talks to, and the channels.Adapter the
// gateway sends rep replies through.
//
// A visitor's socket is mounted by the gateway at /channels/webchat/ws. The
// protocol, JSON text frames, is documented in docs/webchat-protocol.md;
// the close codes are in closecodes.go, split into "reconnect" (4000-4499)
// and "don't reconnect" (4500-4999). In short: the client says hello with
// the last sequence it saw, the server answers welcome and then sends every
// visible timeline event after that sequence, exactly once and in order
// (the timeline, then the node's sessions.Fanout), followed by live events; each visitor message carries a
// client id that becomes the event's external id, so a resend after a
// reconnect is acknowledged with the first event's sequence, not appended
// again.
//
// Credentials (the visitor id, and a signed user) come in the hello frame,
// not the socket URL that proxies and access logs keep; the URL form is
// still accepted, deprecated. A signature is HMAC-SHA256 under the site's
// secret of "user_id|expires" (Sign), refused once expires is past; the
// deprecated unexpiring form over the user id alone (SignForever) is
// accepted unless the site sets RequireUserExpires.
//
// Identity: the visitor id (random, kept in the browser) is an unverified
// visitor identity namespaced by site. A signed user id is a verified
// site-user identity: the socket speaks for the site user's customer, and
// the visitor id is linked to it, or the visitor's own customer is merged
// into it. So a visitor id that has signed in belongs to a signed-in
// user's customer, and the visitor id alone must not open it: a socket
// without a valid signature never speaks for a customer with a verified
// site user (of any site). Its visitor id's customer is used while it has
// none; otherwise the socket speaks for the visitor id's unsigned twin
// (the visitor identity "VID.unsigned"), which signed sockets never link
// or merge, so what is written signed out stays apart from the signed
// user. If a rep merged the twin into a signed-in user as well, the socket
// is refused (CloseIdentityRefused) and the widget starts over with a new
// visitor id. Contacts typed into the offline form are recorded
// unverified and never merge anyone.
//
// Customers are made lazily: hello only looks the visitor up, and an
// anonymous visitor's customer is made by its first message or offline
// form (the ack names it), so sockets that only connect store nothing.
// New visitors are rate-limited per client address (Site.NewVisitors*,
// Config.TrustedProxies for the address behind a proxy).
//
// What it must not do: route, know reps beyond a display name, or show a
// visitor anything a rep alone may see (notes, rep ids, identities,
// integrator events, other channels' messages): visibleEvent is the one
// filter, and it allows by kind, not by exception. Replies are not written
// here: the API appends the message_out, and Send only confirms the
// customer can be reached.
//
// Typing indicators go through a Typing: MemoryTyping on one node,
// ValkeyTyping (one pub/sub channel every node subscribes to) in a cluster.
//
// Concurrency: per socket, one reader goroutine applies frames in order
// (each on a short-lived goroutine it waits for: see onFreshStack) and one
// writer goroutine writes (both melody's, started off net/http's goroutine
// by channels/wsconn); live timeline events (from
// the Fanout's dispatch goroutine), typing and availability hand frames to
// the writer without blocking, and a short-lived catch-up goroutine runs
// only while a socket is behind (after hello, a gap, a full buffer). A client that
// does not read is closed with CloseSlow, never fed a gap. Adapter methods
// are safe for concurrent use. Sockets follow the store's change feed, so
// any node serves any visitor. Locks: site.availMu and MemoryTyping.mu are
// each held while frames are queued (melody's locks nest inside them) and
// are never held together; limiter.mu is a leaf. A socket's customerID is
// written by its reader (in hello, or by the first message of a new
// visitor) before the goroutines that read it (follower, catch-up) start.
package webchat
