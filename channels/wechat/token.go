package wechat

import (
	"context"
	"fmt"
	"time"
)

// Token is an access token and when WeChat stops accepting it.
type Token struct {
	Value   string    `json:"value"`
	Expires time.Time `json:"expires"`
}

// TokenCache holds one access token per AppID for every gateway node, and
// the lock that lets one node at a time fetch the next one. WeChat keeps
// one valid token per AppID: each fetch invalidates the previous token
// after a grace period, so nodes that each fetched their own would keep
// invalidating each other. MemoryCache serves one process; ValkeyCache a
// cluster.
type TokenCache interface {
	// Token returns the token stored for appID; ok is false when there is
	// none (never fetched, or expired out of the cache).
	Token(ctx context.Context, appID string) (tok Token, ok bool, err error)
	// SetToken stores tok for appID, to be dropped after ttl.
	SetToken(ctx context.Context, appID string, tok Token, ttl time.Duration) error
	// LockToken takes appID's refresh lock for at most ttl. ok is false
	// when another holder has it; release (non-nil when ok) gives it back
	// if it is still this holder's.
	LockToken(ctx context.Context, appID string, ttl time.Duration) (release func(), ok bool, err error)
}

// tokenSource hands out one account's access token, fetching a new one
// through the cache's lock so that across all nodes one fetch happens per
// expiry (or per token WeChat rejected).
type tokenSource struct {
	appID   string
	cache   TokenCache
	fetch   func(ctx context.Context) (Token, error)
	now     func() time.Time
	before  time.Duration // refresh when less than this is left
	lockTTL time.Duration // longer than one fetch can take
	poll    time.Duration // how often a waiting node looks again
	wait    time.Duration // how long a node waits for another's fetch
}

// get returns a usable token. A token close to expiry is refreshed by
// whichever node takes the lock first; the others keep using the current
// one meanwhile, which WeChat still accepts.
func (s *tokenSource) get(ctx context.Context) (string, error) {
	tok, ok, err := s.cache.Token(ctx, s.appID)
	if err != nil {
		return "", fmt.Errorf("wechat: token cache: %w", err)
	}
	now := s.now()
	switch {
	case ok && now.Before(tok.Expires.Add(-s.before)):
		return tok.Value, nil
	case ok && now.Before(tok.Expires):
		if v, err := s.refresh(ctx, "", false); err == nil && v != "" {
			return v, nil
		}
		return tok.Value, nil // another node is refreshing; this one is still good
	}
	return s.refresh(ctx, "", true)
}

// refresh gets a token other than bad that is not due for refresh,
// fetching it from WeChat under the lock. When another node holds the
// lock it waits for that node's token if wait is set, or returns "" at
// once if not.
func (s *tokenSource) refresh(ctx context.Context, bad string, wait bool) (string, error) {
	good := func(t Token) bool {
		return t.Value != "" && t.Value != bad && s.now().Before(t.Expires.Add(-s.before))
	}
	deadline := time.Now().Add(s.wait)
	for {
		release, ok, err := s.cache.LockToken(ctx, s.appID, s.lockTTL)
		if err != nil {
			return "", fmt.Errorf("wechat: token lock: %w", err)
		}
		if ok {
			defer release()
			// Another node may have refreshed between our read and the lock.
			if t, found, err := s.cache.Token(ctx, s.appID); err == nil && found && good(t) {
				return t.Value, nil
			}
			t, err := s.fetch(ctx)
			if err != nil {
				return "", err
			}
			ttl := t.Expires.Sub(s.now())
			if err := s.cache.SetToken(ctx, s.appID, t, ttl); err != nil {
				return "", fmt.Errorf("wechat: token cache: %w", err)
			}
			return t.Value, nil
		}
		if !wait {
			return "", nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(s.poll):
		}
		if t, found, err := s.cache.Token(ctx, s.appID); err == nil && found && t.Value != bad && s.now().Before(t.Expires) {
			return t.Value, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%w for %s: another node holds the refresh lock", ErrTokenUnavailable, s.appID)
		}
	}
}
