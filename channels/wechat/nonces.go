package wechat

import (
	"context"
	"time"
)

// Nonces remembers the timestamp and nonce of every signed callback for
// the freshness window, across all gateway nodes and their restarts, so a
// signature seen once can't be replayed with another body: BoltNonces on
// one node, ValkeyCache in a cluster (MemoryCache for tests). (In plain mode the signature covers
// only the token, timestamp and nonce, not the body: without this, anyone
// who saw one callback URL could post any message under it for the next
// few minutes.)
//
// A repeat with the same body is let through: it is WeChat retrying, or a
// replay of a message that is stored already, and intake is idempotent by
// message id, so it lands once either way.
type Nonces interface {
	// RememberNonce records key with the digest of its body for ttl. It
	// reports false when key was already recorded with another digest.
	RememberNonce(ctx context.Context, key, digest string, ttl time.Duration) (ok bool, err error)
}
