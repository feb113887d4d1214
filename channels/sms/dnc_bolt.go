package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltDoNotContact keeps the list in its own bbolt file (the gateway uses
// <data_dir>/sms.db), one key per number, every change fsynced before it
// is acknowledged. One process at a time: a cluster uses
// ValkeyDoNotContact.
type BoltDoNotContact struct {
	db *bolt.DB
}

var _ DoNotContact = (*BoltDoNotContact)(nil)

var bucketOptOut = []byte("sms_opt_out")

// OpenBoltDoNotContact opens (or creates, with its directory) the list at
// path.
func OpenBoltDoNotContact(path string) (*BoltDoNotContact, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sms: do-not-contact %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("sms: do-not-contact %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketOptOut)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sms: do-not-contact %s: %w", path, err)
	}
	return &BoltDoNotContact{db: db}, nil
}

// Close closes the file.
func (d *BoltDoNotContact) Close() error { return d.db.Close() }

func (d *BoltDoNotContact) OptOut(ctx context.Context, number string, r OptOut) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	changed := false
	err = d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOptOut)
		if b.Get([]byte(number)) != nil {
			return nil
		}
		changed = true
		return b.Put([]byte(number), v)
	})
	return changed, wrapBolt(err)
}

func (d *BoltDoNotContact) OptIn(ctx context.Context, number string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	changed := false
	err := d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOptOut)
		if b.Get([]byte(number)) == nil {
			return nil
		}
		changed = true
		return b.Delete([]byte(number))
	})
	return changed, wrapBolt(err)
}

func (d *BoltDoNotContact) Lookup(ctx context.Context, number string) (OptOut, bool, error) {
	if err := ctx.Err(); err != nil {
		return OptOut{}, false, err
	}
	var r OptOut
	ok := false
	err := d.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketOptOut).Get([]byte(number))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &r)
	})
	return r, ok, wrapBolt(err)
}

func wrapBolt(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return fmt.Errorf("sms: do-not-contact list closed: %w", err)
	}
	return fmt.Errorf("sms: do-not-contact list: %w", err)
}
