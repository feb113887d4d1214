package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/router/routing"
)

// The parts of a gateway that exist only in a cluster, or differ there:
// the routing service's shared state and the gateway's Valkey client.

// buildRouting builds the routing service: every rep in auth.reps, with
// the routing attributes the routing section gives them. With the valkey
// store its router claims through a router.ValkeyState on the gateway's
// client, one node per process.
func (g *Gateway) buildRouting(reps []auth.Rep, reg prometheus.Registerer) error {
	o := routing.Options{Store: g.store, Metrics: reg, Logger: g.log}
	if g.cfg.Store.Kind == config.StoreValkey {
		client, err := g.valkeyClient()
		if err != nil {
			return err
		}
		st, err := router.NewValkeyNodeState(client, g.valkeyPrefix(), nodeName())
		if err != nil {
			return fmt.Errorf("gateway: routing: %w", err)
		}
		o.State = st
	}
	svc, err := routing.New(g.cfg.Routing.Service, g.cfg.Routing.RouterConfig(reps), o)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.routing = svc
	return nil
}

// nodeName is unique per process: host, pid and a random part, so a
// restarted process never inherits a dead one's lease.
func nodeName() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r == '|' || r <= ' ' {
			return '-'
		}
		return r
	}, host)
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// valkeyClient is the client the gateway's own cluster state (routing,
// typing, WeChat tokens and nonces) goes through, made on first use; the
// store has its own.
func (g *Gateway) valkeyClient() (valkey.Client, error) {
	if g.valkey != nil {
		return g.valkey, nil
	}
	client, err := dialValkey(g.cfg.Store)
	if err != nil {
		return nil, err
	}
	g.valkey = client
	return client, nil
}

// dialValkey makes a client for the store's Valkey server (without
// client-side caching: the gateway's keys are written by every node).
func dialValkey(c config.Store) (valkey.Client, error) {
	v := c.Valkey
	addrs := v.Addrs
	if len(addrs) == 0 {
		addrs = []string{"127.0.0.1:6379"}
	}
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: addrs, Password: v.Password,
		SelectDB: v.DB, DisableCache: true})
	if err != nil {
		return nil, fmt.Errorf("gateway: valkey %v: %w", addrs, err)
	}
	return client, nil
}

// valkeyPrefix is the store's key prefix, which the gateway's own keys
// and channels share.
func (g *Gateway) valkeyPrefix() string {
	if p := g.cfg.Store.Valkey.KeyPrefix; p != "" {
		return p
	}
	return "og"
}
