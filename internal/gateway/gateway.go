package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/channels/sms"
	"github.com/omnigate/omnigate/channels/webchat"
	"github.com/omnigate/omnigate/channels/wechat"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/internal/inbox"
	"github.com/omnigate/omnigate/internal/kpi"
	"github.com/omnigate/omnigate/internal/webhooks"
	"github.com/omnigate/omnigate/router/routing"
	"github.com/omnigate/omnigate/sessions"
	"github.com/omnigate/omnigate/sessions/lockfile"
	"github.com/omnigate/omnigate/widget"
)

// Gateway is one running gateway process's parts.
type Gateway struct {
	cfg      config.Config
	log      *slog.Logger
	lock     *lockfile.Lock // data_dir's, held from New until shutdown
	store    sessions.Store
	srv      *http.Server
	ln       net.Listener
	inbox    *inbox.Hub
	webchat  *webchat.Adapter
	routing  *routing.Service
	kpi      *kpi.Engine // KPIs and the wallboard's live view
	kpiStore kpi.Store

	wechat   *wechat.Adapter       // nil when no account is configured
	wnonces  io.Closer             // wechat's used callback nonces on one node; nil otherwise
	wtyping  *wechatTyping         // reps' typing to wechat; nil without wechat
	vtyping  *webchat.ValkeyTyping // typing across nodes; nil on one node
	sms      *sms.Adapter          // nil when no provider is configured
	contact  contactParts          // the contact policy and its stores
	dialer   dialerParts           // campaigns; empty without dialer.trunk
	voice    voiceParts            // the SIP user agent; empty without voice
	tools    toolParts             // canned responses and the snooze timer
	webhooks *webhooks.Service     // always built: /v1/events and the admin API
	outbox   *webhooks.BoltOutbox
	valkey   valkey.Client // typing and wechat's tokens in a cluster (valkeyClient); nil otherwise
}

// New locks data_dir, opens the store, builds the API and binds the
// listen address, so a data_dir in use or a taken port fails here, before
// anything is served. On error everything opened so far is closed again.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	store, err := openStore(ctx, cfg.Store)
	if err != nil {
		_ = lock.Release()
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: log, lock: lock, store: store}
	if err := g.build(); err != nil {
		_ = store.Close()
		_ = lock.Release()
		return nil, err
	}
	return g, nil
}

// lockDataDir takes <data_dir>/gateway.lock before anything in data_dir
// is opened: the store, the webhooks outbox, the contact ledger and the
// do-not-contact list are one node's files, and a second process opening them would
// corrupt them (the store) or wait for bbolt's lock and fail with a bare
// "timeout" (the others). The store takes its own lock file as well, for
// programs that open it without a gateway.
func lockDataDir(dir string) (*lockfile.Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("gateway: data_dir: %w", err)
	}
	lock, err := lockfile.Acquire(filepath.Join(dir, "gateway.lock"))
	if errors.Is(err, lockfile.ErrInUse) {
		return nil, fmt.Errorf("gateway: data_dir is %w; stop that gateway or give this one another data_dir", err)
	}
	if err != nil {
		return nil, fmt.Errorf("gateway: data_dir: %w", err)
	}
	return lock, nil
}

func (g *Gateway) build() (err error) {
	defer func() {
		if err == nil {
			return
		}
		if g.inbox != nil {
			_ = g.inbox.Close()
		}
		if g.webchat != nil {
			_ = g.webchat.Close()
		}
		if g.routing != nil {
			g.routing.Close()
		}
		_ = g.closeParts()
	}()
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "omnigate"})); err != nil {
		return err
	}
	authn := auth.New(g.cfg.Auth)
	// One typing channel for both sides, so reps and visitors see each
	// other type; through Valkey in a cluster, so they do across nodes.
	var typing webchat.Typing = webchat.NewMemoryTyping()
	if g.cfg.Store.Kind == config.StoreValkey {
		client, err := g.valkeyClient()
		if err != nil {
			return err
		}
		g.vtyping = webchat.NewValkeyTyping(client, g.valkeyPrefix()+":typing", g.log.With("part", "typing"))
		typing = g.vtyping
	}
	repNames := map[string]string{}
	for _, r := range authn.Reps() {
		repNames[r.ID] = r.Name
	}
	if err := g.buildRouting(authn.Reps(), reg); err != nil {
		return err
	}
	if err := g.buildKPI(authn.Reps(), reg); err != nil {
		return err
	}
	g.webchat, err = webchat.New(g.cfg.Webchat, webchat.Options{
		Store: g.store, Logger: g.log.With("channel", "webchat"), Typing: typing,
		RepName: func(_ context.Context, id string) string { return repNames[id] },
		Available: func(context.Context, string) bool {
			return g.routing.Available(sessions.ChannelWebchat)
		},
	})
	if err != nil {
		return err
	}
	g.routing.OnPresenceChange(g.webchat.RecheckAvailability)
	// The do-not-contact list before the channels that add to it.
	if err := g.buildContact(); err != nil {
		return err
	}
	if err := g.buildVoice(reg); err != nil {
		return err
	}
	if err := g.buildDialer(authn.Reps(), reg); err != nil {
		return err
	}
	adapters := []channels.Adapter{g.webchat}
	if len(g.cfg.WeChat.Accounts) > 0 {
		if err := g.buildWeChat(reg); err != nil {
			return err
		}
		adapters = append(adapters, g.wechat)
		g.wtyping = startWeChatTyping(typing, g.store, g.wechat, g.log.With("channel", "wechat"))
	}
	if len(g.cfg.SMS.Providers) > 0 {
		if err := g.buildSMS(); err != nil {
			return err
		}
		adapters = append(adapters, g.sms)
	}
	chans, err := channels.NewRegistry(adapters...)
	if err != nil {
		return err
	}
	g.outbox, err = webhooks.OpenBoltOutbox(filepath.Join(g.cfg.DataDir, "webhooks.db"))
	if err != nil {
		return fmt.Errorf("gateway: webhooks outbox: %w", err)
	}
	g.webhooks, err = webhooks.New(g.cfg.Webhooks, webhooks.Options{
		Store: g.store, Outbox: g.outbox, Metrics: reg, Logger: g.log.With("part", "webhooks"),
		Reps:           func(id string) bool { _, ok := repNames[id]; return ok },
		WeChatAccounts: wechatKeys(g.cfg.WeChat), Sites: siteIDs(g.cfg.Webchat),
	})
	if err != nil {
		return err
	}
	if err := g.buildTools(); err != nil {
		return err
	}
	sender, err := channels.NewSender(channels.SenderOptions{Store: g.store, Channels: chans, Policy: g.contact.policy,
		SendTimeout: g.cfg.API.SendTimeout, Metrics: reg, Logger: g.log.With("part", "sender")})
	if err != nil {
		return err
	}
	g.voice.sender = sender
	handler, err := api.New(g.cfg.API, api.Options{
		Store: g.store, Auth: authn, Sender: sender, Metrics: reg, Logger: g.log, Routing: g.routing,
		Routes: append(append(g.webhooks.Routes(), g.kpiRoutes()...), g.dialerRoutes()...), Contact: g.contactDeps(), Canned: g.tools.canned,
	})
	if err != nil {
		return err
	}
	g.inbox, err = inbox.New(g.cfg.Inbox, inbox.Options{Store: g.store, Auth: authn, Typing: typing, Metrics: reg, Logger: g.log,
		OnPresence: g.routing.Connected, Wallboard: g.wallboard()})
	if err != nil {
		return err
	}
	page, err := widget.Handler(widget.Options{DemoSite: demoSite(g.cfg.Webchat)})
	if err != nil {
		return err
	}
	// Two classes of route: requests, whose bodies get http.body_timeout
	// to arrive, and WebSockets, hijacked and long-lived, which do not.
	mux := http.NewServeMux()
	requests := func(pattern string, h http.Handler) { mux.Handle(pattern, bodyDeadline(g.cfg.HTTP.BodyTimeout, h)) }
	requests("/", handler)
	requests("GET /{$}", page)
	requests("GET /widget.js", page)
	requests("GET /widget.css", page)
	requests("GET /inbox", widget.InboxHandler())
	requests("GET /inbox/", widget.InboxHandler())
	requests("GET /wallboard", widget.WallboardHandler())
	requests("GET /wallboard/", widget.WallboardHandler())
	if g.wechat != nil {
		requests("GET /channels/wechat/{key}", g.wechat)
		requests("POST /channels/wechat/{key}", g.wechat)
	}
	if g.sms != nil {
		requests("POST /channels/sms/{provider}", g.sms)
	}
	mux.Handle("GET /channels/webchat/ws", g.webchat)
	mux.Handle("GET /inbox/ws", g.inbox)

	ln, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listen: %w", err)
	}
	if g.ln, err = newLimitListener(ln, g.cfg.HTTP.MaxConnections, reg); err != nil {
		_ = ln.Close()
		return err
	}
	g.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	return nil
}

func openStore(ctx context.Context, c config.Store) (sessions.Store, error) {
	switch c.Kind {
	case config.StoreBolt:
		s, err := sessions.OpenBolt(c.Bolt.Path, sessions.BoltOptions{})
		if err != nil {
			return nil, fmt.Errorf("gateway: store: %w", err)
		}
		return s, nil
	case config.StoreValkey:
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		s, err := sessions.OpenValkey(ctx, c.Valkey.ValkeyOptions)
		if err != nil {
			return nil, fmt.Errorf("gateway: store: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("gateway: store kind %q", c.Kind)
}

// Addr is the bound listen address (the real port when configured with 0).
func (g *Gateway) Addr() net.Addr { return g.ln.Addr() }

// URLs are what the gateway serves, for the start-up banner.
func (g *Gateway) URLs() []string {
	base := "http://" + g.hostPort()
	return []string{
		base + "/        widget demo",
		base + "/inbox   rep inbox",
		base + "/wallboard supervisors' wallboard",
		base + "/v1      REST API index (OpenAPI at /v1/openapi.yaml)",
		base + "/metrics Prometheus metrics",
	}
}

// BaseURL is http://host:port, with a wildcard host shown as 127.0.0.1.
func (g *Gateway) BaseURL() string { return "http://" + g.hostPort() }

func (g *Gateway) hostPort() string {
	a := g.ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(a.Port))
}

// Run serves until ctx ends or the server fails, then shuts down in order.
// It returns nil after a clean shutdown.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.startKPI(); err != nil {
		return errors.Join(err, g.shutdown())
	}
	if err := g.routing.Start(); err != nil {
		return errors.Join(err, g.shutdown())
	}
	// Not ctx: Run with an ended ctx still starts and stops in order.
	startCtx, cancelStart := context.WithTimeout(context.Background(), 15*time.Second)
	err := g.webhooks.Start(startCtx)
	cancelStart()
	if err != nil {
		return errors.Join(err, g.shutdown())
	}
	if g.cfg.Store.Kind == config.StoreValkey && !g.cfg.Webhooks.NoDelivery {
		g.log.Info("webhooks: this node delivers webhooks; set webhooks.no_delivery on every other node")
	}
	g.startDialer()
	g.log.Info("gateway serving", slog.String("addr", g.hostPort()), slog.String("store", g.cfg.Store.Kind))
	served := make(chan error, 1)
	go func() { served <- g.srv.Serve(g.ln) }()

	var serveErr error
	select {
	case <-ctx.Done():
		g.log.Info("gateway shutting down", slog.String("reason", context.Cause(ctx).Error()))
	case serveErr = <-served:
		g.log.Error("gateway server failed", slog.Any("error", serveErr))
	}
	return errors.Join(serveErr, g.shutdown())
}

// shutdown stops accepting, drains HTTP, then closes the store.
func (g *Gateway) shutdown() error {
	var errs []error
	drain, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
	defer cancel()
	if err := g.srv.Shutdown(drain); err != nil {
		g.log.Warn("http drain timed out; closing remaining connections", slog.Duration("timeout", g.cfg.ShutdownTimeout))
		if cerr := g.srv.Close(); cerr != nil {
			errs = append(errs, cerr)
		}
	}
	// WebSockets are hijacked, so Shutdown left them open: close them with
	// the "shutdown" code (clients reconnect) before the store goes.
	_ = g.webchat.Close()
	_ = g.inbox.Close()
	// Calls hung up and recorded, then the dialer, before routing: its
	// calls release their reps.
	if err := g.closeVoice(); err != nil {
		errs = append(errs, err)
	}
	g.stopDialer()
	// Then routing, which gives up this node's lease so the others take
	// over its conversations at once.
	g.routing.Close()
	if err := g.closeParts(); err != nil {
		errs = append(errs, err)
	}
	if err := g.store.Close(); err != nil && !errors.Is(err, sessions.ErrClosed) {
		errs = append(errs, fmt.Errorf("gateway: close store: %w", err))
	}
	// Last: data_dir's files are closed now.
	if err := g.lock.Release(); err != nil {
		errs = append(errs, fmt.Errorf("gateway: release data_dir: %w", err))
	}
	g.log.Info("gateway stopped")
	return errors.Join(errs...)
}
