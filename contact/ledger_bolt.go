package contact

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltLedger is the single-node Ledger: one bbolt file (the gateway's is
// <data_dir>/contact.db), every acknowledged write fsynced. Layout, with
// "\x00" after a customer id (ids hold no control character) so one
// customer's keys are a contiguous range no other id can prefix:
//
//	touches      <customer id> \x00 <at µs, 8 bytes> <touch id>  → Touch JSON
//	touch_ids    <customer id> \x00 <touch id>                   → <at µs, 8 bytes>
//	merged       <customer id>                                   → customer id it went into
//
// Times are big-endian with the sign bit flipped, so key order is time
// then id (touchOrder), also before 1970. A claim reads its window with one cursor walk
// and writes in the same transaction, so it is atomic with every other
// write to the file. Claims that find a limit reached or a retry write
// nothing: they are answered from a read transaction, with no fsync,
// which is most of what a busy campaign asks.
//
// Writes go through bbolt's Batch: claims arriving together share one
// transaction and one fsync, each still atomic (they run one after the
// other inside it).
type BoltLedger struct {
	db        *bolt.DB
	retention time.Duration
}

var _ Ledger = (*BoltLedger)(nil)

var (
	bktTouches  = []byte("touches")
	bktTouchIDs = []byte("touch_ids")
	bktMerged   = []byte("merged")
)

// OpenBoltLedger opens (or creates, with its directory) the ledger at
// path. A second process opening the same file fails after a second.
func OpenBoltLedger(path string, opts LedgerOptions) (*BoltLedger, error) {
	db, err := openBolt(path, bktTouches, bktTouchIDs, bktMerged)
	if err != nil {
		return nil, err
	}
	return &BoltLedger{db: db, retention: opts.retention()}, nil
}

// openBolt opens the bbolt file at path with buckets, as the ledger and
// the suppressions list both keep theirs.
func openBolt(path string, buckets ...[]byte) (*bolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("contact: bolt %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("contact: bolt %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("contact: bolt %s: %w", path, err)
	}
	return db, nil
}

func (l *BoltLedger) Close() error { return l.db.Close() }

// micros encodes t so that byte order is time order.
func micros(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixMicro())^1<<63)
}

// custKey is customerID, "\x00" and parts, in a slice of its own.
func custKey(customerID string, parts ...[]byte) []byte {
	n := len(customerID) + 1
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	k = append(append(k, customerID...), 0)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

// boltResolve follows merges from id to the customer holding its touches.
func boltResolve(tx *bolt.Tx, id string) (string, error) {
	b := tx.Bucket(bktMerged)
	for range maxMergeHops {
		into := b.Get([]byte(id))
		if into == nil {
			return id, nil
		}
		id = string(into)
	}
	return "", fmt.Errorf("contact: customer %s: merges go on for more than %d customers", id, maxMergeHops)
}

// boltClaim decides t against limits in tx. owner is the customer whose
// range holds the touches (t.CustomerID or the one it was merged into);
// stored says t's id is already there.
func boltClaim(tx *bolt.Tx, t Touch, limits []Limit) (owner string, stored bool, reached []Reached, err error) {
	if owner, err = boltResolve(tx, t.CustomerID); err != nil {
		return "", false, nil, err
	}
	if tx.Bucket(bktTouchIDs).Get(custKey(owner, []byte(t.ID))) != nil {
		return owner, true, nil, nil
	}
	if len(limits) == 0 {
		return owner, false, nil, nil
	}
	// After at - widest, to the end of owner's range (see Limit on
	// touches dated after at): seek to just past the window's start.
	start := custKey(owner, micros(t.At.Add(-widest(limits)).Add(time.Microsecond)))
	prefix := custKey(owner)
	var window []Touch
	c := tx.Bucket(bktTouches).Cursor()
	for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var u Touch
		if err := json.Unmarshal(v, &u); err != nil {
			return "", false, nil, fmt.Errorf("contact: touch %q: %w", k, err)
		}
		window = append(window, u)
	}
	return owner, false, evaluate(window, t.At, limits), nil
}

// boltPut stores t in owner's range and drops owner's touches older than
// cutoff.
func boltPut(tx *bolt.Tx, owner string, t Touch, cutoff time.Time) error {
	j, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bktTouches).Put(custKey(owner, micros(t.At), []byte(t.ID)), j); err != nil {
		return err
	}
	if err := tx.Bucket(bktTouchIDs).Put(custKey(owner, []byte(t.ID)), micros(t.At)); err != nil {
		return err
	}
	if cutoff.IsZero() {
		return nil
	}
	prefix := custKey(owner)
	end := custKey(owner, micros(cutoff))
	c := tx.Bucket(bktTouches).Cursor()
	var old [][]byte
	for k, _ := c.Seek(prefix); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
		old = append(old, bytes.Clone(k))
	}
	ids := tx.Bucket(bktTouchIDs)
	for _, k := range old {
		if err := tx.Bucket(bktTouches).Delete(k); err != nil {
			return err
		}
		if err := ids.Delete(custKey(owner, k[len(prefix)+8:])); err != nil {
			return err
		}
	}
	return nil
}

func (l *BoltLedger) Claim(ctx context.Context, t Touch, limits []Limit) (Claimed, error) {
	t, err := normalizeTouch(t)
	if err != nil {
		return Claimed{}, err
	}
	if err := checkLimits(limits, l.retention); err != nil {
		return Claimed{}, err
	}
	if err := ctx.Err(); err != nil {
		return Claimed{}, err
	}
	var out Claimed
	// Read first: a refusal or a retry needs no write and no fsync.
	err = l.db.View(func(tx *bolt.Tx) error {
		_, stored, reached, err := boltClaim(tx, t, limits)
		out = Claimed{Recorded: stored, Reached: reached}
		return err
	})
	if err != nil || out.Recorded || len(out.Reached) > 0 {
		return out, err
	}
	// Batch may run the function twice; each run decides afresh.
	err = l.db.Batch(func(tx *bolt.Tx) error {
		owner, stored, reached, err := boltClaim(tx, t, limits)
		out = Claimed{Recorded: stored || len(reached) == 0, Reached: reached}
		if err != nil || stored || len(reached) > 0 {
			return err
		}
		return boltPut(tx, owner, t, t.At.Add(-l.retention))
	})
	if err != nil {
		return Claimed{}, fmt.Errorf("contact: claim touch %s of %s: %w", t.ID, t.CustomerID, err)
	}
	return out, nil
}

func (l *BoltLedger) Record(ctx context.Context, t Touch) error {
	_, err := l.Claim(ctx, t, nil)
	return err
}

func (l *BoltLedger) Touches(ctx context.Context, customerID string, since time.Time) ([]Touch, error) {
	if err := checkCustomerID(customerID); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Touch
	err := l.db.View(func(tx *bolt.Tx) error {
		owner, err := boltResolve(tx, customerID)
		if err != nil {
			return err
		}
		prefix := custKey(owner)
		c := tx.Bucket(bktTouches).Cursor()
		seek := prefix
		if !since.IsZero() {
			seek = custKey(owner, micros(since.Truncate(time.Microsecond)))
		}
		for k, v := c.Seek(seek); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var u Touch
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("contact: touch %q: %w", k, err)
			}
			if !u.At.Before(since) {
				out = append(out, u)
			}
		}
		return nil
	})
	return out, err
}

func (l *BoltLedger) Merge(ctx context.Context, into, from string) error {
	if err := checkMerge(into, from); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.db.Update(func(tx *bolt.Tx) error {
		root, err := boltResolve(tx, into)
		if err != nil {
			return err
		}
		merged := tx.Bucket(bktMerged)
		if cur := merged.Get([]byte(from)); cur != nil {
			if r, err := boltResolve(tx, string(cur)); err != nil || r != root {
				return fmt.Errorf("%w: %s went into %s, not %s", ErrMergeConflict, from, cur, into)
			}
			return nil
		}
		if root == from {
			return nil // into was merged into from: from already holds both
		}
		if err := merged.Put([]byte(from), []byte(root)); err != nil {
			return err
		}
		prefix := custKey(from)
		var moved []Touch
		var keys [][]byte
		c := tx.Bucket(bktTouches).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var u Touch
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("contact: touch %q: %w", k, err)
			}
			moved = append(moved, u)
			keys = append(keys, bytes.Clone(k))
		}
		ids := tx.Bucket(bktTouchIDs)
		for i, u := range moved {
			if err := tx.Bucket(bktTouches).Delete(keys[i]); err != nil {
				return err
			}
			if err := ids.Delete(custKey(from, []byte(u.ID))); err != nil {
				return err
			}
			if ids.Get(custKey(root, []byte(u.ID))) != nil {
				continue
			}
			if err := boltPut(tx, root, u, time.Time{}); err != nil {
				return err
			}
		}
		return nil
	})
}
