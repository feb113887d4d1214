package wechat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/sessions"
)

// Options are the adapter's collaborators, wired by cmd/gateway.
type Options struct {
	// Store is required.
	Store sessions.Store
	// Logger receives intake refusals and API failures, with OpenIDs
	// masked; nil discards them.
	Logger *slog.Logger
	// TokenCache shares access tokens between nodes. Nil means a
	// MemoryCache of this adapter's own: right for one node only. In a
	// cluster, every node must pass a ValkeyCache on the same server and
	// prefix.
	TokenCache TokenCache
	// Nonces remembers callback nonces to refuse replays. Nil means
	// TokenCache when it also implements Nonces (MemoryCache and
	// ValkeyCache do), else a MemoryCache. Memory forgets them on
	// restart, when a URL seen once could carry another body for the
	// rest of its window: one node passes a BoltNonces, a cluster a
	// ValkeyCache (as TokenCache or here).
	Nonces Nonces
	// HTTPClient calls the WeChat API. Nil means a client with
	// Config.APITimeout; a deployment whose egress must come from the
	// accounts' allow-listed IPs passes one with its proxy.
	HTTPClient *http.Client
	// Media opens a message's attachment for upload. Nil means messages
	// with media are refused (ErrNoMedia) and only text is sent. The
	// adapter never fetches a URL itself: what a media URL points to, and
	// who may read it, is the gateway's business.
	Media func(ctx context.Context, m sessions.Media) (io.ReadCloser, error)
	// Metrics registers the channel's counters; nil means none.
	Metrics prometheus.Registerer
	// Now is the clock for freshness checks, the 48-hour window and token
	// expiry; nil means time.Now. Tests set it.
	Now func() time.Time
	// Suppressions is the do-not-contact list an unfollow is added to and
	// a follow removed from (follow.go); nil means unfollows are kept on
	// the timeline only (the 48-hour window still refuses to send).
	Suppressions contact.Suppressions
}

// Adapter is the WeChat channel: the callback endpoint of every official
// account (ServeHTTP) and the outbound side of channels.Adapter (Send).
type Adapter struct {
	cfg      Config
	store    sessions.Store
	log      *slog.Logger
	nonces   Nonces
	sups     contact.Suppressions // nil: no list
	media    func(ctx context.Context, m sessions.Media) (io.ReadCloser, error)
	now      func() time.Time
	met      *metrics
	accounts map[string]*account

	ctx    context.Context // ends with Close: stops background UnionID lookups
	cancel context.CancelFunc
	closed atomic.Bool
	wg     sync.WaitGroup
	// lookups bounds concurrent background user-info calls.
	lookups chan struct{}

	// mu guards the three small maps below, and orders Close against
	// starting a background goroutine; it is a leaf lock, never held across
	// a call to the store or the API.
	mu sync.Mutex
	// unionRetry is when a failed UnionID lookup of an OpenID (key
	// "account|openid") may be tried again.
	unionRetry map[string]time.Time
	// typingAt is when Typing was last sent to an OpenID.
	typingAt map[string]time.Time
}

var _ channels.Adapter = (*Adapter)(nil)

// account is one configured official account and its API client.
type account struct {
	Account
	api *client
}

// New builds the adapter. It returns the configuration's problems, if
// any, all at once. Close stops it.
func New(cfg Config, o Options) (*Adapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Store == nil {
		return nil, errors.New("wechat: no store")
	}
	cfg = cfg.withDefaults()
	met, err := newMetrics(o.Metrics)
	if err != nil {
		return nil, fmt.Errorf("wechat: metrics: %w", err)
	}
	a := &Adapter{cfg: cfg, store: o.Store, log: o.Logger, nonces: o.Nonces, sups: o.Suppressions, media: o.Media, now: o.Now, met: met,
		accounts: map[string]*account{}, lookups: make(chan struct{}, 8),
		unionRetry: map[string]time.Time{}, typingAt: map[string]time.Time{}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	tc := o.TokenCache
	if tc == nil {
		tc = NewMemoryCache()
	}
	if a.nonces == nil {
		if n, ok := tc.(Nonces); ok {
			a.nonces = n
		} else {
			a.nonces = NewMemoryCache()
		}
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.APITimeout}
	}
	for _, acct := range cfg.Accounts {
		c := &client{base: acct.APIBaseURL, hc: hc, appID: acct.AppID, secret: acct.AppSecret, now: a.now,
			onFetch: func(ok bool) {
				r := resultOK
				if !ok {
					r = resultFailed
				}
				met.fetches.WithLabelValues(r).Inc()
			}}
		c.tokens = &tokenSource{appID: acct.AppID, cache: tc, fetch: c.fetchToken, now: a.now,
			before: cfg.TokenRefreshBefore, lockTTL: cfg.APITimeout + 2*time.Second,
			poll: 50 * time.Millisecond, wait: cfg.APITimeout + 2*time.Second}
		a.accounts[acct.Key] = &account{Account: acct, api: c}
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a, nil
}

// Name is the channel name, "wechat".
func (a *Adapter) Name() string { return sessions.ChannelWeChat }

// Close refuses new callbacks and sends (503, ErrClosed), stops background
// UnionID lookups and waits for them. Call it after the HTTP server
// stopped accepting and before the store closes.
func (a *Adapter) Close() error {
	a.mu.Lock()
	first := a.closed.CompareAndSwap(false, true)
	a.mu.Unlock()
	if !first {
		return nil
	}
	a.cancel()
	a.wg.Wait()
	return nil
}

// background counts one more background goroutine, unless the adapter is
// closed. closed is set under mu, so no Add can slip in once Close is
// waiting.
func (a *Adapter) background() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed.Load() {
		return false
	}
	a.wg.Add(1)
	return true
}

// ServeHTTP is the callback URL of every account, mounted by the gateway
// at /channels/wechat/{key}: GET is WeChat's server handshake, POST a
// message or event.
//
// silenceper's server.Server is not used for this: it answers the request
// itself, has no timestamp freshness or replay check, parses leniently,
// and gives no place to persist a message before acknowledging it. Its
// message types and crypto helpers are used instead.
func (a *Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	acct, ok := a.accounts[r.PathValue("key")]
	if !ok {
		errUnknownAccount.write(w)
		return
	}
	switch r.Method {
	case http.MethodGet:
		a.handshake(w, r, acct)
	case http.MethodPost:
		a.receive(w, r, acct)
	default:
		w.Header().Set("Allow", "GET, POST")
		errMethod.write(w)
	}
}

// Accounts lists the configured account keys, for the gateway's logs and
// the inbox.
func (a *Adapter) Accounts() []string {
	keys := make([]string, 0, len(a.accounts))
	for _, acct := range a.cfg.Accounts {
		keys = append(keys, acct.Key)
	}
	return keys
}
