package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	bolt "go.etcd.io/bbolt"

	"github.com/omnigate/omnigate/channels/sms"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/internal/gateway"
	"github.com/omnigate/omnigate/internal/testredis"
	"github.com/omnigate/omnigate/sessions"
)

// contactConfig is a single node whose notices may go out at any hour (so
// the test does not depend on when it runs) and collapse on one topic
// within a day.
func contactConfig(t *testing.T) config.Config {
	t.Helper()
	y := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 5s
auth:
  admin_keys: [{name: test, key: %s}]
  integrator_keys: [{name: crm, key: %s}]
  reps: [{id: alice, token: %s}]
webchat:
  sites: [{id: demo}]
contact_policy:
  purposes:
    notice:
      quiet_hours: {allowed: "00:00-24:00"}
      duplicate_window: 1d
`, t.TempDir(), adminKey, crmKey, aliceToken)
	c := parseConfig(t, y, nil)
	return c
}

// touchesOf is the customer's ledger once the recorder has handled their
// timeline as it stands.
func touchesOf(t *testing.T, g *gateway.Gateway, customer string) []contact.Touch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := gateway.WaitRecorded(ctx, g, customer); err != nil {
		t.Fatal(err)
	}
	led, _ := gateway.ContactOf(g)
	ts, err := led.Touches(ctx, customer, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestContactPolicyWired: the Sender asks the contact policy. A rep's
// reply in the conversation the customer opened is allowed and on the
// ledger as an outbound service touch, beside the customer's inbound
// message; an integrator's notice on a topic goes out once, its retry is
// the same touch, and a second notice on the topic is refused 409
// contact_refused, duplicate_topic, with nothing sent.
func TestContactPolicyWired(t *testing.T) {
	t.Parallel()
	g, _ := runGateway(t, contactConfig(t))
	base := g.BaseURL()

	v := newVisitor(t, base)
	v.say(t, "my parcel is late")
	var convs []conversation
	waitFor(t, "the visitor's conversation", func() bool {
		convs = conversationsOf(t, base, v.customer)
		return len(convs) == 1
	})
	call(t, base, "POST", "/v1/conversations/"+convs[0].ID+"/messages", aliceToken,
		`{"text":"Let me look","client_id":"r-1"}`, 201, nil)
	ts := touchesOf(t, g, v.customer)
	in := slices.IndexFunc(ts, func(x contact.Touch) bool { return x.Direction == contact.Inbound })
	out := slices.IndexFunc(ts, func(x contact.Touch) bool { return x.Direction == contact.Outbound })
	if len(ts) != 2 || in < 0 || out < 0 || ts[in].Channel != sessions.ChannelWebchat ||
		ts[out].ID != "r-1" || ts[out].Purpose != contact.PurposeService || ts[out].Channel != sessions.ChannelWebchat {
		t.Fatalf("ledger = %+v, want the visitor's message in and the reply r-1 out as service", ts)
	}

	// A conversation on an order, as an integrator's event opens one.
	if _, _, err := gateway.StoreOf(g).OpenConversation(context.Background(), v.customer, "order-42", sessions.ChannelWebchat); err != nil {
		t.Fatal(err)
	}
	notice := func(clientID string, want int, out any) {
		t.Helper()
		call(t, base, "POST", "/v1/customers/"+v.customer+"/messages", crmKey,
			`{"text":"Order 42 ships today","client_id":"`+clientID+`"}`, want, out)
	}
	notice("n-1", 201, nil)
	notice("n-1", 200, nil) // a retry: the same touch, nothing sent again
	var refused struct {
		Error struct {
			Code    string   `json:"code"`
			Reasons []string `json:"reasons"`
		} `json:"error"`
	}
	notice("n-2", 409, &refused)
	if refused.Error.Code != "contact_refused" || !slices.Equal(refused.Error.Reasons, []string{contact.ReasonDuplicateTopic}) {
		t.Fatalf("second notice on the topic: %+v", refused.Error)
	}
	var notices []contact.Touch
	for _, x := range touchesOf(t, g, v.customer) {
		if x.Purpose == contact.PurposeNotice {
			notices = append(notices, x)
		}
	}
	if len(notices) != 1 || notices[0].ID != "n-1" || notices[0].Topic != "order-42" {
		t.Fatalf("notices on the ledger = %+v, want n-1 on order-42 once", notices)
	}
	sent := 0
	for _, ev := range timeline(t, base, v.customer) {
		if ev.Kind == "message_out" && ev.Author == "integrator:crm" {
			sent++
		}
	}
	if sent != 1 {
		t.Fatalf("%d notices on the timeline, want 1", sent)
	}
}

// TestSMSOptOutsMoved: a number the SMS channel's own list held before
// (<data_dir>/sms.db) is on the do-not-contact list after an upgrade, and
// the old file is read once.
func TestSMSOptOutsMoved(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "bolt")
	old := filepath.Join(cfg.DataDir, "sms.db")
	db, err := bolt.Open(old, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("sms_opt_out"))
		if err != nil {
			return err
		}
		return b.Put([]byte("+8613812345678"), []byte(`{"at":"2025-01-02T03:04:05Z","keyword":"TD","provider":"twilio","message_id":"twilio:SM1"}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	g, _ := runGateway(t, cfg)
	_, sups := gateway.ContactOf(g)
	got, _, err := sups.List(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := contact.Suppression{Kind: contact.KindPhone, Value: "+8613812345678", Channel: sessions.ChannelSMS,
		Reason: "texted TD", Source: sms.SourceStop, At: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("do-not-contact list = %+v, want %+v", got, want)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sms.db still there: %v", err)
	}
	if _, err := os.Stat(old + ".migrated"); err != nil {
		t.Error(err)
	}
}

// TestContactCluster: two nodes on one Valkey share the ledger and the
// do-not-contact list. The cluster's old SMS opt-out hash is moved into
// the list at start; a visitor's message, recorded by both nodes'
// recorders, is one touch.
func TestContactCluster(t *testing.T) {
	t.Parallel()
	addr := testredis.Addr(t)
	prefix := fmt.Sprintf("ogcontact%d", time.Now().UnixNano())
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	oldKey := prefix + ":sms:optout"
	if err := client.Do(ctx, client.B().Hset().Key(oldKey).FieldValue().
		FieldValue("+14155550100", `{"at":"2025-01-02T03:04:05Z","keyword":"provider","provider":"twilio"}`).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	var gws []*gateway.Gateway
	for range 2 {
		cfg := contactConfig(t)
		cfg.Store.Kind = config.StoreValkey
		cfg.Store.Valkey.Addrs, cfg.Store.Valkey.KeyPrefix = []string{addr}, prefix
		g, _ := runGateway(t, cfg)
		gws = append(gws, g)
	}
	for i, g := range gws {
		_, sups := gateway.ContactOf(g)
		got, _, err := sups.List(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Value != "+14155550100" || got[0].Source != sms.SourceProvider || got[0].Channel != sessions.ChannelSMS {
			t.Fatalf("node %d: do-not-contact list = %+v", i, got)
		}
	}
	if n, err := client.Do(ctx, client.B().Exists().Key(oldKey).Build()).AsInt64(); err != nil || n != 0 {
		t.Errorf("old opt-out hash: exists=%d err=%v", n, err)
	}

	v := newVisitor(t, gws[0].BaseURL())
	v.say(t, "hello")
	for i, g := range gws {
		if ts := touchesOf(t, g, v.customer); len(ts) != 1 || ts[0].Direction != contact.Inbound {
			t.Fatalf("node %d: ledger = %+v, want the one inbound touch", i, ts)
		}
	}
}
