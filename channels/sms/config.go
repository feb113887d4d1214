package sms

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/omnigate/omnigate/channels/envsecret"
	"github.com/omnigate/omnigate/channels/signing"
	"github.com/omnigate/omnigate/sessions"
)

// Config is the sms section of the gateway's configuration. Every field's
// comment says what its zero value means.
type Config struct {
	// Providers are the SMS gateways Omnigate talks to. Empty means SMS is
	// off: the gateway builds no adapter and sends nothing.
	Providers []ProviderConfig `yaml:"providers"`
	// Outbound names the provider that sends messages to customers. Empty
	// means the first provider.
	Outbound string `yaml:"outbound"`
	// DefaultRegion is the ISO 3166 region ("CN", "US") in which numbers
	// written without a country code are read. Empty means such numbers
	// are refused; numbers from providers normally arrive in E.164 anyway.
	DefaultRegion string `yaml:"default_region"`
	// OptOutKeywords put the sender's number on the SMS do-not-contact
	// list when a message is exactly one of them (trimmed, any case).
	// Empty means STOP, UNSUBSCRIBE, 退订 and TD.
	OptOutKeywords []string `yaml:"opt_out_keywords"`
	// OptInKeywords take the number off the list again. Empty means START.
	OptInKeywords []string `yaml:"opt_in_keywords"`
	// OptOutReply is sent once, when a number goes on the list. Empty means
	// a short English and Chinese confirmation; "-" means send nothing.
	OptOutReply string `yaml:"opt_out_reply"`
	// OptInReply is sent once, when a number comes off the list. Empty
	// means a short English and Chinese confirmation; "-" means nothing.
	OptInReply string `yaml:"opt_in_reply"`
	// MaxBodyBytes caps one webhook body from a provider; larger bodies
	// get 413. Zero means 64 KiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// SendTimeout bounds one call to a provider's API. Zero means 15s.
	SendTimeout time.Duration `yaml:"send_timeout"`
}

// Provider kinds.
const (
	KindTwilio = "twilio"
	KindJSON   = "json"
)

// ProviderConfig is one SMS gateway account.
type ProviderConfig struct {
	// Name is the provider's key in its webhook path,
	// /channels/sms/{name}, and in message ids ("<name>:<provider id>").
	// Required: 1 to 32 lower-case letters, digits, '-' or '_'.
	Name string `yaml:"name"`
	// Kind is "twilio" (Twilio or a Twilio-compatible API) or "json" (the
	// generic JSON protocol signed with Standard Webhooks, see
	// provider_json.go). Required.
	Kind string `yaml:"kind"`
	// From is the sender: an E.164 number, or for Twilio an alphanumeric
	// sender id. Required unless MessagingServiceSID is set. Replies to an
	// inbound message go from the number the customer wrote to instead.
	From string `yaml:"from"`
	// PublicURL is the exact URL the provider calls for this provider's
	// webhooks, as configured in its console, such as
	// https://gw.example.com/channels/sms/twilio. Twilio signs this URL, and
	// behind a proxy or TLS terminator the URL the gateway sees differs.
	// It is also where delivery reports are requested. Empty means the URL
	// is rebuilt from the request (scheme and Host header), which is right
	// only when nothing sits in front of the gateway, and no delivery
	// reports are requested.
	PublicURL string `yaml:"public_url"`

	// AccountSID is the Twilio account (AC...). Required for twilio. A
	// webhook whose AccountSid is another account's is refused (403),
	// even when correctly signed; one with none is refused (400).
	AccountSID string `yaml:"account_sid"`
	// AuthToken is the Twilio auth token: it signs Twilio's webhooks and,
	// with AccountSID, authenticates API calls. Set it from the
	// environment (AuthTokenEnv), not this file. Required for twilio.
	AuthToken string `yaml:"auth_token"`
	// AuthTokenEnv names the environment variable holding AuthToken.
	// Empty means AuthToken is used as written.
	AuthTokenEnv string `yaml:"auth_token_env"`
	// MessagingServiceSID (MG...) sends through a Twilio Messaging Service
	// instead of From. Empty means From.
	MessagingServiceSID string `yaml:"messaging_service_sid"`
	// BaseURL is the Twilio-compatible API root. Empty means
	// https://api.twilio.com.
	BaseURL string `yaml:"base_url"`

	// URL is where the json provider POSTs outbound messages. Required for
	// json.
	URL string `yaml:"url"`
	// Secret is the json provider's Standard Webhooks secret
	// ("whsec_<base64>"), used both ways: it verifies the gateway's
	// webhooks and signs what Omnigate sends it. Set it from the
	// environment (SecretEnv). Required for json.
	Secret string `yaml:"secret"`
	// SecretEnv names the environment variable holding Secret. Empty means
	// Secret is used as written.
	SecretEnv string `yaml:"secret_env"`
}

var nameRe = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// ResolveEnv fills AuthToken and Secret from the variables their *_env
// fields name. Call it before Validate.
func (c *Config) ResolveEnv(lookup func(string) (string, bool)) error {
	env := envsecret.New(lookup)
	for i := range c.Providers {
		p := &c.Providers[i]
		env.Resolve(fmt.Sprintf("providers[%d].auth_token_env", i), &p.AuthToken, p.AuthTokenEnv)
		env.Resolve(fmt.Sprintf("providers[%d].secret_env", i), &p.Secret, p.SecretEnv)
	}
	return env.Err()
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	names := map[string]bool{}
	for i, p := range c.Providers {
		f := fmt.Sprintf("providers[%d]", i)
		if !nameRe.MatchString(p.Name) {
			add("%s.name: %q must be 1 to 32 lower-case letters, digits, '-' or '_'", f, p.Name)
		} else if names[p.Name] {
			add("%s.name: %q used twice", f, p.Name)
		}
		names[p.Name] = true
		if p.PublicURL != "" {
			if u, err := url.Parse(p.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
				add("%s.public_url: %q is not an absolute http(s) URL without a query", f, p.PublicURL)
			}
		}
		switch p.Kind {
		case KindTwilio:
			if !strings.HasPrefix(p.AccountSID, "AC") {
				add("%s.account_sid: required for twilio, starts with AC", f)
			}
			if p.AuthToken == "" {
				add("%s.auth_token: required for twilio (or auth_token_env)", f)
			}
			if p.From == "" && p.MessagingServiceSID == "" {
				add("%s: from or messaging_service_sid is required", f)
			}
			if p.BaseURL != "" {
				if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					add("%s.base_url: %q is not an absolute http(s) URL", f, p.BaseURL)
				}
			}
			if p.URL != "" || p.Secret != "" {
				add("%s: url and secret are for kind json", f)
			}
		case KindJSON:
			if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				add("%s.url: %q is not an absolute http(s) URL", f, p.URL)
			}
			if _, err := signing.ParseSecret(p.Secret); err != nil {
				add("%s.secret: %v", f, err)
			}
			if p.From != "" {
				// Shape only: a sender number may be a service number
				// outside the ranges phonenumbers lists for customers.
				if !sessions.IsE164(p.From) {
					add("%s.from: %q is not E.164 (+ and 2 to 15 digits)", f, p.From)
				}
			}
			if p.AccountSID != "" || p.AuthToken != "" || p.MessagingServiceSID != "" || p.BaseURL != "" {
				add("%s: account_sid, auth_token, messaging_service_sid and base_url are for kind twilio", f)
			}
		default:
			add("%s.kind: %q is not twilio or json", f, p.Kind)
		}
	}
	if c.Outbound != "" && !names[c.Outbound] {
		add("outbound: no provider named %q", c.Outbound)
	}
	if c.DefaultRegion != "" && !sessions.ValidPhoneRegion(c.DefaultRegion) {
		add("default_region: %q is not an ISO 3166 region phone numbers know", c.DefaultRegion)
	}
	for _, k := range append(append([]string(nil), c.OptOutKeywords...), c.OptInKeywords...) {
		if strings.TrimSpace(k) == "" {
			add("opt_out_keywords/opt_in_keywords: empty keyword")
		}
	}
	if c.MaxBodyBytes < 0 || c.MaxBodyBytes > 1<<20 {
		add("max_body_bytes: %d is not between 0 and 1 MiB", c.MaxBodyBytes)
	}
	if c.SendTimeout < 0 {
		add("send_timeout: %v is negative", c.SendTimeout)
	}
	return errors.Join(errs...)
}

// Default confirmations, short enough for one UCS-2 message each (70).
const (
	defaultOptOutReply = "You are unsubscribed. Reply START to resubscribe. 您已退订，回复START恢复。"
	defaultOptInReply  = "You are subscribed again. Reply STOP to stop. 您已恢复订阅，回复TD退订。"
)

func (c Config) withDefaults() Config {
	if c.Outbound == "" && len(c.Providers) > 0 {
		c.Outbound = c.Providers[0].Name
	}
	if len(c.OptOutKeywords) == 0 {
		c.OptOutKeywords = []string{"STOP", "UNSUBSCRIBE", "退订", "TD"}
	}
	if len(c.OptInKeywords) == 0 {
		c.OptInKeywords = []string{"START"}
	}
	switch c.OptOutReply {
	case "":
		c.OptOutReply = defaultOptOutReply
	case "-":
		c.OptOutReply = ""
	}
	switch c.OptInReply {
	case "":
		c.OptInReply = defaultOptInReply
	case "-":
		c.OptInReply = ""
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 15 * time.Second
	}
	return c
}
