package contact

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// BoltSuppressions is the single-node list: one bbolt file (the gateway's
// is <data_dir>/suppressions.db), every write fsynced. One bucket:
//
//	suppressions   <kind> \x00 <value> \x00 <channel> \x00 <purpose>  → Suppression JSON
//
// so Match is at most four point reads per key and List one cursor walk
// in entry order.
type BoltSuppressions struct {
	db *bolt.DB
}

var _ Suppressions = (*BoltSuppressions)(nil)

var bktSuppressions = []byte("suppressions")

// OpenBoltSuppressions opens (or creates, with its directory) the list at
// path.
func OpenBoltSuppressions(path string) (*BoltSuppressions, error) {
	db, err := openBolt(path, bktSuppressions)
	if err != nil {
		return nil, err
	}
	return &BoltSuppressions{db: db}, nil
}

func (b *BoltSuppressions) Close() error { return b.db.Close() }

func (b *BoltSuppressions) Add(ctx context.Context, s Suppression) error {
	s, err := normalizeSuppression(s)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	j, err := json.Marshal(s)
	if err != nil {
		return err
	}
	// Batch: a CSV import's or a STOP storm's adds share fsyncs.
	return b.db.Batch(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bktSuppressions)
		if bk.Get([]byte(s.key())) != nil {
			return nil
		}
		return bk.Put([]byte(s.key()), j)
	})
}

func (b *BoltSuppressions) Remove(ctx context.Context, kind, value, channel, purpose string) error {
	k, err := removeKey(kind, value, channel, purpose)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bktSuppressions)
		if bk.Get([]byte(k)) == nil {
			return ErrNoSuppression
		}
		return bk.Delete([]byte(k))
	})
}

func (b *BoltSuppressions) Match(ctx context.Context, keys []Key, channel, purpose string) ([]Suppression, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Suppression
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bktSuppressions)
		for _, k := range matchKeys(keys, channel, purpose) {
			if v := bk.Get([]byte(k)); v != nil {
				var s Suppression
				if err := json.Unmarshal(v, &s); err != nil {
					return fmt.Errorf("contact: suppression %q: %w", k, err)
				}
				out = append(out, s)
			}
		}
		return nil
	})
	return out, err
}

func (b *BoltSuppressions) List(ctx context.Context, cursor string, limit int) ([]Suppression, string, error) {
	after, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	n := pageSize(limit)
	var out []Suppression
	var next string
	err = b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktSuppressions).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && bytes.Equal(k, []byte(after)) {
			k, v = c.Next()
		}
		for ; k != nil; k, v = c.Next() {
			if len(out) == n {
				next = encodeCursor(out[n-1].key())
				return nil
			}
			var s Suppression
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("contact: suppression %q: %w", k, err)
			}
			out = append(out, s)
		}
		return nil
	})
	return out, next, err
}
