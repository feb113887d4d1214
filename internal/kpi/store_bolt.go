package kpi

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var _ Store = (*BoltStore)(nil)

var slotsBucket = []byte("slots")

// BoltStore keeps counts in a bbolt file (<data_dir>/kpi.db): one key per
// slot (its start, 8 bytes big-endian, so keys sort by time), the value
// the slot's Counts as JSON. The engine adds once a second, one
// transaction for every slot touched.
type BoltStore struct {
	db *bolt.DB
}

// OpenBolt opens (creating) the file at path.
func OpenBolt(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("kpi: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(slotsBucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("kpi: open %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

func slotKey(slot int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(slot))
	return k[:]
}

func (s *BoltStore) Add(_ context.Context, deltas map[int64]Counts) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(slotsBucket)
		for slot, d := range deltas {
			c := Counts{}
			if v := b.Get(slotKey(slot)); v != nil {
				if err := json.Unmarshal(v, &c); err != nil {
					return fmt.Errorf("kpi: slot %d: %w", slot, err)
				}
			}
			c.merge(d)
			v, err := json.Marshal(c)
			if err != nil {
				return err
			}
			if err := b.Put(slotKey(slot), v); err != nil {
				return err
			}
		}
		return nil
	})
	return boltErr(err)
}

func (s *BoltStore) Load(_ context.Context, from, to int64) (map[int64]Counts, error) {
	out := map[int64]Counts{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(slotsBucket).Cursor()
		for k, v := c.Seek(slotKey(from)); k != nil && int64(binary.BigEndian.Uint64(k)) < to; k, v = c.Next() {
			counts := Counts{}
			if err := json.Unmarshal(v, &counts); err != nil {
				return fmt.Errorf("kpi: slot %d: %w", int64(binary.BigEndian.Uint64(k)), err)
			}
			out[int64(binary.BigEndian.Uint64(k))] = counts
		}
		return nil
	})
	return out, boltErr(err)
}

func (s *BoltStore) Lead(context.Context) (bool, error) { return true, nil }

func (s *BoltStore) Close() error { return s.db.Close() }

func boltErr(err error) error {
	if err == berrors.ErrDatabaseNotOpen {
		return ErrClosed
	}
	return err
}
