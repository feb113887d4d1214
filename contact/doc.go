// Package contact is the contact policy: the one gate every outbound
// contact passes (a rep's reply, an integrator's notice, a campaign call),
// so that no customer is contacted twice for the same thing, too often, at
// night, or against their wishes.
//
// Policy answers allow, deny or defer-until-T with every reason at once
// (Evaluate), and implements channels.Policy for the Sender (Check). Its
// rules come from the `contact_policy:` YAML section (Config): per
// purpose (service, sales, collections, notice, or configured words) with
// per-campaign overrides. The static rules (do-not-contact, consent,
// quiet hours and holidays in the customer's local time, open work, the
// gap after a resolved conversation) read the sessions store and the
// Suppressions; the counting rules (frequency caps across channels,
// duplicate topic, abandoned-call lockout) are one Ledger.Claim, so
// checking and recording an allowed contact are one atomic step, across
// gateway processes when the ledger is Valkey's.
//
// Recorder (recorder.go) fills the ledger with what the policy does not
// see: every inbound touch from the store's change feed, and customer
// merges (Ledger.Merge).
//
// Local time (localtime.go) is the profile's zone, else the zones of the
// customer's phone number (libphonenumber's map), else the default zone;
// every instant is built with time.Date in the zone, so DST changes move
// no window.
//
// It must not import internal/ or router/: channels and the dialer use it,
// and only cmd/gateway wires it. A Policy is safe for concurrent use; it
// holds no state of its own besides a cache of loaded time zones.
package contact
