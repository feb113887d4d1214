package wechat

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/valkey-io/valkey-go"
)

// ValkeyCache keeps access tokens, refresh locks and callback nonces in
// Valkey (or Redis 7), shared by every gateway node:
//
//   - <prefix>wechat:token:{<appid>} holds the token as JSON, with a TTL
//     of its remaining life;
//   - <prefix>wechat:token:{<appid>}:lock is the refresh lock, SET NX PX
//     with a random owner value, released by a compare-and-delete script
//     so a node never frees a lock that expired and went to another;
//   - <prefix>wechat:nonce:<account>:<timestamp>:<nonce> holds a body
//     digest for the freshness window (SET NX GET: one round trip).
//
// The braces put a token and its lock in one hash slot of a Valkey
// Cluster. The client is the caller's: Close does not close it.
type ValkeyCache struct {
	client valkey.Client
	prefix string
}

var (
	_ TokenCache = (*ValkeyCache)(nil)
	_ Nonces     = (*ValkeyCache)(nil)
)

// NewValkeyCache uses client, with every key under prefix (the
// deployment's key prefix, such as "omnigate:"; empty means none).
func NewValkeyCache(client valkey.Client, prefix string) *ValkeyCache {
	return &ValkeyCache{client: client, prefix: prefix}
}

func (v *ValkeyCache) tokenKey(appID string) string { return v.prefix + "wechat:token:{" + appID + "}" }

// Token implements TokenCache.
func (v *ValkeyCache) Token(ctx context.Context, appID string) (Token, bool, error) {
	b, err := v.client.Do(ctx, v.client.B().Get().Key(v.tokenKey(appID)).Build()).AsBytes()
	if valkey.IsValkeyNil(err) {
		return Token{}, false, nil
	}
	if err != nil {
		return Token{}, false, fmt.Errorf("wechat: valkey get token %s: %w", appID, err)
	}
	var t Token
	if err := json.Unmarshal(b, &t); err != nil || t.Value == "" {
		// Unreadable (another version's format?): treat as absent; the
		// next fetch overwrites it.
		return Token{}, false, nil
	}
	return t, true, nil
}

// SetToken implements TokenCache.
func (v *ValkeyCache) SetToken(ctx context.Context, appID string, tok Token, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return nil // already expired: nothing worth storing
	}
	b, err := json.Marshal(tok)
	if err != nil {
		return err
	}
	err = v.client.Do(ctx, v.client.B().Set().Key(v.tokenKey(appID)).Value(string(b)).Px(ttl).Build()).Error()
	if err != nil {
		return fmt.Errorf("wechat: valkey set token %s: %w", appID, err)
	}
	return nil
}

// releaseLock deletes the lock only if it still holds this owner's value.
var releaseLock = valkey.NewLuaScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// LockToken implements TokenCache.
func (v *ValkeyCache) LockToken(ctx context.Context, appID string, ttl time.Duration) (func(), bool, error) {
	key := v.tokenKey(appID) + ":lock"
	owner := randomHex(16)
	err := v.client.Do(ctx, v.client.B().Set().Key(key).Value(owner).Nx().Px(ttl).Build()).Error()
	if valkey.IsValkeyNil(err) {
		return nil, false, nil // held by another node
	}
	if err != nil {
		return nil, false, fmt.Errorf("wechat: valkey lock token %s: %w", appID, err)
	}
	return func() {
		// Not the caller's ctx: the lock must go even if the call that
		// took it was cancelled. At worst it expires after ttl.
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = releaseLock.Exec(rctx, v.client, []string{key}, []string{owner}).Error()
	}, true, nil
}

// RememberNonce implements Nonces.
func (v *ValkeyCache) RememberNonce(ctx context.Context, key, digest string, ttl time.Duration) (bool, error) {
	k := v.prefix + "wechat:nonce:" + key
	prev, err := v.client.Do(ctx, v.client.B().Set().Key(k).Value(digest).Nx().Get().Px(ttl).Build()).ToString()
	if valkey.IsValkeyNil(err) {
		return true, nil // first time: set
	}
	if err != nil {
		return false, fmt.Errorf("wechat: valkey nonce: %w", err)
	}
	return prev == digest, nil
}
