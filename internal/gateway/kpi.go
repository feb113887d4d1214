package gateway

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/internal/inbox"
	"github.com/omnigate/omnigate/internal/kpi"
)

// buildKPI builds the KPI engine after routing: its counts in
// <data_dir>/kpi.db on one node, in Valkey in a cluster (where the nodes
// lease who counts); told every rep state change by routing. Its routes
// go to the API and its live view to the inbox hub's wallboard frame.
func (g *Gateway) buildKPI(reps []auth.Rep, reg prometheus.Registerer) error {
	if g.cfg.Reports.Disabled {
		return nil
	}
	var store kpi.Store
	if g.cfg.Store.Kind == config.StoreValkey {
		client, err := g.valkeyClient()
		if err != nil {
			return err
		}
		if store, err = kpi.NewValkeyStore(client, kpi.ValkeyOptions{Prefix: g.valkeyPrefix(), Node: nodeName()}); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	} else {
		var err error
		if store, err = kpi.OpenBolt(filepath.Join(g.cfg.DataDir, "kpi.db")); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}
	g.kpiStore = store
	names := map[string]string{}
	for _, r := range reps {
		names[r.ID] = r.Name
	}
	e, err := kpi.New(g.cfg.Reports, kpi.Options{Store: store, Feed: g.store, Router: g.cfg.Routing.RouterConfig(reps),
		Names: names, Metrics: reg, Logger: g.log})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.kpi = e
	g.routing.OnRepState(e.RepState)
	return nil
}

// kpiRoutes are the report routes; none when reports are disabled.
func (g *Gateway) kpiRoutes() []api.Route {
	if g.kpi == nil {
		return nil
	}
	return g.kpi.Routes()
}

// wallboard is the inbox's wallboard source; nil (no frames) when
// reports are disabled.
func (g *Gateway) wallboard() inbox.WallboardSource {
	if g.kpi == nil {
		return nil
	}
	return g.kpi
}

// startKPI starts counting, if reports are enabled.
func (g *Gateway) startKPI() error {
	if g.kpi == nil {
		return nil
	}
	return g.kpi.Start()
}

// closeKPI stops the engine (its last counts added) and closes its store.
func (g *Gateway) closeKPI() error {
	var errs []error
	if g.kpi != nil {
		g.kpi.Close()
	}
	if g.kpiStore != nil {
		if err := g.kpiStore.Close(); err != nil {
			errs = append(errs, fmt.Errorf("gateway: close kpi store: %w", err))
		}
	}
	return errors.Join(errs...)
}
