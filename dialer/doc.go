// Package dialer runs outbound calling campaigns: who to call (a list, a
// segment or a CSV), when (schedule windows, the contact policy at the
// moment of dialing), how fast (pacing: preview, progressive, predictive,
// in package pacing), and what happened (attempts with ids and states that
// survive a restart, every one on the customer's timeline).
//
// Calls go out through a Trunk. The SIP trunk (the voice issue) and the
// simulated trunk used by tests and the demo implement it; the dialer
// knows nothing of SIP. A call the customer answers is bridged to a rep
// the routing service reserved (Reserve/Release); an answered call no
// rep can take within the campaign's connect limit is abandoned: the
// customer hears the campaign's recorded message, the abandonment counts
// against the campaign's cap, and the contact policy's lockout applies.
package dialer
