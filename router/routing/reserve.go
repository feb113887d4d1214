package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/omnigate/omnigate/router"
)

// reservationPrefix sets reservations apart from conversations in the
// router's State, so a node taking over a dead node's holdings frees a
// reservation instead of routing it like a conversation.
const reservationPrefix = "rsv:"

func isReservation(id string) bool { return strings.HasPrefix(id, reservationPrefix) }

// Reservation asks for a rep for work outside the queues: an outbound
// call the dialer is about to place, a rep's preview dial, an inbound
// call being bridged.
type Reservation struct {
	// ID names the reservation for Release; unique among the caller's
	// (the dialer's attempt id). Required.
	ID string
	// Channel sets the cost (a voice call fills a rep) and the queue.
	// Required.
	Channel string
	// Rep, when set, is the only rep considered (a preview dial by the
	// rep who clicked). Empty means the best rep of the channel's queue.
	Rep string
	// Queue names the queue whose reps and selection policy apply; empty
	// means the channel's.
	Queue string
	// Skills the rep needs, skill to minimum level, on top of the queue's.
	Skills map[string]int
	// CustomerID, when known, is recorded on the decision.
	CustomerID string
}

// Reserve holds a rep now, or fails with router.ErrNoRep (wrapped) and
// holds nothing: a reservation never waits. The rep is held like a
// conversation's assignee (capacity claimed through the State; a voice
// reservation shows them on_call and they are offered nothing else)
// until Release, and in a cluster a reservation held by a node that dies
// is freed when its lease lapses. The decision says who and why.
func (s *Service) Reserve(ctx context.Context, rv Reservation) (router.Decision, error) {
	if rv.ID == "" {
		return router.Decision{}, fmt.Errorf("%w: a reservation needs an id", router.ErrInvalid)
	}
	return s.r.Reserve(ctx, router.Task{ConversationID: reservationPrefix + rv.ID, CustomerID: rv.CustomerID,
		Channel: rv.Channel, Queue: rv.Queue, Skills: rv.Skills, Assignee: rv.Rep})
}

// Release ends a reservation: the rep's capacity is freed, after the
// channel's wrap-up, and the rep gets waiting work. Releasing one that is
// not held (released already, or lapsed with its node) is not an error.
func (s *Service) Release(ctx context.Context, id string) error {
	ds, err := s.r.Release(ctx, reservationPrefix+id)
	if errors.Is(err, router.ErrUnknownTask) {
		return nil
	}
	s.apply(ds)
	return err
}

// Unreserve ends a reservation whose call was never placed (the contact
// policy refused it, the trunk was busy): the rep is free at once, with
// no wrap-up. Like Release, one not held is not an error.
func (s *Service) Unreserve(ctx context.Context, id string) error {
	ds, err := s.r.Unreserve(ctx, reservationPrefix+id)
	if errors.Is(err, router.ErrUnknownTask) {
		return nil
	}
	s.apply(ds)
	return err
}
