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
	// claim by another node won), or is already claimed.
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
// capacity is claimed, by which conversation. The Router makes its choices
// from its own copy and then claims here; with one process the claim
// cannot fail, with several (a Valkey State, one Lua script per method) a
// claim that lost a race fails and the router chooses again.
//
// Implementations: MemoryState. Every method is safe for concurrent use.
type State interface {
	// Push records conv as waiting in queue; ErrDuplicate if it is already
	// waiting anywhere or claimed.
	Push(ctx context.Context, queue, conv string) error
	// Claim takes c.ConversationID out of c.Queue and adds c.Units to the
	// rep's claimed units, atomically: ErrTaken if the conversation is not
	// waiting in that queue, ErrCapacity if the rep's claimed units plus
	// c.Units would pass c.Limit. On error nothing changed.
	Claim(ctx context.Context, c Claim) error
	// Unclaim frees the capacity conv holds; with requeue non-empty conv
	// waits in that queue again (a declined offer). Unclaiming a
	// conversation that holds nothing is not an error.
	Unclaim(ctx context.Context, conv, requeue string) error
	// Drop removes conv from queue (abandoned, overflowed or moved); not an
	// error if it was not there.
	Drop(ctx context.Context, queue, conv string) error
	// Used returns the units claimed on rep.
	Used(ctx context.Context, rep string) (int, error)
}
