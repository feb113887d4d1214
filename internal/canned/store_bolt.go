package canned

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltStore keeps responses in a bbolt file of its own (canned.db beside
// the store), one bucket per owner.
type BoltStore struct{ db *bolt.DB }

var _ Store = (*BoltStore)(nil)

// OpenBolt opens (or creates) the file at path.
func OpenBolt(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("canned: open %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// bucket names carry a prefix: bbolt refuses an empty name, and a rep id
// never collides with the team's.
func bucket(owner string) []byte { return []byte("o:" + owner) }

func (s *BoltStore) List(_ context.Context, owner string) ([]Response, error) {
	var out []Response
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket(owner))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var r Response
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	sortResponses(out)
	return out, err
}

func (s *BoltStore) Put(_ context.Context, owner string, r Response) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket(owner))
		if err != nil {
			return err
		}
		return b.Put([]byte(r.ID), v)
	})
}

func (s *BoltStore) Delete(_ context.Context, owner, id string) (bool, error) {
	found := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket(owner))
		if b == nil || b.Get([]byte(id)) == nil {
			return nil
		}
		found = true
		return b.Delete([]byte(id))
	})
	return found, err
}

func (s *BoltStore) Close() error { return s.db.Close() }
