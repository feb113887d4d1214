package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/dialer"
	"github.com/omnigate/omnigate/dialer/pacing"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// The dialer's parts: its store, the trunk, the Service and its Run.

// dialerParts is what buildDialer makes; all nil without a dialer.
type dialerParts struct {
	svc   *dialer.Service
	store dialer.Store
	log   *dialLog // the dial_log file; nil without one
	stop  context.CancelFunc
	done  chan struct{} // closed when Run returned
}

// buildDialer opens the dialer's store (<data_dir>/dialer.db on one
// node; the gateway's Valkey client under the store's key prefix in a
// cluster, where the campaigns' leases live too), builds the trunk and
// the Service on the routing service, the contact policy and the
// sessions store, and creates the campaigns the file declares that do
// not exist yet. Without dialer.trunk it does nothing.
func (g *Gateway) buildDialer(reps []auth.Rep, reg prometheus.Registerer) error {
	c := g.cfg.Dialer
	if c.Trunk == "" {
		return nil
	}
	var err error
	switch g.cfg.Store.Kind {
	case config.StoreValkey:
		client, cerr := g.valkeyClient()
		if cerr != nil {
			return cerr
		}
		g.dialer.store, err = dialer.NewValkeyStore(client, g.valkeyPrefix())
	default:
		g.dialer.store, err = dialer.OpenBoltStore(filepath.Join(g.cfg.DataDir, "dialer.db"), nil)
	}
	if err != nil {
		return fmt.Errorf("gateway: dialer store: %w", err)
	}
	trunk, err := g.dialerTrunk()
	if err != nil {
		return err
	}
	if trunk == nil {
		sim := dialer.NewSimTrunk(nil)
		sim.Rule = c.Sim.Rule()
		trunk = sim
	}
	if c.DialLog != "" {
		if g.dialer.log, err = openDialLog(c.DialLog); err != nil {
			return err
		}
		trunk = g.dialer.log.wrap(trunk)
	}
	roster := g.cfg.Routing.RouterConfig(reps).Reps
	g.dialer.svc, err = dialer.New(dialer.Options{
		Store: g.dialer.store, Sessions: dialerSessions{Store: g.store, log: g.log}, Policy: g.contact.policy, Ledger: g.contact.ledger,
		Reps: g.routing, Roster: func() []router.Rep { return roster }, Trunk: trunk,
		Purposes: g.cfg.DialerKnown().Purposes, Segment: g.segment, Node: nodeName(), LeaseTTL: c.Lease,
		Pacer: newPacer, Metrics: reg, Logger: g.log.With("part", "dialer"),
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return g.declareCampaigns()
}

// newPacer builds a campaign's pacer (package pacing) from its mode,
// abandonment target, connect limit and counts so far.
func newPacer(c dialer.PacerConfig) (pacing.Pacer, error) {
	m, err := pacing.ParseMode(c.Mode)
	if err != nil {
		return nil, err
	}
	return pacing.New(m, pacing.Config{TargetAbandon: c.AbandonTarget, ConnectLimit: c.ConnectLimit,
		Answered: int64(c.Answered), Abandoned: int64(c.Abandoned)})
}

// declareCampaigns creates the campaigns of dialer.campaigns that no
// campaign's id names yet; the others are kept as they are.
func (g *Gateway) declareCampaigns() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, spec := range g.cfg.Dialer.Campaigns {
		_, err := g.dialer.svc.Campaign(ctx, spec.ID)
		if err == nil {
			continue
		}
		if !errors.Is(err, dialer.ErrNotFound) {
			return fmt.Errorf("gateway: dialer campaign %s: %w", spec.ID, err)
		}
		if _, err := g.dialer.svc.Create(ctx, spec); err != nil {
			return fmt.Errorf("gateway: dialer campaign %s: %w", spec.ID, err)
		}
		g.log.Info("dialer: campaign created from the configuration", slog.String("campaign", spec.ID))
	}
	return nil
}

// dialerRoutes are the campaign and preview routes; with no dialer,
// the same routes answer 404 (so the API and its spec do not change
// with the configuration).
func (g *Gateway) dialerRoutes() []api.Route {
	if g.dialer.svc == nil {
		return api.DialerRoutes(nil)
	}
	return api.DialerRoutes(&api.DialerDeps{Service: g.dialer.svc, Attempts: g.dialer.store.Attempts, Customers: g.store})
}

// startDialer runs the dialer's Service until stopDialer.
func (g *Gateway) startDialer() {
	if g.dialer.svc == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.dialer.stop, g.dialer.done = cancel, make(chan struct{})
	go func() {
		defer close(g.dialer.done)
		if err := g.dialer.svc.Run(ctx); err != nil {
			g.log.Error("dialer stopped with an error", slog.Any("error", err))
		}
	}()
}

// stopDialer stops placing calls and waits, up to shutdown_timeout,
// for the calls in progress to end. One still going then is left to the
// next start, which concludes it as interrupted (never dialing it
// again).
func (g *Gateway) stopDialer() {
	if g.dialer.stop == nil {
		return
	}
	g.dialer.stop()
	select {
	case <-g.dialer.done:
	case <-time.After(g.cfg.ShutdownTimeout):
		g.log.Warn("dialer: calls still in progress at shutdown; the next start concludes them as interrupted")
	}
}

// closeDialer closes the dialer's store and dial log. Each may be nil.
func (g *Gateway) closeDialer() error {
	var errs []error
	if g.dialer.store != nil {
		if err := g.dialer.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("gateway: close dialer store: %w", err))
		}
	}
	if g.dialer.log != nil {
		if err := g.dialer.log.Close(); err != nil {
			errs = append(errs, fmt.Errorf("gateway: close dial log: %w", err))
		}
	}
	return errors.Join(errs...)
}

// segment selects a campaign's customers by profile. The sessions store
// keeps no index of customers by tier, tag or owner, so a segment is
// chosen from the customers with a conversation: every customer who
// ever wrote or was written to, at most maxSegmentScan conversations
// (a customer known only from an import is listed by id or in a CSV
// instead).
func (g *Gateway) segment(ctx context.Context, s dialer.Segment) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	q := sessions.ConversationQuery{Limit: 500}
	for scanned := 0; scanned < maxSegmentScan; {
		page, next, err := g.store.Conversations(ctx, q)
		if err != nil {
			return nil, err
		}
		scanned += len(page)
		for _, cv := range page {
			if seen[cv.CustomerID] {
				continue
			}
			seen[cv.CustomerID] = true
			c, err := g.store.Customer(ctx, cv.CustomerID)
			if err != nil {
				return nil, err
			}
			if s.Matches(c) {
				out = append(out, c.ID)
			}
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	return out, nil
}

// maxSegmentScan bounds the conversations a segment is chosen from.
const maxSegmentScan = 200_000

// dialerSessions is the sessions store as the dialer gets it: the
// dialer opens one conversation per customer and campaign for its
// calls' timeline events and leaves it open, and the routing service,
// reconciling at start, routes every open unassigned conversation to a
// rep, so after a restart the campaign's conversations would fill the
// reps the campaign needs. Here a campaign's conversation is resolved
// once an attempt is concluded or deferred (a call in progress keeps it
// open); the next attempt opens a new one.
type dialerSessions struct {
	sessions.Store
	log *slog.Logger
}

// resolvingSteps are the dialer's timeline steps after which no call of
// the customer is in progress.
var resolvingSteps = []dialer.CallStep{dialer.StepOutcome, dialer.StepSkipped, dialer.StepDeferred}

func (d dialerSessions) Append(ctx context.Context, ev sessions.Event) (sessions.Event, bool, error) {
	stored, appended, err := d.Store.Append(ctx, ev)
	if err != nil || !appended || ev.Author != dialer.AuthorDialer || ev.Kind != sessions.KindCall || ev.ConversationID == "" {
		return stored, appended, err
	}
	var step struct {
		Step dialer.CallStep `json:"step"`
	}
	if json.Unmarshal(ev.Payload, &step) != nil || !slices.Contains(resolvingSteps, step.Step) {
		return stored, appended, err
	}
	resolved := sessions.StatusResolved
	if _, _, rerr := d.Store.UpdateConversation(ctx, ev.ConversationID, sessions.ConversationUpdate{Status: &resolved,
		Event: sessions.Event{Author: dialer.AuthorDialer}}); rerr != nil && !errors.Is(rerr, sessions.ErrInvalid) {
		d.log.Warn("dialer: resolving a campaign conversation", slog.String("conversation", ev.ConversationID), slog.Any("error", rerr))
	}
	return stored, appended, err
}
