// Package pacing decides how many calls a campaign places at each moment:
// preview (the rep dials), progressive (one line per free rep), fixed
// ratios, a VICIdial-style adaptive dial level, and predictive pacing
// that models when reps free up and how many ringing calls will be
// answered, and keeps abandonment under a target.
//
// A Pacer is pure: it sees a Snapshot and Observations and answers a
// number. The dialer and the simulator (cmd/dialsim) run the same
// pacers, so the simulation measures the code that dials. Time comes only
// from the Snapshot: no clocks, no goroutines.
package pacing
