package wechat_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/channels/wechat"
	"github.com/omnigate/omnigate/channels/wechat/wechattest"
	"github.com/omnigate/omnigate/internal/testredis"
	"github.com/omnigate/omnigate/sessions"
)

// cache is what both implementations are: TokenCache and Nonces.
type cache interface {
	wechat.TokenCache
	wechat.Nonces
}

// One conformance suite for every Nonces implementation.
func TestNoncesConformance(t *testing.T) {
	t.Parallel()
	impls := map[string]func(t *testing.T) wechat.Nonces{
		"Memory": func(*testing.T) wechat.Nonces { return wechat.NewMemoryCache() },
		"Valkey": func(t *testing.T) wechat.Nonces {
			c := valkeyClient(t, testredis.Addr(t))
			prefix := testPrefix()
			t.Cleanup(func() { dropPrefix(t, c, prefix) })
			return wechat.NewValkeyCache(c, prefix)
		},
		"Bolt": func(t *testing.T) wechat.Nonces {
			return openBoltNonces(t, filepath.Join(t.TempDir(), "wechat.db"), nil)
		},
	}
	for name, open := range impls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := open(t)
			ctx := context.Background()
			for i, step := range []struct {
				key, digest string
				want        bool
			}{
				{"k:1:n1", "d1", true},
				{"k:1:n1", "d1", true},  // the same body again
				{"k:1:n1", "d2", false}, // another body under a used nonce
				{"k:1:n2", "d2", true},
			} {
				ok, err := c.RememberNonce(ctx, step.key, step.digest, time.Minute)
				if err != nil || ok != step.want {
					t.Fatalf("step %d: %v %v", i, ok, err)
				}
			}
			if ok, _ := c.RememberNonce(ctx, "k:2:n", "a", 30*time.Millisecond); !ok {
				t.Fatal("fresh nonce refused")
			}
			time.Sleep(80 * time.Millisecond)
			if ok, _ := c.RememberNonce(ctx, "k:2:n", "b", time.Minute); !ok {
				t.Fatal("nonce outlived its ttl")
			}
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := c.RememberNonce(cancelled, "k:3:n", "a", time.Minute); err == nil {
				t.Fatal("a cancelled context was not reported")
			}
		})
	}
}

// A BoltNonces file reopened (a restart) still refuses a used nonce with
// another body until the nonce expires, and expired entries are pruned:
// the file holds one freshness window, not the whole history.
func TestBoltNoncesDurableAndPruned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wechat.db")
	clk := &clock{}
	clk.set(time.Unix(1_700_000_000, 0))
	n := openBoltNonces(t, path, clk.now)
	for i := range 1000 {
		if ok, err := n.RememberNonce(ctx, fmt.Sprintf("a:%d:x", i), "d", 10*time.Minute); !ok || err != nil {
			t.Fatalf("nonce %d: %v %v", i, ok, err)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = openBoltNonces(t, path, clk.now)
	if ok, err := n.RememberNonce(ctx, "a:7:x", "other", 10*time.Minute); ok || err != nil {
		t.Fatalf("used nonce with another body after reopening: %v %v", ok, err)
	}
	if ok, err := n.RememberNonce(ctx, "a:7:x", "d", 10*time.Minute); !ok || err != nil {
		t.Fatalf("same body after reopening: %v %v", ok, err)
	}
	if got := wechat.BoltNonceEntries(t, n); got != 1000 {
		t.Fatalf("%d entries, want 1000", got)
	}

	// Past the window, each call prunes a batch of expired entries.
	clk.set(clk.now().Add(10*time.Minute + time.Second))
	if ok, _ := n.RememberNonce(ctx, "a:7:x", "other", 10*time.Minute); !ok {
		t.Fatal("an expired nonce is still refused")
	}
	for i := range 10 {
		if ok, err := n.RememberNonce(ctx, fmt.Sprintf("b:%d:x", i), "d", 10*time.Minute); !ok || err != nil {
			t.Fatalf("nonce b%d: %v %v", i, ok, err)
		}
	}
	if got := wechat.BoltNonceEntries(t, n); got != 11 {
		t.Fatalf("%d entries after pruning, want the 11 live ones", got)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// Opening prunes everything expired at once.
	clk.set(clk.now().Add(time.Hour))
	n = openBoltNonces(t, path, clk.now)
	if got := wechat.BoltNonceEntries(t, n); got != 0 {
		t.Fatalf("%d entries after opening an hour later, want 0", got)
	}
}

func openBoltNonces(t *testing.T, path string, now func() time.Time) *wechat.BoltNonces {
	t.Helper()
	n, err := wechat.OpenBoltNonces(path, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// One conformance suite for every cache implementation.
func TestCacheConformance(t *testing.T) {
	t.Parallel()
	impls := map[string]func(t *testing.T) cache{
		"Memory": func(*testing.T) cache { return wechat.NewMemoryCache() },
		"Valkey": func(t *testing.T) cache {
			c := valkeyClient(t, testredis.Addr(t))
			prefix := testPrefix()
			t.Cleanup(func() { dropPrefix(t, c, prefix) })
			return wechat.NewValkeyCache(c, prefix)
		},
	}
	for name, open := range impls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := open(t)
			ctx := context.Background()

			t.Run("token", func(t *testing.T) {
				if _, ok, err := c.Token(ctx, "wxnone"); ok || err != nil {
					t.Fatalf("missing token: %v %v", ok, err)
				}
				want := wechat.Token{Value: "tok-1", Expires: time.Now().Add(2 * time.Hour).Truncate(time.Millisecond)}
				if err := c.SetToken(ctx, "wxapp", want, time.Hour); err != nil {
					t.Fatal(err)
				}
				got, ok, err := c.Token(ctx, "wxapp")
				if err != nil || !ok || got.Value != want.Value || !got.Expires.Equal(want.Expires) {
					t.Fatalf("got %+v %v %v", got, ok, err)
				}
				if err := c.SetToken(ctx, "wxshort", want, 30*time.Millisecond); err != nil {
					t.Fatal(err)
				}
				time.Sleep(80 * time.Millisecond)
				if _, ok, _ := c.Token(ctx, "wxshort"); ok {
					t.Fatal("token outlived its ttl")
				}
			})

			t.Run("lock", func(t *testing.T) {
				release, ok, err := c.LockToken(ctx, "wxlock", time.Minute)
				if err != nil || !ok {
					t.Fatalf("first lock: %v %v", ok, err)
				}
				if _, ok, _ := c.LockToken(ctx, "wxlock", time.Minute); ok {
					t.Fatal("second holder got the lock")
				}
				if _, ok, _ := c.LockToken(ctx, "wxother", time.Minute); !ok {
					t.Fatal("locks are per AppID")
				}
				release()
				release2, ok, _ := c.LockToken(ctx, "wxlock", 30*time.Millisecond)
				if !ok {
					t.Fatal("lock not released")
				}
				time.Sleep(80 * time.Millisecond)
				release3, ok, _ := c.LockToken(ctx, "wxlock", time.Minute)
				if !ok {
					t.Fatal("lock did not expire")
				}
				release2() // expired and taken by another: must not free it
				if _, ok, _ := c.LockToken(ctx, "wxlock", time.Minute); ok {
					t.Fatal("a stale release freed another holder's lock")
				}
				release3()
			})

		})
	}
}

// Cluster: two gateway nodes sending through one AppID share the token in
// Valkey and fetch it from WeChat once, however many sends race.
func TestClusterFetchesTokenOnce(t *testing.T) {
	t.Parallel()
	addr := testredis.Addr(t)
	prefix := testPrefix()
	fake := wechattest.New(t)
	fake.AddApp(acctB.AppID, acctB.AppSecret)
	fake.SetTokenDelay(150 * time.Millisecond) // both nodes are waiting while the one fetch runs
	store := sessions.NewMemoryStore()         // the nodes share the store, as with ValkeyStore
	t.Cleanup(func() { _ = store.Close() })

	acct := acctB
	acct.APIBaseURL = fake.URL
	var nodes []*wechat.Adapter
	for i := range 2 {
		// Each node has its own connection, as separate processes would.
		c := valkeyClient(t, addr)
		if i == 0 {
			t.Cleanup(func() { dropPrefix(t, c, prefix) })
		}
		a, err := wechat.New(wechat.Config{Accounts: []wechat.Account{acct}},
			wechat.Options{Store: store, TokenCache: wechat.NewValkeyCache(c, prefix)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		nodes = append(nodes, a)
	}
	e := &env{t: t, store: store, fake: fake, clock: &clock{}, accts: map[string]wechat.Account{acct.Key: acct}}
	e.a = nodes[0]
	cust := e.known(acct.Key, "oCluster")
	e.mux = e.muxFor(nodes[0])
	mustSuccess(t, e.deliver(acct.Key, textXML("oCluster", time.Now(), 1, "hi")))
	o := e.outbound(cust, "reply")

	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Go(func() {
			_, err := nodes[i%2].Send(context.Background(), o)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.TokensIssued(acct.AppID); n != 1 {
		t.Fatalf("the token was fetched %d times, want once", n)
	}
	if n := len(fake.Sent()); n != 10 {
		t.Fatalf("%d sent, want 10", n)
	}

	// WeChat rejects the shared token: both nodes notice, one refreshes.
	fake.Revoke(acct.AppID)
	errs = make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			_, err := nodes[i%2].Send(context.Background(), o)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.TokensIssued(acct.AppID); n != 2 {
		t.Fatalf("after 40001 the token was fetched %d times in all, want 2", n)
	}
}

func (e *env) muxFor(a *wechat.Adapter) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/channels/wechat/{key}", a)
	return mux
}

func valkeyClient(t *testing.T, addr string) valkey.Client {
	t.Helper()
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// dropPrefix deletes a test's keys from a shared server.
func dropPrefix(t *testing.T, c valkey.Client, prefix string) {
	ctx := context.Background()
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Logf("cleaning up %s: %v", prefix, err)
			return
		}
		if len(e.Elements) > 0 {
			_ = c.Do(ctx, c.B().Del().Key(e.Elements...).Build()).Error()
		}
		if cursor = e.Cursor; cursor == 0 {
			return
		}
	}
}

func testPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "ogtest" + hex.EncodeToString(b[:]) + ":"
}
