package routing

import (
	"fmt"
	"slices"
	"time"
)

// Config is how the service runs the router: the "routing" section of the
// gateway's YAML beside router.Config (queues, rings, costs), which the
// router owns. Every zero value means the default named on the field.
type Config struct {
	// PresenceGrace is how long a rep whose last inbox socket closed keeps
	// their presence before being set away, so a reload or a network blip
	// is not leaving. Zero means 30s.
	PresenceGrace time.Duration `yaml:"presence_grace"`
	// ReconcileInterval is how often each node looks for open, unassigned
	// conversations that no node is routing (an event missed, a node that
	// died) and routes them. Zero means 10s.
	ReconcileInterval time.Duration `yaml:"reconcile_interval"`
	// ReconcileAfter is how long a conversation must have been unchanged
	// before that scan routes it, so the scan does not race the change
	// feed. Zero means 5s.
	ReconcileAfter time.Duration `yaml:"reconcile_after"`
	// SyncInterval is how often, in a cluster, each node renews its lease
	// and reads the presence and load that other nodes changed. Zero means
	// 1s. Ignored on a single node.
	SyncInterval time.Duration `yaml:"sync_interval"`
	// NodeLease is how long, in a cluster, the tasks and reservations a
	// node holds stay its own after its last renewal; then the other
	// nodes take them over. Zero means 10s; it must be at least three sync
	// intervals.
	NodeLease time.Duration `yaml:"node_lease"`
	// ReassignAfter is how long an open conversation stays with an
	// assignee who went away or offline (a closed laptop, a break) before
	// it is taken back and routed to another rep, so a customer is not left
	// with a rep who is gone. Zero means 2m.
	ReassignAfter time.Duration `yaml:"reassign_after"`
	// OwnerOnResolve makes the rep who resolves a conversation the owner
	// (dedicated advisor) of a customer who has none. False (the zero
	// value) leaves owners to supervisors and admins.
	OwnerOnResolve bool `yaml:"owner_on_resolve"`
	// BreakReasons are the codes a rep on break must give (the inbox
	// offers them, GET /v1/break-reasons lists them); empty means
	// DefaultBreakReasons: lunch, training, meeting, personal.
	BreakReasons []BreakReason `yaml:"break_reasons"`
}

// Defaults of the fields whose zero value means one.
const (
	DefaultPresenceGrace     = 30 * time.Second
	DefaultReconcileInterval = 10 * time.Second
	DefaultReconcileAfter    = 5 * time.Second
	DefaultSyncInterval      = time.Second
	DefaultNodeLease         = 10 * time.Second
	DefaultReassignAfter     = 2 * time.Minute
)

// WithDefaults returns c with every zero duration set to its default.
func (c Config) WithDefaults() Config {
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.PresenceGrace, DefaultPresenceGrace}, {&c.ReconcileInterval, DefaultReconcileInterval},
		{&c.ReconcileAfter, DefaultReconcileAfter}, {&c.SyncInterval, DefaultSyncInterval},
		{&c.NodeLease, DefaultNodeLease}, {&c.ReassignAfter, DefaultReassignAfter},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if len(c.BreakReasons) == 0 {
		c.BreakReasons = DefaultBreakReasons
	}
	c.BreakReasons = slices.Clone(c.BreakReasons)
	for i, b := range c.BreakReasons {
		if b.Label == "" {
			c.BreakReasons[i].Label = b.Code
		}
	}
	return c
}

// Validate reports every problem, each naming its YAML key.
func (c Config) Validate() []error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"presence_grace", c.PresenceGrace}, {"reconcile_interval", c.ReconcileInterval},
		{"reconcile_after", c.ReconcileAfter}, {"sync_interval", c.SyncInterval}, {"node_lease", c.NodeLease},
		{"reassign_after", c.ReassignAfter},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("routing.%s: %v is negative", d.name, d.v))
		}
	}
	codes := map[string]bool{}
	for i, b := range c.BreakReasons {
		if b.Code == "" || codes[b.Code] {
			errs = append(errs, fmt.Errorf("routing.break_reasons[%d]: code %q is empty or appears twice", i, b.Code))
		}
		codes[b.Code] = true
	}
	c = c.WithDefaults()
	if c.NodeLease < 3*c.SyncInterval {
		errs = append(errs, fmt.Errorf("routing.node_lease: %v is shorter than three sync intervals (%v)", c.NodeLease, 3*c.SyncInterval))
	}
	return errs
}
