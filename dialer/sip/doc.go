// Package sip is the dialer's SIP trunk: one SIP user agent per process
// (sipgo transport, server and client on one address) that places the
// dialer's calls through configured trunks and bridges answered customers
// to reps' phones. It is a back-to-back user agent: the customer's leg
// and the rep's leg are both its own dialogs, and the RTP between them
// passes through its relay, so it sees every state change of a call.
//
// Use: cfg from LoadConfig (or Config.Prepare after decoding the
// gateway's file), ua := NewUA(cfg, log), tr := ua.Trunk(name) is the
// dialer.Trunk; ua.Close() on shutdown hangs up every call.
//
// Outbound: Dial sends the INVITE (Call-ID: the attempt id, SDP
// offering G.711), answers digest challenges, CANCELs at the ring
// timeout, and maps the final response to an outcome in one table
// (outcome.go). Bridge INVITEs the rep with the customer's codec and
// relays RTP untouched; Abandon plays a WAV message or bridges to a
// destination; BYE from either side ends both legs and the call's last
// Progress says who hung up.
//
// Inbound: INVITEs are screened (403 unknown source, 503 over the
// trunk's limits, 400/488 malformed, 482 for a second INVITE of a call
// being set up) and handed to the InboundHandler set with HandleInbound
// (480 without one). The handler gets an InboundCall: the caller's number
// (verified when a trusted trunk asserted it), Ring, Connect(rep, ring
// time) that answers the caller only once a rep answered (ErrNoAnswer:
// try the next rep), Gone when the caller hangs up while queued.
//
// It must not: know campaigns, reps' availability or customers (the
// dialer, channels/voice and the routing service decide; this package
// only carries calls), transcode, or keep anything after a call ends.
//
// Concurrency: each call has one goroutine (run; for an inbound call the
// INVITE's own, which also runs the handler) that owns its customer
// INVITE and writes its Progress; the relay has one reader goroutine per
// socket. Bridge, Abandon and Hangup may be called from any goroutine.
// Lock order: UA.mu before call.mu.
package sip
