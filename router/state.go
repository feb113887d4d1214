package router

import (
	"context"
	"errors"
)

// Errors a State returns.
var (
	// ErrCapacity: the claim would fill the rep past its capacity.
	ErrCapacity = errors.New("router: rep has no free capacity")
	// ErrTaken: the conversation is not waiting in that queue any more (a
	// claim by another node won), or is already claimed, or is held by
	// another gateway node that is alive.
	ErrTaken = errors.New("router: task already taken")
	// ErrDuplicate: the conversation is already waiting or claimed.
	ErrDuplicate = errors.New("router: task already queued or claimed")
)

// Claim asks a State to give a waiting conversation to a rep.
type Claim struct {
	Queue          string
	ConversationID string
	RepID          string
	// Units is the cost of the task; Limit the rep's capacity.
	Units int
	Limit int
}

// State is the assignment state that must be atomic across gateway nodes:
// which conversations wait in which queue and how much of each rep's
// capacity is claimed, by which conversation, and the presence each rep
// set. The Router makes its choices from its own copy and then claims
// here; with one process the claim cannot fail, with several (a Valkey
// State, one Lua script per method) a claim that lost a race fails and the
// router chooses again, and Router.Sync brings the copy up to date.
//
// Implementations: MemoryState (one process) and ValkeyState (a cluster).
// Every method is safe for concurrent use.
type State interface {
	// Push records conv as waiting in queue; ErrDuplicate if it is already
	// waiting anywhere or claimed (a ValkeyState node takes over instead
	// what a dead node held; see ValkeyState).
	Push(ctx context.Context, queue, conv string) error
	// Claim takes c.ConversationID out of c.Queue and adds c.Units to the
	// rep's claimed units, atomically: ErrTaken if the conversation is not
	// waiting in that queue, ErrCapacity if the rep's claimed units plus
	// c.Units would pass c.Limit. On error nothing changed.
	Claim(ctx context.Context, c Claim) error
	// Unclaim frees the capacity conv holds; with requeue non-empty conv
	// waits in that queue again (a declined offer), else it is forgotten,
	// waiting entry and all. Unclaiming a conversation that holds nothing
	// is not an error.
	Unclaim(ctx context.Context, conv, requeue string) error
	// Drop removes conv from queue (abandoned, overflowed or moved); not an
	// error if it was not there.
	Drop(ctx context.Context, queue, conv string) error
	// Used returns the units claimed on rep.
	Used(ctx context.Context, rep string) (int, error)

	// Adopt records conv as claimed by c.RepID for c.Units whatever the
	// rep's load (c.Limit is not checked): the assignment was made already,
	// by a person, before a restart or by a node that died. It replaces
	// conv's waiting entry or earlier claim. ErrTaken if another live
	// gateway node holds conv.
	Adopt(ctx context.Context, c Claim) error
	// Holds reports whether conv is claimed for rep, by this node: the
	// check before recording an assignment, so a node that lost its claim
	// (its lease lapsed and another node took the conversation over)
	// records nothing.
	Holds(ctx context.Context, conv, rep string) (bool, error)
	// Loads returns the units claimed on every rep that has any.
	Loads(ctx context.Context) (map[string]int, error)
	// SetPresence records the presence a rep set, for every node.
	SetPresence(ctx context.Context, rep string, p Presence) error
	// Presences returns the presence every rep set; a rep missing from it
	// never set one (offline).
	Presences(ctx context.Context) (map[string]Presence, error)
}
