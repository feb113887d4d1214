package contact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// Recorder keeps the ledger's side of what happens outside the policy: it
// follows the store's change feed and records every inbound touch (a
// customer's message on any channel, a call the customer made) as
// Direction in, purpose service, and applies every customer merge to the
// ledger (Ledger.Merge), so a merged customer's touches count for the one
// kept. Outbound touches are not its business: the Policy records them
// when it allows them.
//
// A touch's id is the event's id, so recording is idempotent: gateways of
// a cluster each run a Recorder on the one Valkey ledger, and the second
// record of an event is a no-op, as is a merge applied twice.
//
// Events copied onto a customer's timeline by a merge (Event.Origin) are
// skipped: Ledger.Merge carries the original's touch under its own id.
// Touches in a gap of the feed (OnGap: the subscription was lost) are not
// caught up; they are inbound touches, which no limit counts, and the
// gap is logged.
type Recorder struct {
	led  Ledger
	log  *slog.Logger
	feed *sessions.Consumer
}

// recordAttempts bounds how often a failed ledger write is tried for one
// event before it is logged and given up (the consumer holds the
// customer's later events meanwhile).
const recordAttempts = 3

// NewRecorder starts following store's feed until ctx ends or Close is
// called. log nil discards.
func NewRecorder(ctx context.Context, store sessions.Store, led Ledger, log *slog.Logger) (*Recorder, error) {
	if store == nil || led == nil {
		return nil, errors.New("contact: the recorder needs a store and a ledger")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{led: led, log: log}
	feed, err := sessions.NewConsumer(ctx, store, sessions.ConsumerOptions{
		Handle: r.handle, Logger: log,
		OnGap: func(_ context.Context, cause error) {
			log.Warn("contact: change feed lost; inbound touches in the gap are not on the ledger", slog.Any("cause", cause))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("contact: recorder: %w", err)
	}
	r.feed = feed
	return r, nil
}

// WaitHandled blocks until the customer's events up to seq were handled
// (sessions.Consumer.WaitHandled): a test's watermark.
func (r *Recorder) WaitHandled(ctx context.Context, customerID string, seq uint64) error {
	return r.feed.WaitHandled(ctx, customerID, seq)
}

// Close stops following the feed and waits for the handler in flight.
func (r *Recorder) Close() { r.feed.Close() }

// inboundTouch is the ledger's touch for ev, ok false when ev is not a
// customer's inbound contact (or is a merge's copy of one).
func inboundTouch(ev sessions.Event) (Touch, bool) {
	inbound := ev.Kind == sessions.KindMessageIn ||
		ev.Kind == sessions.KindCall && ev.Author == "customer"
	if !inbound || ev.Origin != "" {
		return Touch{}, false
	}
	return Touch{ID: ev.ID, CustomerID: ev.CustomerID, Channel: ev.Channel, Direction: Inbound,
		Purpose: PurposeService, At: ev.Time}, true
}

func (r *Recorder) handle(ctx context.Context, ev sessions.Event) {
	var what string
	var write func() error
	if t, ok := inboundTouch(ev); ok {
		what = "recording an inbound touch"
		write = func() error { return r.led.Record(ctx, t) }
	} else if ev.Kind == sessions.KindMerged && ev.Origin == "" {
		var m sessions.Merge
		if err := json.Unmarshal(ev.Payload, &m); err != nil || m.Into == "" || m.From == "" {
			r.log.Warn("contact: a customers_merged event without from and into", slog.String("event_id", ev.ID))
			return
		}
		what = "merging ledgers"
		write = func() error { return r.led.Merge(ctx, m.Into, m.From) }
	} else {
		return
	}
	var err error
	for attempt := range recordAttempts {
		if err = write(); err == nil || ctx.Err() != nil {
			break
		}
		if attempt < recordAttempts-1 {
			t := time.NewTimer(time.Duration(attempt+1) * 100 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	if err != nil {
		r.log.Warn("contact: "+what+" failed", slog.String("customer_id", ev.CustomerID),
			slog.String("event_id", ev.ID), slog.Any("error", err))
	}
}
