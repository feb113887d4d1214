package gateway

import (
	"fmt"
	"path/filepath"

	"github.com/omnigate/omnigate/internal/canned"
	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/internal/snooze"
)

// toolParts are the inbox tools' own parts: the canned responses made
// through the API and the snooze timer.
type toolParts struct {
	canned canned.Store
	snooze *snooze.Waker
}

// buildTools opens the canned responses' store (canned.db in data_dir on
// one node; the gateway's Valkey client under the store's key prefix in a
// cluster) and starts the snooze timer, which every node runs (see
// package snooze for what that means).
func (g *Gateway) buildTools() error {
	switch g.cfg.Store.Kind {
	case config.StoreValkey:
		client, err := g.valkeyClient()
		if err != nil {
			return err
		}
		g.tools.canned = canned.NewValkeyStore(client, g.valkeyPrefix())
	default:
		s, err := canned.OpenBolt(filepath.Join(g.cfg.DataDir, "canned.db"))
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		g.tools.canned = s
	}
	w, err := snooze.Start(snooze.Options{Store: g.store, Logger: g.log.With("part", "snooze")})
	if err != nil {
		return fmt.Errorf("gateway: snooze: %w", err)
	}
	g.tools.snooze = w
	return nil
}

// closeTools stops the snooze timer and closes the canned store; either
// may be nil.
func (g *Gateway) closeTools() error {
	if g.tools.snooze != nil {
		g.tools.snooze.Close()
	}
	if g.tools.canned != nil {
		if err := g.tools.canned.Close(); err != nil {
			return fmt.Errorf("gateway: close canned responses: %w", err)
		}
	}
	return nil
}
