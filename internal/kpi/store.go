package kpi

import (
	"context"
	"errors"
)

// ErrClosed is a store's answer after Close.
var ErrClosed = errors.New("kpi: store closed")

// Store keeps the counts of every slot, so a restart does not reset the
// day. MemoryStore, BoltStore (one node: <data_dir>/kpi.db) and
// ValkeyStore (a cluster) implement it; one conformance suite runs
// against each.
type Store interface {
	// Add adds each slot's counts to what the store holds.
	Add(ctx context.Context, deltas map[int64]Counts) error
	// Load returns the counts of the slots starting in [from, to) (Unix
	// seconds); slots with nothing counted are absent.
	Load(ctx context.Context, from, to int64) (map[int64]Counts, error)
	// Lead reports whether this node is the one that counts. Every node
	// sees every event of the feed; only the leader adds what it counted,
	// so nothing is counted twice. One node's stores always lead; Valkey's
	// leader holds a lease it renews on each call.
	Lead(ctx context.Context) (bool, error)
	Close() error
}
