package wechat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// BoltNonces keeps used callback nonces in their own bbolt file (the
// gateway uses <data_dir>/wechat.db), each committed and fsynced before
// the callback goes on, so a restart within the freshness window does not
// forget them: a signed URL seen before the restart still can't carry
// another body after it. One process at a time; a cluster uses
// ValkeyCache, which all nodes share.
//
// Two buckets: wechat_nonces maps a key to its expiry (8 bytes, Unix
// nanoseconds, big-endian) and body digest; wechat_nonce_expiry holds
// expiry+key with no value, in expiry order, so pruning reads only the
// expired head. Every RememberNonce prunes up to pruneBatch expired
// entries in its own transaction, and Open prunes them all, so the file
// holds about one freshness window of callbacks, whatever the uptime.
type BoltNonces struct {
	db  *bolt.DB
	now func() time.Time
}

var _ Nonces = (*BoltNonces)(nil)

var (
	bucketNonces      = []byte("wechat_nonces")
	bucketNonceExpiry = []byte("wechat_nonce_expiry")
)

// pruneBatch bounds the pruning one RememberNonce does, so a callback
// after a long quiet spell does not wait for the whole backlog; each call
// removes more than it adds, so the backlog still drains.
const pruneBatch = 256

// OpenBoltNonces opens (or creates, with its directory) the nonce file at
// path. now is the clock that expiries are counted on; nil means
// time.Now.
func OpenBoltNonces(path string, now func() time.Time) (*BoltNonces, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("wechat: nonces %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("wechat: nonces %s: locked by another process (is another gateway using this data_dir?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("wechat: nonces %s: %w", path, err)
	}
	n := &BoltNonces{db: db, now: now}
	err = db.Update(func(tx *bolt.Tx) error {
		nb, err := tx.CreateBucketIfNotExists(bucketNonces)
		if err != nil {
			return err
		}
		eb, err := tx.CreateBucketIfNotExists(bucketNonceExpiry)
		if err != nil {
			return err
		}
		for {
			pruned, err := prune(nb, eb, now(), pruneBatch)
			if err != nil || pruned < pruneBatch {
				return err
			}
		}
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("wechat: nonces %s: %w", path, err)
	}
	return n, nil
}

// Close closes the file. Call it after the adapter is closed.
func (n *BoltNonces) Close() error { return n.db.Close() }

// RememberNonce implements Nonces.
func (n *BoltNonces) RememberNonce(ctx context.Context, key, digest string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := n.now()
	var ok bool
	// Batch: concurrent callbacks share one commit and one fsync. It may
	// run the function again after another in the batch failed, so the
	// function sets everything it reports.
	err := n.db.Batch(func(tx *bolt.Tx) error {
		nb, eb := tx.Bucket(bucketNonces), tx.Bucket(bucketNonceExpiry)
		if _, err := prune(nb, eb, now, pruneBatch); err != nil {
			return err
		}
		k := []byte(key)
		if v := nb.Get(k); len(v) >= 8 {
			exp := binary.BigEndian.Uint64(v)
			if uint64(now.UnixNano()) < exp {
				ok = string(v[8:]) == digest
				return nil
			}
			if err := eb.Delete(expiryKey(exp, k)); err != nil {
				return err
			}
		}
		exp := uint64(now.Add(ttl).UnixNano())
		v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(digest)), exp)
		if err := nb.Put(k, append(v, digest...)); err != nil {
			return err
		}
		ok = true
		return eb.Put(expiryKey(exp, k), nil)
	})
	if err != nil {
		return false, fmt.Errorf("wechat: nonces: %w", err)
	}
	return ok, nil
}

func expiryKey(exp uint64, key []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(key)), exp), key...)
}

// prune deletes up to limit entries that expired by now, oldest first,
// and returns how many it deleted. The keys are copied and gathered
// before deleting: a bbolt cursor may skip an item after Delete.
func prune(nb, eb *bolt.Bucket, now time.Time, limit int) (int, error) {
	var expired [][]byte
	c := eb.Cursor()
	for k, _ := c.First(); k != nil && len(expired) < limit; k, _ = c.Next() {
		if len(k) >= 8 && binary.BigEndian.Uint64(k) > uint64(now.UnixNano()) {
			break
		}
		expired = append(expired, append([]byte(nil), k...))
	}
	for _, k := range expired {
		// The entry itself goes only if it still has this expiry: a key
		// remembered again after expiring has a newer index entry.
		if len(k) >= 8 {
			if v := nb.Get(k[8:]); len(v) >= 8 && binary.BigEndian.Uint64(v) == binary.BigEndian.Uint64(k) {
				if err := nb.Delete(k[8:]); err != nil {
					return 0, err
				}
			}
		}
		if err := eb.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(expired), nil
}
