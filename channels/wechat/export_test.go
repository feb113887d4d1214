package wechat

import (
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BoltNonceEntries counts n's entries, and fails t unless its expiry
// index has as many.
func BoltNonceEntries(t testing.TB, n *BoltNonces) int {
	t.Helper()
	var entries, index int
	err := n.db.View(func(tx *bolt.Tx) error {
		entries = tx.Bucket(bucketNonces).Stats().KeyN
		index = tx.Bucket(bucketNonceExpiry).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if entries != index {
		t.Fatalf("%d nonces but %d expiry index entries", entries, index)
	}
	return entries
}
