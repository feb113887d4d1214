package gateway

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/channels/sms"
	"github.com/omnigate/omnigate/channels/webchat"
	"github.com/omnigate/omnigate/channels/wechat"
	"github.com/omnigate/omnigate/internal/config"
)

// Building and closing the channels' own parts.

// buildWeChat builds the WeChat adapter. In a cluster its access tokens
// and callback nonces live in Valkey, shared by every node. On one node
// the nonces live in a bbolt file of their own beside the store
// (<data_dir>/wechat.db), so a restart does not forget them; a file of
// their own because every existing one belongs to another package, and
// bbolt lets one opener have a file.
func (g *Gateway) buildWeChat(reg prometheus.Registerer) error {
	o := wechat.Options{Store: g.store, Logger: g.log.With("channel", "wechat"), Metrics: reg, Suppressions: g.contact.sups}
	switch g.cfg.Store.Kind {
	case config.StoreValkey:
		client, err := g.valkeyClient()
		if err != nil {
			return err
		}
		o.TokenCache = wechat.NewValkeyCache(client, g.valkeyPrefix()+":")
	default:
		n, err := wechat.OpenBoltNonces(filepath.Join(g.cfg.DataDir, "wechat.db"), nil)
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		o.Nonces, g.wnonces = n, n
	}
	a, err := wechat.New(g.cfg.WeChat, o)
	if err != nil {
		return err
	}
	g.wechat = a
	return nil
}

// buildSMS builds the SMS adapter; its opt-outs go on the contact
// policy's do-not-contact list.
func (g *Gateway) buildSMS() error {
	a, err := sms.New(g.cfg.SMS, sms.Options{Store: g.store, Suppressions: g.contact.sups, Logger: g.log.With("channel", "sms")})
	if err != nil {
		return err
	}
	g.sms = a
	return nil
}

// closeParts closes what build opened besides the routing service, the
// sockets and the store, in the order shutdown needs: the channels (and
// webhooks), the inbox tools, then the contact policy's parts, which the channels write
// to, then the gateway's Valkey client, which both use. The store stays
// open.
func (g *Gateway) closeParts() error {
	err := errors.Join(g.closeKPI(), g.closeVoice(), g.closeChannels(), g.closeTools(), g.closeDialer(), g.closeContact())
	if g.valkey != nil {
		g.valkey.Close()
	}
	return err
}

// closeChannels stops webhooks and closes the channels' own resources, in
// the order shutdown needs: webhooks (attempts in flight recorded), its
// outbox, reps' typing to wechat, wechat, its nonce file, then typing
// across nodes. Each may be nil.
func (g *Gateway) closeChannels() error {
	var errs []error
	if g.webhooks != nil {
		g.webhooks.Close()
	}
	if g.outbox != nil {
		if err := g.outbox.Close(); err != nil {
			errs = append(errs, fmt.Errorf("gateway: close webhooks outbox: %w", err))
		}
	}
	if g.wtyping != nil {
		g.wtyping.close()
	}
	if g.wechat != nil {
		_ = g.wechat.Close()
	}
	if g.wnonces != nil {
		if err := g.wnonces.Close(); err != nil {
			errs = append(errs, fmt.Errorf("gateway: close wechat nonces: %w", err))
		}
	}
	if g.vtyping != nil {
		g.vtyping.Close()
	}
	return errors.Join(errs...)
}

// wechatKeys are the configured official accounts' keys, the namespaces
// of their OpenIDs.
func wechatKeys(c wechat.Config) []string {
	keys := make([]string, len(c.Accounts))
	for i, a := range c.Accounts {
		keys[i] = a.Key
	}
	return keys
}

// siteIDs are the configured web chat sites' ids, the namespaces of
// their visitors and site users.
func siteIDs(c webchat.Config) []string {
	ids := make([]string, len(c.Sites))
	for i, s := range c.Sites {
		ids[i] = s.ID
	}
	return ids
}

// demoSite is the site the demo page's widget uses: "demo" when configured,
// else the first site.
func demoSite(c webchat.Config) string {
	for _, s := range c.Sites {
		if s.ID == "demo" {
			return s.ID
		}
	}
	if len(c.Sites) > 0 {
		return c.Sites[0].ID
	}
	return "demo"
}
