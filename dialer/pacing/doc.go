// Package pacing decides how many calls a campaign places at each moment:
// preview (the rep dials), progressive (one line per free rep), fixed
// ratios, a VICIdial-style adaptive dial level, and predictive pacing
// that models when reps free up and how many ringing calls will be
// answered, and keeps abandonment under a target.
//
// A Pacer is pure: it sees a Snapshot and Observations and answers a
// number. The dialer and the simulator (cmd/dialsim) run the same
// pacers, so the simulation measures the code that dials. Time comes only
// from the Snapshot and the Observations: no clocks, no goroutines.
//
// What the campaign runner does, as the simulator (dialer/callsim) does:
// it asks Decide once a second and places the calls at once; it reports
// every step as it happens, in time order (ObserveAnswered with the ring
// time for a person, ObserveMachine and ObserveUnanswered with the ring
// time, ObserveAbandoned after the ObserveAnswered of the same call,
// ObserveTalk and ObserveWrap with their lengths). A call answered by a
// person and not yet with a rep is Waiting, not Ringing. A pacer belongs
// to one campaign run and one goroutine, and keeps no Snapshot slice.
package pacing
