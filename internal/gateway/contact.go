package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/valkey-io/valkey-go"
	bolt "go.etcd.io/bbolt"

	"github.com/omnigate/omnigate/channels/sms"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/sessions"
)

// The contact policy's parts: its ledger, the do-not-contact list, the
// policy the Sender asks, and the recorder that puts inbound touches on
// the ledger.

// contactParts is what buildContact opens; shutdown closes it after the
// Sender's users (HTTP, the channels) and before the store.
type contactParts struct {
	ledger   contact.Ledger
	sups     contact.Suppressions
	policy   *contact.Policy
	recorder *contact.Recorder
}

// buildContact opens the ledger and the do-not-contact list (bbolt files
// in data_dir on one node, contact.db and suppressions.db; the gateway's
// Valkey client under the store's key prefix in a cluster, shared by
// every node), moves a do-not-contact list the SMS channel kept before
// into it, builds the policy and starts the recorder.
func (g *Gateway) buildContact() error {
	var err error
	switch g.cfg.Store.Kind {
	case config.StoreValkey:
		client, cerr := g.valkeyClient()
		if cerr != nil {
			return cerr
		}
		if g.contact.ledger, err = contact.NewValkeyLedger(client, g.valkeyPrefix(), contact.LedgerOptions{}); err != nil {
			return fmt.Errorf("gateway: contact ledger: %w", err)
		}
		if g.contact.sups, err = contact.NewValkeySuppressions(client, g.valkeyPrefix()); err != nil {
			return fmt.Errorf("gateway: do-not-contact list: %w", err)
		}
		err = migrateValkeyOptOuts(client, g.valkeyPrefix()+":sms:optout", g.contact.sups, g.log)
	default:
		if g.contact.ledger, err = contact.OpenBoltLedger(filepath.Join(g.cfg.DataDir, "contact.db"), contact.LedgerOptions{}); err != nil {
			return fmt.Errorf("gateway: contact ledger: %w", err)
		}
		if g.contact.sups, err = contact.OpenBoltSuppressions(filepath.Join(g.cfg.DataDir, "suppressions.db")); err != nil {
			return fmt.Errorf("gateway: do-not-contact list: %w", err)
		}
		err = migrateBoltOptOuts(filepath.Join(g.cfg.DataDir, "sms.db"), g.contact.sups, g.log)
	}
	if err != nil {
		return fmt.Errorf("gateway: moving the SMS opt-outs to the do-not-contact list: %w", err)
	}
	g.contact.policy, err = contact.NewPolicy(g.cfg.ContactPolicy, contact.Options{Ledger: g.contact.ledger,
		Suppressions: g.contact.sups, Store: g.store, Logger: g.log.With("part", "contact")})
	if err != nil {
		return err
	}
	// The recorder starts here, not in Run: it subscribes before New
	// returns, so nothing appended once the gateway serves is missed.
	// One per node; with Valkey every node records every event and the
	// touch id (the event's) makes all but the first a no-op.
	g.contact.recorder, err = contact.NewRecorder(context.Background(), g.store, g.contact.ledger, g.log.With("part", "contact"))
	return err
}

// contactDeps is the policy and its stores for the API's routes.
func (g *Gateway) contactDeps() *api.ContactDeps {
	return &api.ContactDeps{Policy: g.contact.policy, Ledger: g.contact.ledger, Suppressions: g.contact.sups}
}

// closeContact stops the recorder and closes the ledger and the list.
// Each may be nil.
func (g *Gateway) closeContact() error {
	var errs []error
	if g.contact.recorder != nil {
		g.contact.recorder.Close()
	}
	if g.contact.sups != nil {
		if err := g.contact.sups.Close(); err != nil {
			errs = append(errs, fmt.Errorf("gateway: close do-not-contact list: %w", err))
		}
	}
	if g.contact.ledger != nil {
		if err := g.contact.ledger.Close(); err != nil {
			errs = append(errs, fmt.Errorf("gateway: close contact ledger: %w", err))
		}
	}
	return errors.Join(errs...)
}

// smsOptOut is how the SMS channel kept an opt-out before the contact
// policy's list existed.
type smsOptOut struct {
	At       time.Time `json:"at"`
	Keyword  string    `json:"keyword"`
	Provider string    `json:"provider,omitempty"`
}

// suppression is o as an entry of the list, as the SMS channel writes
// them now.
func (o smsOptOut) suppression(number string) contact.Suppression {
	s := contact.Suppression{Kind: contact.KindPhone, Value: number, Channel: sessions.ChannelSMS,
		Source: sms.SourceStop, Reason: "texted " + o.Keyword, At: o.At}
	if o.Keyword == "provider" {
		s.Source, s.Reason = sms.SourceProvider, "reported unsubscribed by "+o.Provider
	}
	if s.At.IsZero() {
		s.At = time.Now()
	}
	return s
}

// migrateBoltOptOuts moves the opt-outs of the SMS channel's old file
// (sms.db, bucket sms_opt_out: number → JSON) into sups, then renames the
// file to sms.db.migrated so it is read once. Adding is idempotent, so a
// crash before the rename just moves them again.
func migrateBoltOptOuts(path string, sups contact.Suppressions, log *slog.Logger) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return err
	}
	entries := map[string][]byte{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("sms_opt_out"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			entries[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := addOptOuts(entries, sups, log); err != nil {
		return err
	}
	return os.Rename(path, path+".migrated")
}

// migrateValkeyOptOuts moves the cluster's old opt-out hash (number →
// JSON) into sups and deletes it; every node may run it, and each step is
// safe to run twice.
func migrateValkeyOptOuts(client valkey.Client, key string, sups contact.Suppressions, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := client.Do(ctx, client.B().Hgetall().Key(key).Build()).AsStrMap()
	if err != nil {
		return err
	}
	if len(m) == 0 {
		return nil
	}
	entries := make(map[string][]byte, len(m))
	for k, v := range m {
		entries[k] = []byte(v)
	}
	if err := addOptOuts(entries, sups, log); err != nil {
		return err
	}
	return client.Do(ctx, client.B().Del().Key(key).Build()).Error()
}

// addOptOuts adds the old list's entries to sups. An entry the list
// refuses (it never held one: its numbers were E.164) is logged and
// skipped, so it cannot stop every start; any other failure is returned.
func addOptOuts(entries map[string][]byte, sups contact.Suppressions, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	skipped := 0
	for number, raw := range entries {
		var o smsOptOut
		if err := json.Unmarshal(raw, &o); err != nil {
			o = smsOptOut{Keyword: "STOP"} // the number is what matters
		}
		sup := o.suppression(number)
		err := sups.Add(ctx, sup)
		if errors.Is(err, contact.ErrInvalidSuppression) {
			sup.Reason = "" // a keyword the list refuses must not lose the number
			err = sups.Add(ctx, sup)
		}
		if errors.Is(err, contact.ErrInvalidSuppression) {
			skipped++
			continue
		}
		if err != nil {
			return err
		}
	}
	log.Info("gateway: SMS opt-outs moved to the do-not-contact list", slog.Int("moved", len(entries)-skipped), slog.Int("skipped", skipped))
	return nil
}
