package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/sessions"
)

// Options are the service's collaborators, wired by cmd/gateway.
type Options struct {
	// Store is required: events are appended to it and followed from it.
	Store sessions.Store
	// Outbox is required: OpenBoltOutbox(<data_dir>/webhooks.db) in the
	// gateway, NewMemoryOutbox() in tests. The caller closes it after
	// Close.
	Outbox Outbox
	// HTTPClient delivers webhooks. Nil means a client that follows no
	// redirects; per-attempt timeouts come from Config.Timeout.
	HTTPClient *http.Client
	// Logger gets delivery problems and endpoint changes; nil discards.
	Logger *slog.Logger
	// Metrics receives the collectors; nil means none.
	Metrics prometheus.Registerer
	// Reps, when set, checks that an event's update.owner is a rep.
	Reps func(id string) bool
	// WeChatAccounts are the keys of the configured official accounts
	// (wechat.accounts): an event's customer.wechat_openid.account must
	// be one. Empty means no account is configured: every event naming a
	// customer by OpenID is refused.
	WeChatAccounts []string
	// Sites are the ids of the configured web chat sites (webchat.sites):
	// an event's customer.site_user.site must be one. Empty means no
	// site: every event naming a customer by site user is refused.
	Sites []string
	// OnDisable is called when an endpoint is disabled for failing, after
	// the error log and the metric: the place to page an admin. Nil means
	// nothing more.
	OnDisable func(Endpoint)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is integrator webhooks both ways: Routes (events in and the
// endpoint API) and, once started, the dispatcher and sender (webhooks
// out).
type Service struct {
	cfg    Config
	store  sessions.Store
	ob     Outbox
	log    *slog.Logger
	now    func() time.Time
	m      *metrics
	intake *intake
	admin  *admin
	disp   *dispatcher
	send   *sender

	mu     sync.Mutex
	cancel context.CancelFunc
	feed   *sessions.Consumer // set by Start unless no_delivery
	wg     sync.WaitGroup
}

// New builds the service from a validated configuration (secrets
// resolved).
func New(cfg Config, o Options) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Store == nil || o.Outbox == nil {
		return nil, errors.New("webhooks: Store and Outbox are required")
	}
	cfg = cfg.withDefaults()
	s := &Service{cfg: cfg, store: o.Store, ob: o.Outbox, log: o.Logger, now: o.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.m, err = newMetrics(o.Metrics); err != nil {
		return nil, err
	}
	in := &intake{cfg: cfg, store: o.Store, ob: o.Outbox, log: s.log, now: s.now, m: s.m, reps: o.Reps,
		accounts: setOf(o.WeChatAccounts), sites: setOf(o.Sites)}
	for _, i := range cfg.Integrations {
		for _, raw := range []string{i.Secret, i.PreviousSecret} {
			if raw == "" {
				continue
			}
			sec, _ := signing.ParseSecret(raw) // checked by Validate
			in.names, in.secrets = append(in.names, i.Name), append(in.secrets, sec)
		}
	}
	s.intake = in
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return errRedirect }}
	}
	s.send = &sender{cfg: cfg, ob: o.Outbox, client: client, log: s.log, now: s.now, m: s.m, onDisable: o.OnDisable,
		wake: make(chan struct{}, 1), inflight: map[string]bool{}, perEP: map[string]int{}}
	s.disp = &dispatcher{store: o.Store, ob: o.Outbox, log: s.log, now: s.now, kick: s.send.kick, m: s.m, retry: map[string]bool{}}
	s.admin = &admin{s: s}
	return s, nil
}

// Routes are POST /v1/events and the admin API under /v1/webhooks, for
// internal/api to serve (api.Options.Routes) with its authentication, body
// cap, error catalogue and request metrics.
func (s *Service) Routes() []api.Route {
	return append([]api.Route{s.intake.route()}, s.admin.routes()...)
}

func (s *Service) kick() { s.send.kick() }

// Start writes the configured endpoints into the outbox and, unless
// Config.NoDelivery, starts following the store and delivering. It returns
// once the endpoints are synced; delivery runs until Close.
func (s *Service) Start(ctx context.Context) error {
	if err := s.syncEndpoints(ctx); err != nil {
		return err
	}
	if s.cfg.NoDelivery {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("webhooks: already started")
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// Batches: one outbox write (an fsync) per batch, not per event.
	feed, err := sessions.NewConsumer(runCtx, s.store, sessions.ConsumerOptions{
		HandleBatch: s.disp.handle,
		OnGap:       s.disp.gap,
		Logger:      s.log,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("webhooks: following the store: %w", err)
	}
	s.cancel, s.feed = cancel, feed
	// Subscribed first, then recover: anything appended from here on
	// comes live, anything before is in the timelines.
	s.disp.requestRecovery(runCtx)
	s.wg.Go(func() {
		<-feed.Done()
		s.disp.recWG.Wait() // no recovery starts once the feed has stopped
	})
	s.wg.Go(func() { s.send.run(runCtx) })
	return nil
}

// Close stops following and delivering, and waits for attempts in flight
// to be recorded. Deliveries not yet attempted stay in the outbox for the
// next start. Call it before closing the store and the outbox.
func (s *Service) Close() {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
}

// syncEndpoints makes the outbox's configured endpoints match the file,
// keeping each one's creation time and health.
func (s *Service) syncEndpoints(ctx context.Context) error {
	stored, err := s.ob.Endpoints(ctx)
	if err != nil {
		return fmt.Errorf("webhooks: reading endpoints: %w", err)
	}
	want := map[string]bool{}
	for _, e := range s.cfg.Endpoints {
		want[e.ID] = true
		ep := Endpoint{ID: e.ID, Source: "config", CreatedAt: s.now().UTC()}
		for _, old := range stored {
			if old.ID == e.ID {
				ep = old
			}
		}
		ep.URL, ep.Secret, ep.EventTypes, ep.Description, ep.MaxConcurrency = e.URL, e.Secret, e.EventTypes, e.Description, e.MaxConcurrency
		ep.Source = "config"
		if err := s.ob.PutEndpoint(ctx, ep); err != nil {
			return fmt.Errorf("webhooks: endpoint %s: %w", e.ID, err)
		}
	}
	for _, old := range stored {
		if old.Source == "config" && !want[old.ID] {
			s.log.Warn("webhooks: endpoint removed from the configuration; deleting it and its deliveries", slog.String("endpoint", old.ID))
			if err := s.ob.DeleteEndpoint(ctx, old.ID); err != nil {
				return fmt.Errorf("webhooks: endpoint %s: %w", old.ID, err)
			}
		}
	}
	return nil
}
