package config_test

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/router/routing"
)

// fakeEnv gives every OMNIGATE_* variable a distinct secret, as an
// operator's environment would.
func fakeEnv(name string) (string, bool) {
	if !strings.HasPrefix(name, "OMNIGATE_") {
		return "", false
	}
	if strings.HasSuffix(name, "_WEBHOOK_SECRET") {
		// Standard Webhooks secrets have a format: whsec_<base64>.
		return "whsec_" + base64.StdEncoding.EncodeToString([]byte("test-secret-for-"+name)), true
	}
	return "test-secret-for-" + name, true
}

func noEnv(string) (string, bool) { return "", false }

func TestLoadEveryExampleConfig(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found only %v in configs/", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			c, err := config.Load(f, fakeEnv)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Auth.AdminKeys) == 0 || len(c.Auth.Reps) == 0 {
				t.Errorf("%s configures no admin key or no reps", f)
			}
		})
	}
}

func TestExampleConfigs(t *testing.T) {
	t.Parallel()
	single, err := config.Load("../../configs/gateway.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if single.Listen != "127.0.0.1:8080" || single.Store.Kind != "bolt" ||
		single.Store.Bolt.Path != filepath.Join("data", "omnigate.db") {
		t.Errorf("gateway.yaml = %+v", single)
	}
	roles := map[string]string{}
	for _, r := range single.Auth.Reps {
		roles[r.ID] = string(r.Role)
	}
	if roles["alice"] != "rep" || roles["bob"] != "rep" || roles["carol"] != "supervisor" {
		t.Errorf("demo reps = %v", roles)
	}

	cluster, err := config.Load("../../configs/gateway-cluster.yaml", fakeEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cluster.Store.Kind != "valkey" || cluster.Store.Valkey.Password != "test-secret-for-OMNIGATE_VALKEY_PASSWORD" ||
		cluster.Auth.AdminKeys[0].Key != "test-secret-for-OMNIGATE_ADMIN_KEY" ||
		cluster.Webchat.Sites[0].Secret != "test-secret-for-OMNIGATE_WEBCHAT_SHOP_SECRET" {
		t.Errorf("cluster secrets not resolved: %+v", cluster.Store.Valkey)
	}
	if cluster.SMS.Providers[0].AuthToken != "test-secret-for-OMNIGATE_TWILIO_AUTH_TOKEN" ||
		!strings.HasPrefix(cluster.Webhooks.Integrations[0].Secret, "whsec_") || !cluster.Webhooks.NoDelivery {
		t.Errorf("cluster sms/webhooks = %+v %+v", cluster.SMS, cluster.Webhooks)
	}
	if len(single.Webhooks.Integrations) != 1 || len(single.SMS.Providers) != 0 || len(single.WeChat.Accounts) != 0 {
		t.Errorf("demo webhooks/sms/wechat = %+v %+v %+v", single.Webhooks, single.SMS, single.WeChat)
	}
	// Without the environment, every missing secret is named at once.
	_, err = config.Load("../../configs/gateway-cluster.yaml", noEnv)
	for _, v := range []string{"OMNIGATE_ADMIN_KEY", "OMNIGATE_CRM_KEY", "OMNIGATE_REP_ALICE_TOKEN", "OMNIGATE_REP_CAROL_TOKEN", "OMNIGATE_WEBCHAT_SHOP_SECRET",
		"sms.providers[0].auth_token_env: environment variable OMNIGATE_TWILIO_AUTH_TOKEN",
		"webhooks.integrations[0].secret_env: environment variable OMNIGATE_CRM_WEBHOOK_SECRET"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Parse(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DataDir != "data" || c.ShutdownTimeout != 10*time.Second ||
		c.Store.Kind != "bolt" || c.Store.Bolt.Path != filepath.Join("data", "omnigate.db") {
		t.Errorf("defaults = %+v", c)
	}
	c, err = config.Parse([]byte("data_dir: /var/lib/omnigate\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Bolt.Path != "/var/lib/omnigate/omnigate.db" {
		t.Errorf("bolt path = %q, want it under data_dir", c.Store.Bolt.Path)
	}
}

func TestUnknownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml, want string }{
		{"top level", "listen: 127.0.0.1:0\nlisten_addr: x\n", "listen_addr"},
		{"nested", "store:\n  kind: bolt\n  bolt:\n    pth: x\n", "pth"},
		{"in a list", "auth:\n  reps:\n    - id: a\n      tokn: x\n", "tokn"},
		{"password in the file", "store:\n  valkey:\n    password: hunter2\n", "password"},
		{"two documents", "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n", "more than one YAML document"},
		{"wrong type", "shutdown_timeout: soon\n", "soon"},
		{"contact policy", "contact_policy:\n  purposes:\n    sales:\n      quite_hours: {}\n", "quite_hours"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	bad := `
listen: localhost
shutdown_timeout: -1s
log: {format: xml, level: loud}
store:
  kind: valkey
  valkey:
    addrs: [nohostport]
    db: -1
    key_prefix: "a{b}"
auth:
  admin_keys:
    - {name: ops, key_env: OMNIGATE_UNSET}
  reps:
    - {id: alice, role: boss, token: short}
api:
  max_body_bytes: -5
contact_policy:
  default_time_zone: Mars/Olympus
  purposes:
    sales:
      caps: [{window: 7d, max: 0}]
`
	_, err := config.Parse([]byte(bad), noEnv)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`listen: "localhost"`,
		"shutdown_timeout",
		"log.format",
		"log.level",
		"store.valkey.addrs[0]",
		"store.valkey.db",
		"store.valkey.key_prefix",
		"auth.admin_keys[0].key_env: environment variable OMNIGATE_UNSET is not set",
		"auth.reps[0].role",
		"auth.reps[0].token: shorter than",
		"api.max_body_bytes",
		"contact_policy.default_time_zone",
		"contact_policy.purposes.sales.caps[0].max",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n < 13 {
		t.Errorf("%d problems reported, want at least 13:\n%v", n, err)
	}
	if _, err := config.Parse([]byte(`store: {kind: sqlite}`), noEnv); err == nil || !strings.Contains(err.Error(), "store.kind") {
		t.Errorf("store.kind sqlite: %v", err)
	}
}

func TestSecretsNotBoth(t *testing.T) {
	t.Parallel()
	y := "auth:\n  admin_keys:\n    - {name: ops, key: abcdefghijklmnopqrstuv, key_env: OMNIGATE_ADMIN_KEY}\n"
	_, err := config.Parse([]byte(y), fakeEnv)
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"), noEnv)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	good := `
auth:
  reps: [{id: alice, token: alice-token-0123456789}, {id: bob, token: bob-token-0123456789}]
routing:
  costs: {webchat: 20}
  wrap_up: {voice: 30s}
  priority: {tiers: {A: 45}, aging: 1m}
  queues:
    - {name: chat, channels: [webchat], skills: {chat: 2}, owner: {wait: 30s}, relaxed: {after: 1m, tier2: true}}
  reps:
    - {id: alice, skills: {chat: 8}, languages: [en, zh], tier: 1, capacity: 80, sip_uri: "sip:alice@pbx.example.com"}
`
	c, err := config.Parse([]byte(good), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Routing.Router
	if r.Cost("webchat") != 20 || r.WrapUp["voice"] != 30*time.Second || r.Priority.Aging != time.Minute ||
		r.Queues[0].Owner.Wait != 30*time.Second || r.Reps[0].Skills["chat"] != 8 || r.Reps[0].Capacity != 80 {
		t.Errorf("routing = %+v", r)
	}
	if sv := c.Routing.Service; sv.PresenceGrace != routing.DefaultPresenceGrace || sv.NodeLease != routing.DefaultNodeLease ||
		sv.SyncInterval != routing.DefaultSyncInterval || sv.ReconcileInterval != routing.DefaultReconcileInterval {
		t.Errorf("defaults not applied: %+v", sv)
	}

	bad := `
auth:
  reps: [{id: alice, token: alice-token-0123456789}]
routing:
  costs: {webchat: 500}
  queues:
    - {name: chat, select: random, offer: {accept_timeout: 20s}}
  reps:
    - {id: alice, name: Alice, tier: 3}
    - {id: zed}
  presence_grace: -1s
  sync_interval: 1s
  node_lease: 2s
`
	_, err = config.Parse([]byte(bad), noEnv)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"cost of webchat is 500",
		`select "random"`,
		"tier 3",
		`routing.reps[1]: "zed" is not a rep in auth.reps`,
		"routing.reps[0]: set name and role in auth.reps",
		"routing.presence_grace",
		"routing.node_lease",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if _, err := config.Parse([]byte("routing:\n  reps:\n    - {id: a, skils: {x: 1}}\n"), noEnv); err == nil || !strings.Contains(err.Error(), "skils") {
		t.Errorf("typo in routing.reps: %v", err)
	}
}

func TestChannelSectionsNamedOnce(t *testing.T) {
	t.Parallel()
	y := "wechat:\n  accounts: [{key: main}]\nsms:\n  providers: [{name: tw, kind: fax}]\nwebhooks:\n  integrations: [{name: crm, secret: nope}]\n"
	_, err := config.Parse([]byte(y), noEnv)
	for _, want := range []string{"\nwechat: accounts[0]", "\nsms.providers[0].kind", "\nwebhooks.integrations[0].secret"} {
		if err == nil || !strings.Contains("\n"+err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "wechat.wechat") || strings.Contains(err.Error(), "sms.sms") {
		t.Errorf("double prefix:\n%v", err)
	}
}
