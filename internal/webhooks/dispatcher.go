package webhooks

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// dispatcher turns timeline events into deliveries. See the package doc
// for the design and its guarantees; in short, the timeline is the source
// of truth and the feed only says where to look: each customer has a
// durable cursor (the last sequence handled) that moves in the same outbox
// write as the deliveries it covers, and anything the feed skipped is read
// back from the timeline.
type dispatcher struct {
	store sessions.Store
	ob    Outbox
	log   *slog.Logger
	now   func() time.Time
	kick  func() // wakes the sender
	m     *metrics

	// mu serialises advancing cursors: live batches and recovery never
	// handle one customer at once.
	mu sync.Mutex
	// retry holds customers whose enqueue failed, for the next recovery.
	retryMu sync.Mutex
	retry   map[string]bool

	recMu      sync.Mutex
	recRunning bool
	recAgain   bool
	recWG      sync.WaitGroup
}

// recoveryMargin widens the "conversations created since the checkpoint"
// scan for clock skew between nodes and appends in flight at the
// checkpoint.
const recoveryMargin = 5 * time.Minute

// handle is the feed consumer's HandleBatch: live events, in one outbox
// write. A failed write leaves the cursors where they were and asks a
// recovery pass to read the batch's customers back from their timelines.
func (d *dispatcher) handle(ctx context.Context, batch []sessions.Event) {
	if err := d.advance(ctx, batch); err != nil && ctx.Err() == nil {
		d.log.Error("webhooks: enqueueing deliveries failed; will retry from the timeline", slog.Any("error", err))
		d.retryMu.Lock()
		for _, ev := range batch {
			d.retry[ev.CustomerID] = true
		}
		d.retryMu.Unlock()
		d.requestRecovery(ctx)
	}
}

// gap is the feed consumer's OnGap: subscribed again, so anything
// appended from here on comes live and anything before is in the
// timelines, which a recovery pass reads back.
func (d *dispatcher) gap(ctx context.Context, cause error) {
	d.log.Warn("webhooks: lost the store's feed; recovering from the timelines", slog.Any("error", cause))
	d.requestRecovery(ctx)
}

// advance handles live events: per customer, events that follow the
// cursor directly are used as they are; a gap (or a customer never seen)
// is filled from the timeline. One outbox write for the whole batch.
func (d *dispatcher) advance(ctx context.Context, batch []sessions.Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	eps, err := d.ob.Endpoints(ctx)
	if err != nil || len(eps) == 0 {
		// No endpoint, nothing owed: no outbox write (an fsync per batch,
		// on the disk the store commits to). The cursors stay where they
		// are; once an endpoint exists, the gap is read from the timelines
		// and Wants drops what happened before the endpoint was created.
		return err
	}
	var order []string
	byCustomer := map[string][]sessions.Event{}
	var checkpoint time.Time
	for _, ev := range batch {
		if _, ok := byCustomer[ev.CustomerID]; !ok {
			order = append(order, ev.CustomerID)
		}
		byCustomer[ev.CustomerID] = append(byCustomer[ev.CustomerID], ev)
		if ev.Time.After(checkpoint) {
			checkpoint = ev.Time
		}
	}
	now := d.now()
	var ds []Delivery
	cursors := map[string]uint64{}
	for _, c := range order {
		evs := byCustomer[c]
		cur, known, err := d.ob.Cursor(ctx, c)
		if err != nil {
			return err
		}
		last := evs[len(evs)-1].Seq
		if known && last <= cur {
			continue
		}
		var todo []sessions.Event
		if (known || evs[0].Seq == 1) && evs[0].Seq <= cur+1 && contiguous(evs) {
			for _, ev := range evs {
				if ev.Seq > cur {
					todo = append(todo, ev)
				}
			}
		} else {
			// A gap, or a customer first seen mid-timeline: the timeline
			// has what the feed did not bring.
			if err := d.readTimeline(ctx, c, cur, last, func(page []sessions.Event) error {
				todo = append(todo, page...)
				return nil
			}); err != nil {
				return err
			}
		}
		for _, ev := range todo {
			ds, err = appendDeliveries(ds, eps, ev, now)
			if err != nil {
				return err
			}
		}
		cursors[c] = last
	}
	added, err := d.ob.Enqueue(ctx, ds, cursors, checkpoint)
	if err != nil {
		return err
	}
	d.enqueued(added)
	return nil
}

func (d *dispatcher) enqueued(added int) {
	if added > 0 {
		d.m.enqueued.Add(float64(added))
		d.kick()
	}
}

func contiguous(evs []sessions.Event) bool {
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq != evs[i-1].Seq+1 {
			return false
		}
	}
	return true
}

func appendDeliveries(ds []Delivery, eps []Endpoint, ev sessions.Event, now time.Time) ([]Delivery, error) {
	for _, ep := range eps {
		if !ep.Wants(ev) {
			continue
		}
		dl, err := newDelivery(ep, ev, now)
		if err != nil {
			return ds, err
		}
		ds = append(ds, dl)
	}
	return ds, nil
}

// readTimeline calls fn with the customer's events after `after`, page by
// page, up to and including upTo (0: to the end).
func (d *dispatcher) readTimeline(ctx context.Context, customerID string, after, upTo uint64, fn func([]sessions.Event) error) error {
	for upTo == 0 || after < upTo {
		page, err := d.store.Timeline(ctx, customerID, after, 1000)
		if err != nil {
			return err
		}
		for i, ev := range page {
			if upTo != 0 && ev.Seq > upTo {
				page = page[:i]
				break
			}
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
			after = page[len(page)-1].Seq
		}
		if len(page) < 1000 {
			return nil
		}
	}
	return nil
}

// requestRecovery starts a recovery pass, or asks the running one to go
// round once more.
func (d *dispatcher) requestRecovery(ctx context.Context) {
	d.recMu.Lock()
	defer d.recMu.Unlock()
	if d.recRunning {
		d.recAgain = true
		return
	}
	d.recRunning = true
	d.recWG.Add(1)
	go func() {
		defer d.recWG.Done()
		for {
			start := time.Now()
			n, err := d.recoverAll(ctx)
			if err != nil && ctx.Err() == nil {
				d.log.Error("webhooks: recovery pass failed", slog.Any("error", err))
			} else if ctx.Err() == nil {
				d.log.Info("webhooks: recovery pass done", slog.Int("customers", n), slog.Duration("took", time.Since(start)))
			}
			d.recMu.Lock()
			again := d.recAgain && ctx.Err() == nil
			d.recAgain = false
			if !again {
				d.recRunning = false
				d.recMu.Unlock()
				return
			}
			d.recMu.Unlock()
		}
	}()
}

// recoverAll catches up every customer that may have events the feed did
// not bring: every customer the outbox knows, customers with active
// conversations, customers with conversations created since the last
// checkpoint (less a margin), and customers whose enqueue failed.
func (d *dispatcher) recoverAll(ctx context.Context) (int, error) {
	if eps, err := d.ob.Endpoints(ctx); err != nil || len(eps) == 0 {
		return 0, err // nothing is owed to anyone (see advance)
	}
	seen := map[string]bool{}
	var chunk []string
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := d.catchUp(ctx, chunk)
		chunk = chunk[:0]
		return err
	}
	add := func(c string) error {
		if seen[c] {
			return nil
		}
		seen[c] = true
		chunk = append(chunk, c)
		if len(chunk) >= 64 {
			return flush()
		}
		return nil
	}
	d.retryMu.Lock()
	retry := d.retry
	d.retry = map[string]bool{}
	d.retryMu.Unlock()
	for c := range retry {
		if err := add(c); err != nil {
			return len(seen), err
		}
	}
	if err := d.ob.EachCursor(ctx, func(c string, _ uint64) error { return add(c) }); err != nil {
		return len(seen), err
	}
	checkpoint, err := d.ob.Checkpoint(ctx)
	if err != nil {
		return len(seen), err
	}
	for _, st := range []sessions.ConversationStatus{sessions.StatusOpen, sessions.StatusPending, ""} {
		q := sessions.ConversationQuery{Status: st, Limit: 500}
		for {
			page, next, err := d.store.Conversations(ctx, q)
			if err != nil {
				return len(seen), err
			}
			stop := false
			for _, c := range page {
				if st == "" && (checkpoint.IsZero() || c.CreatedAt.Before(checkpoint.Add(-recoveryMargin))) {
					stop = true // newest first: the rest are older still
					break
				}
				if err := add(c.CustomerID); err != nil {
					return len(seen), err
				}
			}
			if stop || next == "" {
				break
			}
			q.Cursor = next
		}
	}
	return len(seen), flush()
}

// catchUp reads each customer's timeline after its cursor and enqueues,
// a page at a time.
func (d *dispatcher) catchUp(ctx context.Context, customers []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	eps, err := d.ob.Endpoints(ctx)
	if err != nil {
		return err
	}
	now := d.now()
	for _, c := range customers {
		cur, _, err := d.ob.Cursor(ctx, c)
		if err != nil {
			return err
		}
		err = d.readTimeline(ctx, c, cur, 0, func(page []sessions.Event) error {
			var ds []Delivery
			var err error
			for _, ev := range page {
				if ds, err = appendDeliveries(ds, eps, ev, now); err != nil {
					return err
				}
			}
			added, err := d.ob.Enqueue(ctx, ds, map[string]uint64{c: page[len(page)-1].Seq}, time.Time{})
			if err != nil {
				return err
			}
			if added > 0 {
				d.log.Info("webhooks: recovered deliveries from the timeline", slog.String("customer_id", c), slog.Int("deliveries", added))
			}
			d.enqueued(added)
			return nil
		})
		if err != nil {
			d.retryMu.Lock()
			d.retry[c] = true
			d.retryMu.Unlock()
			return err
		}
	}
	return nil
}
