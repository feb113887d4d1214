package sessions

import (
	"context"
	"errors"
)

// Watcher delivers one customer's new events; *Fanout is one.
type Watcher interface {
	Watch(ctx context.Context, customerID string) (*Subscription, error)
}

// Follow calls fn with every event of the customer's timeline after the
// given sequence, then with each new one as it is appended, exactly once and
// in order, until ctx ends or fn returns an error.
//
// It subscribes before reading the timeline, so nothing appended in between
// is missed, and skips live events it already delivered from the timeline.
// A live event that arrives ahead of the next expected sequence (pub/sub
// reordering across nodes, a dropped message) is filled in from the
// timeline, and a subscription cut off as slow is renewed: the timeline, not
// the feed, is the source of truth.
func Follow(ctx context.Context, s Store, w Watcher, customerID string, after uint64, fn func(Event) error) error {
	last := after
	catchUp := func(upTo uint64) error {
		for upTo == 0 || last < upTo {
			page, err := s.Timeline(ctx, customerID, last, 1000)
			if err != nil {
				return err
			}
			for _, ev := range page {
				if err := fn(ev); err != nil {
					return err
				}
				last = ev.Seq
			}
			if len(page) < 1000 {
				return nil
			}
		}
		return nil
	}
	for {
		sub, err := w.Watch(ctx, customerID)
		if err != nil {
			return err
		}
		err = func() error {
			defer sub.Close()
			if err := catchUp(0); err != nil {
				return err
			}
			for ev := range sub.Events() {
				if ev.Seq <= last {
					continue
				}
				if ev.Seq > last+1 {
					if err := catchUp(ev.Seq); err != nil {
						return err
					}
					continue
				}
				if err := fn(ev); err != nil {
					return err
				}
				last = ev.Seq
			}
			return sub.Err()
		}()
		if !errors.Is(err, ErrSlow) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}
