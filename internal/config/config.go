package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/omnigate/omnigate/channels/envsecret"
	"github.com/omnigate/omnigate/channels/sms"
	"github.com/omnigate/omnigate/channels/webchat"
	"github.com/omnigate/omnigate/channels/wechat"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/inbox"
	"github.com/omnigate/omnigate/internal/kpi"
	"github.com/omnigate/omnigate/internal/webhooks"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/router/routing"
	"github.com/omnigate/omnigate/sessions"
)

// Config is the whole gateway configuration.
type Config struct {
	// Listen is the HTTP address (API, widget, inbox, metrics). Empty means
	// 127.0.0.1:8080; port 0 picks a free port.
	Listen string `yaml:"listen"`
	// DataDir holds the embedded store's file. Empty means "data".
	DataDir string `yaml:"data_dir"`
	// ShutdownTimeout bounds the drain of in-flight HTTP requests on
	// SIGINT/SIGTERM; requests still running then are cut. Zero means 10s.
	ShutdownTimeout time.Duration  `yaml:"shutdown_timeout"`
	Log             Log            `yaml:"log"`
	Store           Store          `yaml:"store"`
	Auth            auth.Config    `yaml:"auth"`
	API             api.Config     `yaml:"api"`
	Webchat         webchat.Config `yaml:"webchat"`
	Inbox           inbox.Config   `yaml:"inbox"`
	Routing         Routing        `yaml:"routing"`
	// WeChat is the official accounts answered at /channels/wechat/{key}.
	// No accounts means the channel is off.
	WeChat wechat.Config `yaml:"wechat"`
	// SMS is the providers posting to /channels/sms/{provider}. No
	// providers means the channel is off.
	SMS sms.Config `yaml:"sms"`
	// Webhooks is integrator events in (POST /v1/events) and webhooks out.
	// No integrations means /v1/events refuses every request.
	Webhooks webhooks.Config `yaml:"webhooks"`
	// HTTP bounds what clients may hold of the HTTP server: connections
	// and how long a body may take.
	HTTP HTTP `yaml:"http"`
	// ContactPolicy is the gate every outbound contact passes (contact
	// Config). The zero value is the built-in policy: contacts between
	// 08:00 and 21:00 in the customer's local time, sales and collections
	// deferred while the customer has open work, campaigns locked out
	// for 72h after an abandoned call, no caps; a rep's reply in an open
	// conversation is never held back but by do-not-contact.
	ContactPolicy contact.Config `yaml:"contact_policy"`
	// Reports is the KPIs (GET /v1/reports/kpis) and the wallboard: who
	// may read what, and when the wallboard alerts (kpi Config).
	Reports kpi.Config `yaml:"reports"`
	// Dialer is outbound calling campaigns (Dialer). The zero value is no
	// dialer.
	Dialer Dialer `yaml:"dialer"`
	// Voice is the SIP user agent, its trunks and inbound calls (Voice).
	// The zero value is no SIP.
	Voice Voice `yaml:"voice"`
}

// Routing is who gets each contact, one YAML section for two packages:
// the router's Config (queues and their rings, costs per channel,
// wrap-up, priorities, and under reps the routing attributes of reps from
// auth.reps) and the routing service's (presence grace, reconcile, the
// cluster lease, owner on resolve), whose keys sit side by side. The zero
// value routes every conversation through one queue to any available rep,
// longest idle first.
//
// The router's "reps" key lists routing attributes by the id of a rep in
// auth.reps: skills with levels, languages, tier, capacity, channels,
// sip_uri. Name and role come from auth.reps and may not be set here. A
// rep in auth.reps but not here is routed with the zero attributes: no
// skills, no languages, tier 1, the default capacity.
type Routing struct {
	Router  router.Config  `yaml:",inline"`
	Service routing.Config `yaml:",inline"`
}

// RouterConfig is the router's configuration with every rep in reps
// (auth's: id, name, role) given the routing attributes this section
// lists for them.
func (r Routing) RouterConfig(reps []auth.Rep) router.Config {
	attrs := map[string]router.Rep{}
	for _, a := range r.Router.Reps {
		attrs[a.ID] = a
	}
	rc := r.Router
	rc.Reps = nil
	for _, a := range reps {
		rep := attrs[a.ID]
		rep.ID, rep.Name, rep.Role = a.ID, a.Name, string(a.Role)
		rc.Reps = append(rc.Reps, rep)
	}
	return rc
}

// validate checks the section against the reps auth knows.
func (r Routing) validate(reps []auth.Rep) []error {
	var errs []error
	if err := r.Router.Validate(); err != nil {
		errs = append(errs, prefixed("routing: ", err)...)
	}
	known := map[string]bool{}
	for _, rep := range reps {
		known[rep.ID] = true
	}
	for i, rep := range r.Router.Reps {
		if rep.ID != "" && !known[rep.ID] {
			errs = append(errs, fmt.Errorf("routing.reps[%d]: %q is not a rep in auth.reps", i, rep.ID))
		}
		if rep.Name != "" || rep.Role != "" {
			errs = append(errs, fmt.Errorf("routing.reps[%d]: set name and role in auth.reps, not here", i))
		}
	}
	return append(errs, r.Service.Validate()...)
}

// HTTP bounds what clients may hold of the HTTP server: without them a
// body sent a byte at a time, or connections opened and left, hold the
// process's connections for as long as the sender likes.
type HTTP struct {
	// MaxConnections caps the connections open at once, WebSockets (web
	// chat visitors, reps' inboxes) included. One more is closed as soon
	// as it is accepted, unanswered, and counted in
	// omnigate_http_connections_refused_total: refused rather than queued,
	// because a slot held by a WebSocket may not free for hours, so a
	// queued client would wait without bound, while a refused one fails
	// at once and retries or goes to another node. Zero means 10000.
	MaxConnections int `yaml:"max_connections"`
	// BodyTimeout is how long a request may take to send its body, from
	// when its headers are read: the API, /v1/events and the WeChat and
	// SMS callbacks alike. Slower is answered 408 request_timeout (by the
	// API; the callbacks answer their own error) and the connection is
	// closed. WebSockets are not bound by it. Headers have 10 s of their
	// own. Zero means 10s.
	BodyTimeout time.Duration `yaml:"body_timeout"`
}

// Log configures the process's logger.
type Log struct {
	// Format is "text" or "json". Empty means text.
	Format string `yaml:"format"`
	// Level is debug, info, warn or error. Empty means info.
	Level string `yaml:"level"`
}

// Store chooses and configures the sessions.Store.
type Store struct {
	// Kind is "bolt" (one node, embedded file, nothing else to run) or
	// "valkey" (several gateways sharing a Valkey/Redis server or cluster).
	// Empty means bolt.
	Kind   string `yaml:"kind"`
	Bolt   Bolt   `yaml:"bolt"`
	Valkey Valkey `yaml:"valkey"`
}

// Store kinds.
const (
	StoreBolt   = "bolt"
	StoreValkey = "valkey"
)

// Bolt configures the embedded store.
type Bolt struct {
	// Path is the bbolt file. Empty means <data_dir>/omnigate.db.
	Path string `yaml:"path"`
}

// Valkey configures the cluster store: sessions.ValkeyOptions (addrs, db,
// key_prefix; see there for their zero values) plus where the password
// comes from.
type Valkey struct {
	sessions.ValkeyOptions `yaml:",inline"`
	// PasswordEnv names the environment variable holding the AUTH password;
	// the password is never written in the file. Empty, or a variable that
	// is unset or empty, means the server needs no password.
	PasswordEnv string `yaml:"password_env"`
}

// Default is the configuration before any file is read: a single node on
// 127.0.0.1:8080 with the embedded store under ./data.
func Default() Config {
	var c Config
	c.setDefaults()
	return c
}

// setDefaults fills the fields whose zero value means a default, so the
// rest of the program reads plain values.
func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.HTTP.MaxConnections == 0 {
		c.HTTP.MaxConnections = 10000
	}
	if c.HTTP.BodyTimeout == 0 {
		c.HTTP.BodyTimeout = 10 * time.Second
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Store.Kind == "" {
		c.Store.Kind = StoreBolt
	}
	if c.Store.Bolt.Path == "" {
		c.Store.Bolt.Path = filepath.Join(c.DataDir, "omnigate.db")
	}
	c.Routing.Service = c.Routing.Service.WithDefaults()
}

// Load reads the file at path; lookup reads the environment (os.LookupEnv).
// The error lists every problem found, each on its own line.
func Load(path string, lookup func(string) (string, bool)) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b, lookup)
	if err != nil {
		return Config{}, fmt.Errorf("config %s:\n%w", path, err)
	}
	return c, nil
}

// Parse is Load for a file already read.
func Parse(b []byte, lookup func(string) (string, bool)) (Config, error) {
	c := Default()
	c.Store.Bolt.Path = "" // derived from data_dir unless the file sets it
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && err != io.EOF {
		return Config{}, err
	}
	if err := dec.Decode(new(yaml.Node)); err != io.EOF {
		return Config{}, errors.New("more than one YAML document; put everything in one")
	}
	c.setDefaults()
	envErr := c.ResolveEnv(lookup)
	return c, errors.Join(envErr, c.Validate())
}

// ResolveEnv reads the secrets named by _env fields.
func (c *Config) ResolveEnv(lookup func(string) (string, bool)) error {
	var errs []error
	errs = append(errs, prefixed("auth.", c.Auth.ResolveEnv(lookup))...)
	sites := envsecret.New(lookup)
	for i := range c.Webchat.Sites {
		site := &c.Webchat.Sites[i]
		sites.Resolve(fmt.Sprintf("webchat.sites[%d].secret_env", i), &site.Secret, site.SecretEnv)
	}
	errs = append(errs, sites.Err())
	// wechat names itself in its errors; sms and webhooks do not.
	errs = append(errs, c.WeChat.ResolveEnv(lookup))
	errs = append(errs, prefixed("sms.", c.SMS.ResolveEnv(lookup))...)
	errs = append(errs, prefixed("webhooks.", c.Webhooks.ResolveEnv(lookup))...)
	if env := c.Store.Valkey.PasswordEnv; env != "" {
		if v, ok := lookup(env); ok {
			c.Store.Valkey.Password = v
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		errs = append(errs, fmt.Errorf("listen: %q is not host:port", c.Listen))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: %v is negative", c.ShutdownTimeout))
	}
	if c.HTTP.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("http.max_connections: %d is negative", c.HTTP.MaxConnections))
	}
	if c.HTTP.BodyTimeout < 0 {
		errs = append(errs, fmt.Errorf("http.body_timeout: %v is negative", c.HTTP.BodyTimeout))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Log.Level)); err != nil {
		errs = append(errs, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level))
	}
	switch c.Store.Kind {
	case StoreBolt:
	case StoreValkey:
		v := c.Store.Valkey
		for i, a := range v.Addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				errs = append(errs, fmt.Errorf("store.valkey.addrs[%d]: %q is not host:port", i, a))
			}
		}
		if v.DB < 0 {
			errs = append(errs, fmt.Errorf("store.valkey.db: %d is negative", v.DB))
		}
		if strings.ContainsAny(v.KeyPrefix, "{} \t\r\n") {
			errs = append(errs, fmt.Errorf("store.valkey.key_prefix: %q may not contain braces or spaces", v.KeyPrefix))
		}
	default:
		errs = append(errs, fmt.Errorf("store.kind: %q is not bolt or valkey", c.Store.Kind))
	}
	errs = append(errs, prefixed("auth.", c.Auth.Validate())...)
	errs = append(errs, prefixed("api.", c.API.Validate())...)
	// webchat and inbox name themselves in their errors.
	errs = append(errs, c.Webchat.Validate(), c.Inbox.Validate(), c.WeChat.Validate())
	errs = append(errs, prefixed("sms.", c.SMS.Validate())...)
	errs = append(errs, prefixed("webhooks.", c.Webhooks.Validate())...)
	errs = append(errs, c.Routing.validate(c.Auth.Reps)...)
	// contact_policy names itself in its errors.
	errs = append(errs, c.ContactPolicy.Validate())
	errs = append(errs, c.Reports.Validate()...)
	errs = append(errs, c.Dialer.validate(c.DialerKnown())...)
	errs = append(errs, c.Voice.validate(c.Dialer.Trunk)...)
	return errors.Join(errs...)
}

// SlogLevel is Log.Level parsed; call it on a validated Config.
func (c Config) SlogLevel() slog.Level {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Log.Level))
	return lvl
}

// prefixed puts p before the field name of each joined error.
func prefixed(p string, err error) []error {
	if err == nil {
		return nil
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]error, len(list))
	for i, e := range list {
		out[i] = fmt.Errorf("%s%w", p, e)
	}
	return out
}
