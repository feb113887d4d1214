package wechat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// MemoryCache keeps access tokens, refresh locks and callback nonces in
// this process: right for one node's tokens, and for tests. A cluster
// uses ValkeyCache, or each node would fetch its own token and invalidate
// the others'. Its nonces are lost on restart; one node keeps them in
// BoltNonces.
type MemoryCache struct {
	mu     sync.Mutex // a leaf: nothing else is locked while it is held
	tokens map[string]memToken
	locks  map[string]memLock
	nonces map[string]memNonce
	swept  time.Time
}

type memToken struct {
	tok  Token
	drop time.Time
}

type memLock struct {
	owner string
	until time.Time
}

type memNonce struct {
	digest string
	until  time.Time
}

var (
	_ TokenCache = (*MemoryCache)(nil)
	_ Nonces     = (*MemoryCache)(nil)
)

// NewMemoryCache returns an empty cache.
func NewMemoryCache() *MemoryCache {
	return &MemoryCache{tokens: map[string]memToken{}, locks: map[string]memLock{}, nonces: map[string]memNonce{}}
}

// Token implements TokenCache.
func (m *MemoryCache) Token(ctx context.Context, appID string) (Token, bool, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[appID]
	if !ok || !time.Now().Before(t.drop) {
		return Token{}, false, nil
	}
	return t.tok, true, nil
}

// SetToken implements TokenCache.
func (m *MemoryCache) SetToken(ctx context.Context, appID string, tok Token, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[appID] = memToken{tok: tok, drop: time.Now().Add(ttl)}
	return nil
}

// LockToken implements TokenCache.
func (m *MemoryCache) LockToken(ctx context.Context, appID string, ttl time.Duration) (func(), bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, held := m.locks[appID]; held && now.Before(l.until) {
		return nil, false, nil
	}
	owner := randomHex(8)
	m.locks[appID] = memLock{owner: owner, until: now.Add(ttl)}
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.locks[appID].owner == owner {
			delete(m.locks, appID)
		}
	}, true, nil
}

// RememberNonce implements Nonces.
func (m *MemoryCache) RememberNonce(ctx context.Context, key, digest string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.swept) > time.Minute {
		for k, n := range m.nonces {
			if !now.Before(n.until) {
				delete(m.nonces, k)
			}
		}
		m.swept = now
	}
	if n, seen := m.nonces[key]; seen && now.Before(n.until) {
		return n.digest == digest, nil
	}
	m.nonces[key] = memNonce{digest: digest, until: now.Add(ttl)}
	return true, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
