package webhooks

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/omnigate/omnigate/channels/envsecret"
	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/sessions"
)

// Config is the webhooks section of the gateway's configuration. Every
// field's comment says what its zero value means.
type Config struct {
	// Integrations may POST events to /v1/events, each signing with its own
	// Standard Webhooks secret; the secret that verifies a request names
	// the integration ("integrator:<name>" on the timeline). Empty means
	// /v1/events refuses every request with 401.
	Integrations []Integration `yaml:"integrations"`
	// Endpoints receive Omnigate's webhooks, beside those registered
	// through the API. Empty means only API-registered ones.
	Endpoints []EndpointConfig `yaml:"endpoints"`
	// MaxBodyBytes caps an event posted to /v1/events; larger gets 413.
	// Zero means 32 KiB, which keeps the event under the store's payload
	// cap.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// DefaultRegion is the ISO 3166 region in which phone numbers in events
	// without a country code are read. Empty means numbers must be
	// international (+86...).
	DefaultRegion string `yaml:"default_region"`
	// NoDelivery stops this node from following the store and delivering
	// webhooks; it still takes events. Zero (false) delivers. In a cluster
	// set it on every node but one: the outbox is a file of its node (see
	// the package doc).
	NoDelivery bool `yaml:"no_delivery"`
	// AllowHTTP lets endpoints use plain http:// URLs. Zero means https://
	// only (payloads carry customers' messages).
	AllowHTTP bool `yaml:"allow_http"`
	// Concurrency caps deliveries in flight to one endpoint unless the
	// endpoint sets its own. Zero means 4.
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds one delivery attempt, response included. Zero means
	// 10s.
	Timeout time.Duration `yaml:"timeout"`
	// RetryBase is the delay before the first retry; each further retry
	// doubles it, with jitter (half fixed, half random). Zero means 5s.
	RetryBase time.Duration `yaml:"retry_base"`
	// RetryMax caps one retry delay. Zero means 1h.
	RetryMax time.Duration `yaml:"retry_max"`
	// MaxAge is how long a delivery is retried before it becomes a dead
	// letter. Zero means 24h.
	MaxAge time.Duration `yaml:"max_age"`
	// DisableAfter disables an endpoint whose every attempt has failed for
	// this long; its pending deliveries become dead letters and the admin
	// is told (error log, metric, Options.OnDisable). Zero means 24h.
	DisableAfter time.Duration `yaml:"disable_after"`
	// Retention is how long delivered deliveries and the delivery log are
	// kept. Zero means 7 days.
	Retention time.Duration `yaml:"retention"`
	// DeadRetention is how long dead letters are kept for replay. Zero
	// means 30 days.
	DeadRetention time.Duration `yaml:"dead_retention"`
	// PollInterval is how often due retries are looked for. Zero means 1s.
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Integration is one system that posts events.
type Integration struct {
	// Name appears as "integrator:<name>" on timelines. Required: 1 to 64
	// letters, digits, '.', '_' or '-'.
	Name string `yaml:"name"`
	// Secret is the Standard Webhooks secret, "whsec_<base64>" of at least
	// 24 bytes. Set it from the environment (SecretEnv).
	Secret string `yaml:"secret"`
	// SecretEnv names the environment variable holding Secret. Empty means
	// Secret is used as written.
	SecretEnv string `yaml:"secret_env"`
	// PreviousSecret is also accepted, during a rotation. Empty means none.
	PreviousSecret string `yaml:"previous_secret"`
}

// EndpointConfig is one endpoint from the file.
type EndpointConfig struct {
	// ID names the endpoint in the API and logs. Required: 1 to 64
	// letters, digits, '.', '_' or '-', not starting with "ep_".
	ID string `yaml:"id"`
	// URL receives the POSTs. Required, https unless AllowHTTP.
	URL string `yaml:"url"`
	// Secret signs the deliveries ("whsec_<base64>"). Set it from the
	// environment (SecretEnv). Required.
	Secret string `yaml:"secret"`
	// SecretEnv names the environment variable holding Secret.
	SecretEnv string `yaml:"secret_env"`
	// EventTypes are the event kinds delivered. Empty means all.
	EventTypes []string `yaml:"event_types"`
	// MaxConcurrency caps deliveries in flight. Zero means
	// Config.Concurrency.
	MaxConcurrency int    `yaml:"max_concurrency"`
	Description    string `yaml:"description"`
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// EventKinds are the names an endpoint may filter on.
var EventKinds = []string{
	string(sessions.KindMessageIn), string(sessions.KindMessageOut), string(sessions.KindNote),
	string(sessions.KindAssignment), string(sessions.KindTransfer), string(sessions.KindStatusChange),
	string(sessions.KindCall), string(sessions.KindIdentityLinked), string(sessions.KindMerged),
	string(sessions.KindIntegrator), string(sessions.KindDelivery), string(sessions.KindOffer), "*",
}

// ResolveEnv fills secrets from the variables their *_env fields name.
func (c *Config) ResolveEnv(lookup func(string) (string, bool)) error {
	env := envsecret.New(lookup)
	for i := range c.Integrations {
		env.Resolve(fmt.Sprintf("integrations[%d].secret_env", i), &c.Integrations[i].Secret, c.Integrations[i].SecretEnv)
	}
	for i := range c.Endpoints {
		env.Resolve(fmt.Sprintf("endpoints[%d].secret_env", i), &c.Endpoints[i].Secret, c.Endpoints[i].SecretEnv)
	}
	return env.Err()
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	names := map[string]bool{}
	secrets := map[string]string{}
	for i, in := range c.Integrations {
		f := fmt.Sprintf("integrations[%d]", i)
		if !nameRe.MatchString(in.Name) {
			add("%s.name: %q must be 1 to 64 letters, digits, '.', '_' or '-'", f, in.Name)
		} else if names[in.Name] {
			add("%s.name: %q used twice", f, in.Name)
		}
		names[in.Name] = true
		for field, s := range map[string]string{"secret": in.Secret, "previous_secret": in.PreviousSecret} {
			if s == "" && field == "previous_secret" {
				continue
			}
			sec, err := signing.ParseSecret(s)
			if err != nil {
				add("%s.%s: %v", f, field, err)
				continue
			}
			// The secret that verifies names the integration: two sharing
			// one would make the author ambiguous.
			if other, dup := secrets[sec.String()]; dup {
				add("%s.%s: same secret as %s", f, field, other)
			}
			secrets[sec.String()] = f
		}
	}
	ids := map[string]bool{}
	for i, e := range c.Endpoints {
		f := fmt.Sprintf("endpoints[%d]", i)
		if !nameRe.MatchString(e.ID) || len(e.ID) >= 3 && e.ID[:3] == "ep_" {
			add("%s.id: %q must be 1 to 64 letters, digits, '.', '_' or '-', not starting with ep_", f, e.ID)
		} else if ids[e.ID] {
			add("%s.id: %q used twice", f, e.ID)
		}
		ids[e.ID] = true
		if err := checkURL(e.URL, c.AllowHTTP); err != nil {
			add("%s.url: %v", f, err)
		}
		if _, err := signing.ParseSecret(e.Secret); err != nil {
			add("%s.secret: %v", f, err)
		}
		if err := checkEventTypes(e.EventTypes); err != nil {
			add("%s.event_types: %v", f, err)
		}
		if e.MaxConcurrency < 0 || e.MaxConcurrency > 64 {
			add("%s.max_concurrency: %d is not between 0 and 64", f, e.MaxConcurrency)
		}
	}
	if c.MaxBodyBytes < 0 || c.MaxBodyBytes > 48<<10 {
		add("max_body_bytes: %d is not between 0 and 48 KiB (events must fit the store's 64 KiB payload)", c.MaxBodyBytes)
	}
	if c.Concurrency < 0 || c.Concurrency > 64 {
		add("concurrency: %d is not between 0 and 64", c.Concurrency)
	}
	for name, d := range map[string]time.Duration{"timeout": c.Timeout, "retry_base": c.RetryBase, "retry_max": c.RetryMax,
		"max_age": c.MaxAge, "disable_after": c.DisableAfter, "retention": c.Retention, "dead_retention": c.DeadRetention,
		"poll_interval": c.PollInterval} {
		if d < 0 {
			add("%s: %v is negative", name, d)
		}
	}
	return errors.Join(errs...)
}

func checkURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || len(raw) > 2048 {
		return fmt.Errorf("%q is not an absolute URL without credentials", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	default:
		if allowHTTP {
			return fmt.Errorf("%q is not http(s)", raw)
		}
		return fmt.Errorf("%q is not https (allow_http permits http)", raw)
	}
	return nil
}

func checkEventTypes(types []string) error {
	for _, t := range types {
		ok := false
		for _, k := range EventKinds {
			ok = ok || t == k
		}
		if !ok {
			return fmt.Errorf("%q is not an event kind (%v)", t, EventKinds)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 32 << 10
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	def(&c.Timeout, 10*time.Second)
	def(&c.RetryBase, 5*time.Second)
	def(&c.RetryMax, time.Hour)
	def(&c.MaxAge, 24*time.Hour)
	def(&c.DisableAfter, 24*time.Hour)
	def(&c.Retention, 7*24*time.Hour)
	def(&c.DeadRetention, 30*24*time.Hour)
	def(&c.PollInterval, time.Second)
	return c
}
