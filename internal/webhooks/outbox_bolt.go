package webhooks

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// BoltOutbox keeps the outbox in its own bbolt file (the gateway uses
// <data_dir>/webhooks.db), apart from the sessions store so webhook
// traffic never slows the timeline's commits. Every write is one fsynced
// transaction, so what a call returned for survives kill -9. Layout:
//
//	endpoints     <endpoint id>                              → Endpoint JSON
//	deliveries    <delivery id>                              → Delivery JSON
//	due           <next attempt, ns BE 8> <delivery id>      → empty (pending only)
//	by_endpoint   <endpoint id> \x00 <listKey(created, id)>  → delivery id
//	dead          <endpoint id> \x00 <listKey(created, id)>  → delivery id (dead only)
//	log           <endpoint id> \x00 <listKey(at, id, n)>    → Attempt JSON
//	cursors       <customer id>                              → seq, 8 bytes BE
//	meta          "checkpoint"                               → ns, 8 bytes BE
//
// Secrets are stored in clear (they sign every delivery); the file is
// created 0600.
type BoltOutbox struct {
	db *bolt.DB
}

var _ Outbox = (*BoltOutbox)(nil)

var (
	bktEndpoints  = []byte("endpoints")
	bktDeliveries = []byte("deliveries")
	bktDue        = []byte("due")
	bktByEndpoint = []byte("by_endpoint")
	bktDead       = []byte("dead")
	bktLog        = []byte("log")
	bktCursors    = []byte("cursors")
	bktMeta       = []byte("meta")
	keyCheckpoint = []byte("checkpoint")
)

// OpenBoltOutbox opens (or creates, with its directory) the outbox at path.
func OpenBoltOutbox(path string) (*BoltOutbox, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("webhooks: outbox %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("webhooks: outbox %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktEndpoints, bktDeliveries, bktDue, bktByEndpoint, bktDead, bktLog, bktCursors, bktMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("webhooks: outbox %s: %w", path, err)
	}
	return &BoltOutbox{db: db}, nil
}

func (o *BoltOutbox) Close() error { return o.db.Close() }

func (o *BoltOutbox) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return wrapBolt(o.db.Update(fn))
}

func (o *BoltOutbox) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return wrapBolt(o.db.View(fn))
}

func wrapBolt(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func dueKey(d Delivery) []byte {
	return append(u64(uint64(d.NextAttempt.UnixNano())), d.ID...)
}

func epKey(endpointID, list string) []byte {
	return append(append([]byte(endpointID), 0), list...)
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, j)
}

func getEndpoint(tx *bolt.Tx, id string) (Endpoint, error) {
	v := tx.Bucket(bktEndpoints).Get([]byte(id))
	if v == nil {
		return Endpoint{}, fmt.Errorf("%w: endpoint %s", ErrNotFound, id)
	}
	var ep Endpoint
	return ep, json.Unmarshal(v, &ep)
}

func getDelivery(tx *bolt.Tx, id string) (Delivery, error) {
	v := tx.Bucket(bktDeliveries).Get([]byte(id))
	if v == nil {
		return Delivery{}, fmt.Errorf("%w: delivery %s", ErrNotFound, id)
	}
	var d Delivery
	return d, json.Unmarshal(v, &d)
}

// unindex drops d's entries from the due and dead indexes.
func unindex(tx *bolt.Tx, d Delivery) error {
	switch d.State {
	case StatePending:
		return tx.Bucket(bktDue).Delete(dueKey(d))
	case StateDead:
		return tx.Bucket(bktDead).Delete(epKey(d.EndpointID, listKey(d.CreatedAt, d.ID, 0)))
	}
	return nil
}

// putDelivery writes d and keeps the indexes in step with old, the stored
// version (zero when d is new).
func putDelivery(tx *bolt.Tx, old, d Delivery) error {
	if old.ID != "" {
		if err := unindex(tx, old); err != nil {
			return err
		}
	} else if err := tx.Bucket(bktByEndpoint).Put(epKey(d.EndpointID, listKey(d.CreatedAt, d.ID, 0)), []byte(d.ID)); err != nil {
		return err
	}
	switch d.State {
	case StatePending:
		if err := tx.Bucket(bktDue).Put(dueKey(d), nil); err != nil {
			return err
		}
	case StateDead:
		if err := tx.Bucket(bktDead).Put(epKey(d.EndpointID, listKey(d.CreatedAt, d.ID, 0)), []byte(d.ID)); err != nil {
			return err
		}
	}
	return putJSON(tx.Bucket(bktDeliveries), []byte(d.ID), d)
}

func deleteDelivery(tx *bolt.Tx, d Delivery) error {
	if err := unindex(tx, d); err != nil {
		return err
	}
	if err := tx.Bucket(bktByEndpoint).Delete(epKey(d.EndpointID, listKey(d.CreatedAt, d.ID, 0))); err != nil {
		return err
	}
	return tx.Bucket(bktDeliveries).Delete([]byte(d.ID))
}

func (o *BoltOutbox) PutEndpoint(ctx context.Context, ep Endpoint) error {
	return o.update(ctx, func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bktEndpoints), []byte(ep.ID), ep) })
}

func (o *BoltOutbox) Endpoint(ctx context.Context, id string) (Endpoint, error) {
	var ep Endpoint
	err := o.view(ctx, func(tx *bolt.Tx) error {
		var err error
		ep, err = getEndpoint(tx, id)
		return err
	})
	return ep, err
}

func (o *BoltOutbox) Endpoints(ctx context.Context) ([]Endpoint, error) {
	var out []Endpoint
	err := o.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bktEndpoints).ForEach(func(k, v []byte) error {
			var ep Endpoint
			if err := json.Unmarshal(v, &ep); err != nil {
				return err
			}
			out = append(out, ep)
			return nil
		})
	})
	return out, err
}

// eachOfEndpoint calls fn with every key under the endpoint's prefix in b.
func eachOfEndpoint(b *bolt.Bucket, endpointID string, fn func(k, v []byte) error) error {
	prefix := epKey(endpointID, "")
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func (o *BoltOutbox) DeleteEndpoint(ctx context.Context, id string) error {
	return o.update(ctx, func(tx *bolt.Tx) error {
		if _, err := getEndpoint(tx, id); err != nil {
			return err
		}
		var ids, logKeys [][]byte
		_ = eachOfEndpoint(tx.Bucket(bktByEndpoint), id, func(k, v []byte) error {
			ids = append(ids, bytes.Clone(v))
			return nil
		})
		_ = eachOfEndpoint(tx.Bucket(bktLog), id, func(k, v []byte) error {
			logKeys = append(logKeys, bytes.Clone(k))
			return nil
		})
		for _, did := range ids {
			d, err := getDelivery(tx, string(did))
			if err != nil {
				return err
			}
			if err := deleteDelivery(tx, d); err != nil {
				return err
			}
		}
		for _, k := range logKeys {
			if err := tx.Bucket(bktLog).Delete(k); err != nil {
				return err
			}
		}
		return tx.Bucket(bktEndpoints).Delete([]byte(id))
	})
}

func (o *BoltOutbox) MarkEndpoint(ctx context.Context, id string, ok bool, now time.Time, disableAfter time.Duration) (Endpoint, bool, error) {
	// A success on a healthy endpoint, the common case, writes nothing.
	ep, err := o.Endpoint(ctx, id)
	if err != nil || (ok && ep.FailingSince.IsZero()) {
		return ep, false, err
	}
	var disabled bool
	err = o.update(ctx, func(tx *bolt.Tx) error {
		cur, err := getEndpoint(tx, id)
		if err != nil {
			return err
		}
		ep, disabled = markHealth(cur, ok, now, disableAfter)
		if err := putJSON(tx.Bucket(bktEndpoints), []byte(id), ep); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		var pending []Delivery
		err = eachOfEndpoint(tx.Bucket(bktByEndpoint), id, func(k, v []byte) error {
			d, err := getDelivery(tx, string(v))
			if err == nil && d.State == StatePending {
				pending = append(pending, d)
			}
			return err
		})
		if err != nil {
			return err
		}
		for _, d := range pending {
			if err := putDelivery(tx, d, killed(d, now)); err != nil {
				return err
			}
		}
		return nil
	})
	return ep, disabled, err
}

func (o *BoltOutbox) Enqueue(ctx context.Context, ds []Delivery, cursors map[string]uint64, checkpoint time.Time) (int, error) {
	added := 0
	err := o.update(ctx, func(tx *bolt.Tx) error {
		added = 0
		eps, dels := tx.Bucket(bktEndpoints), tx.Bucket(bktDeliveries)
		for _, d := range ds {
			if eps.Get([]byte(d.EndpointID)) == nil || dels.Get([]byte(d.ID)) != nil {
				continue // endpoint deleted meanwhile, or already enqueued
			}
			if err := putDelivery(tx, Delivery{}, d); err != nil {
				return err
			}
			added++
		}
		cb := tx.Bucket(bktCursors)
		for c, seq := range cursors {
			if v := cb.Get([]byte(c)); v != nil && binary.BigEndian.Uint64(v) >= seq {
				continue
			}
			if err := cb.Put([]byte(c), u64(seq)); err != nil {
				return err
			}
		}
		if !checkpoint.IsZero() {
			meta := tx.Bucket(bktMeta)
			if v := meta.Get(keyCheckpoint); v == nil || int64(binary.BigEndian.Uint64(v)) < checkpoint.UnixNano() {
				return meta.Put(keyCheckpoint, u64(uint64(checkpoint.UnixNano())))
			}
		}
		return nil
	})
	return added, err
}

func (o *BoltOutbox) Cursor(ctx context.Context, customerID string) (uint64, bool, error) {
	var seq uint64
	var known bool
	err := o.view(ctx, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bktCursors).Get([]byte(customerID)); v != nil {
			seq, known = binary.BigEndian.Uint64(v), true
		}
		return nil
	})
	return seq, known, err
}

func (o *BoltOutbox) Touch(ctx context.Context, customerID string) error {
	if _, known, err := o.Cursor(ctx, customerID); err != nil || known {
		return err
	}
	return o.update(ctx, func(tx *bolt.Tx) error {
		cb := tx.Bucket(bktCursors)
		if cb.Get([]byte(customerID)) != nil {
			return nil
		}
		return cb.Put([]byte(customerID), u64(0))
	})
}

// EachCursor reads the cursors in pages, so a long scan holds no
// transaction open while fn works.
func (o *BoltOutbox) EachCursor(ctx context.Context, fn func(string, uint64) error) error {
	var after []byte
	for {
		type kv struct {
			c   string
			seq uint64
		}
		var page []kv
		err := o.view(ctx, func(tx *bolt.Tx) error {
			c := tx.Bucket(bktCursors).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(page) < 1000; k, v = c.Next() {
				page = append(page, kv{string(k), binary.BigEndian.Uint64(v)})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e.c, e.seq); err != nil {
				return err
			}
		}
		if len(page) < 1000 {
			return nil
		}
		after = []byte(page[len(page)-1].c)
	}
}

func (o *BoltOutbox) Checkpoint(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := o.view(ctx, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bktMeta).Get(keyCheckpoint); v != nil {
			t = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
		}
		return nil
	})
	return t, err
}

func (o *BoltOutbox) Due(ctx context.Context, now time.Time, limit int) ([]Delivery, error) {
	var out []Delivery
	err := o.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bktDue).Cursor()
		end := uint64(now.UnixNano())
		for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
			if binary.BigEndian.Uint64(k[:8]) > end {
				break
			}
			d, err := getDelivery(tx, string(k[8:]))
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

func (o *BoltOutbox) Record(ctx context.Context, d Delivery, a Attempt) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Batch: attempts finishing together share one fsync. The function may
	// run twice, and writes the same keys each time.
	return wrapBolt(o.db.Batch(func(tx *bolt.Tx) error {
		old, err := getDelivery(tx, d.ID)
		if err != nil {
			return err
		}
		if err := putDelivery(tx, old, d); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bktLog), epKey(d.EndpointID, listKey(a.At, a.DeliveryID, a.N)), a)
	}))
}

func (o *BoltOutbox) Delivery(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	err := o.view(ctx, func(tx *bolt.Tx) error {
		var err error
		d, err = getDelivery(tx, id)
		return err
	})
	return d, err
}

// pageDesc walks an endpoint's entries in b newest first, below cursor,
// calling take until it says stop; next is the cursor of the next page.
func pageDesc(b *bolt.Bucket, endpointID, cursor string, take func(v []byte) (bool, error)) (string, error) {
	prefix := epKey(endpointID, "")
	c := b.Cursor()
	var k, v []byte
	if cursor != "" {
		k, _ = c.Seek(epKey(endpointID, cursor))
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev() // strictly below the cursor
		}
	} else {
		k, _ = c.Seek(epKey(endpointID, "\xff"))
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		more, err := take(v)
		if err != nil {
			return "", err
		}
		if !more {
			return string(k[len(prefix):]), nil
		}
	}
	return "", nil
}

func (o *BoltOutbox) Deliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, string, error) {
	limit := pageLimit(q.Limit)
	var out []Delivery
	var next string
	err := o.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bktByEndpoint)
		if q.State == StateDead {
			b = tx.Bucket(bktDead)
		}
		var last string
		n, err := pageDesc(b, q.EndpointID, q.Cursor, func(v []byte) (bool, error) {
			d, err := getDelivery(tx, string(v))
			if err != nil {
				return false, err
			}
			if q.State != "" && d.State != q.State {
				return true, nil
			}
			if len(out) == limit {
				return false, nil
			}
			out = append(out, d)
			last = listKey(d.CreatedAt, d.ID, 0)
			return true, nil
		})
		if n != "" {
			next = last
		}
		return err
	})
	return out, next, err
}

func (o *BoltOutbox) Attempts(ctx context.Context, endpointID, cursor string, limit int) ([]Attempt, string, error) {
	limit = pageLimit(limit)
	var out []Attempt
	var next string
	err := o.view(ctx, func(tx *bolt.Tx) error {
		n, err := pageDesc(tx.Bucket(bktLog), endpointID, cursor, func(v []byte) (bool, error) {
			if len(out) == limit {
				return false, nil
			}
			var a Attempt
			if err := json.Unmarshal(v, &a); err != nil {
				return false, err
			}
			out = append(out, a)
			return true, nil
		})
		if n != "" && len(out) > 0 {
			last := out[len(out)-1]
			next = listKey(last.At, last.DeliveryID, last.N)
		}
		return err
	})
	return out, next, err
}

func (o *BoltOutbox) Replay(ctx context.Context, id string, now time.Time) (Delivery, error) {
	var d Delivery
	err := o.update(ctx, func(tx *bolt.Tx) error {
		old, err := getDelivery(tx, id)
		if err != nil {
			return err
		}
		if old.State != StateDead {
			return fmt.Errorf("%w: delivery %s is %s, not dead", ErrConflict, id, old.State)
		}
		d = replayed(old, now)
		return putDelivery(tx, old, d)
	})
	return d, err
}

func (o *BoltOutbox) Prune(ctx context.Context, deliveredBefore, deadBefore time.Time) (int, error) {
	var gone []Delivery
	var logKeys [][]byte
	err := o.view(ctx, func(tx *bolt.Tx) error {
		err := tx.Bucket(bktDeliveries).ForEach(func(k, v []byte) error {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			if (d.State == StateDelivered && d.DeliveredAt.Before(deliveredBefore)) ||
				(d.State == StateDead && d.DeadAt.Before(deadBefore)) {
				gone = append(gone, d)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bktLog).ForEach(func(k, v []byte) error {
			var a Attempt
			if err := json.Unmarshal(v, &a); err == nil && a.At.Before(deliveredBefore) {
				logKeys = append(logKeys, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || (len(gone) == 0 && len(logKeys) == 0) {
		return 0, err
	}
	n := 0
	err = o.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		for _, d := range gone {
			cur, err := getDelivery(tx, d.ID)
			if errors.Is(err, ErrNotFound) || (err == nil && cur.State != d.State) {
				continue // replayed or deleted meanwhile
			}
			if err != nil {
				return err
			}
			if err := deleteDelivery(tx, cur); err != nil {
				return err
			}
			n++
		}
		for _, k := range logKeys {
			if err := tx.Bucket(bktLog).Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}
