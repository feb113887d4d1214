// Package callsim simulates a predictive-dialing campaign in virtual
// time: reps, and calls to customers who answer, are machines, are busy
// or never answer, run against the real pacers of package pacing.
// A run is deterministic for its seed.
//
// Decision cadence (what the campaign runner must match for the
// simulation to measure it): the pacer's Decide runs once a second of
// campaign time, after the events of that instant, and the calls it asks
// for are placed at once. Observations are given to the pacer as the
// events happen, in time order.
package callsim
