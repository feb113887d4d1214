package sip

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the voice section of the gateway's YAML: the one user agent's
// listen address and the trunks it places calls through.
type Config struct {
	// Listen is the UA's SIP address, host:port, for UDP and (when a trunk
	// uses it) TCP. The host must be an IP: it goes into Via, Contact and
	// the SDP's c= line, where the trunk and the reps' phones send to.
	// Port 0 picks a free port (tests). Required.
	Listen string `yaml:"listen"`
	// Trunks by name; the dialer's campaigns name one. At least one.
	Trunks map[string]TrunkConfig `yaml:"trunks"`
}

// TrunkConfig is one SIP trunk: where calls go and who they are from.
type TrunkConfig struct {
	// Proxy is the trunk's outbound proxy or registrar, host:port; every
	// customer INVITE goes there with the customer's number as the user
	// part of the request URI. Required.
	Proxy string `yaml:"proxy"`
	// Transport is "udp" or "tcp". Empty means udp.
	Transport string `yaml:"transport"`
	// FromUser and FromDomain make the From header
	// (sip:FromUser@FromDomain). Empty FromDomain means the proxy's host;
	// FromUser is required.
	FromUser   string `yaml:"from_user"`
	FromDomain string `yaml:"from_domain"`
	// CallerID is the number presented (P-Asserted-Identity) when the
	// dialer gives none, E.164. Empty means none unless the dial has one.
	CallerID string `yaml:"caller_id"`
	// AuthUser answers the trunk's 401/407 digest challenges, with the
	// password read from the environment variable AuthPasswordEnv (never
	// from the file). Empty AuthUser means no authentication.
	AuthUser        string `yaml:"auth_user"`
	AuthPasswordEnv string `yaml:"auth_password_env"`
	// Trusted says the trunk asserts caller numbers (P-Asserted-Identity
	// on inbound calls is evidence of the number); false means a caller id
	// from this trunk is recorded as unverified.
	Trusted bool `yaml:"trusted"`
	// CallsPerSecond caps new calls (out and in) per second; beyond it
	// Dial returns dialer.ErrTrunkBusy and inbound INVITEs get 503.
	// 0 means 10.
	CallsPerSecond int `yaml:"calls_per_second"`
	// MaxCalls caps calls up at once on this trunk. 0 means 100.
	MaxCalls int `yaml:"max_calls"`

	password string
}

// Defaults for the zero values documented above.
const (
	defaultCallsPerSecond = 10
	defaultMaxCalls       = 100
)

// LoadConfig decodes the voice YAML strictly (an unknown key is an
// error), reads each trunk's password from its environment variable, and
// validates.
func LoadConfig(r io.Reader) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("sip: config: %w", err)
	}
	if err := c.Prepare(os.Getenv); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Prepare fills defaults, reads passwords through getenv and validates,
// returning every problem at once. A gateway embedding Config in its own
// file calls it after decoding.
func (c *Config) Prepare(getenv func(string) string) error {
	var errs []error
	if host, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("sip: listen %q: %w", c.Listen, err))
	} else if net.ParseIP(host) == nil {
		errs = append(errs, fmt.Errorf("sip: listen %q: host must be an IP address", c.Listen))
	}
	if len(c.Trunks) == 0 {
		errs = append(errs, errors.New("sip: no trunks"))
	}
	for name, t := range c.Trunks {
		if err := t.prepare(getenv); err != nil {
			errs = append(errs, fmt.Errorf("sip: trunk %q: %w", name, err))
		}
		c.Trunks[name] = t
	}
	return errors.Join(errs...)
}

func (t *TrunkConfig) prepare(getenv func(string) string) error {
	var errs []error
	if t.Transport == "" {
		t.Transport = "udp"
	}
	t.Transport = strings.ToLower(t.Transport)
	if t.Transport != "udp" && t.Transport != "tcp" {
		errs = append(errs, fmt.Errorf("transport %q: want udp or tcp", t.Transport))
	}
	host, _, err := net.SplitHostPort(t.Proxy)
	if err != nil {
		errs = append(errs, fmt.Errorf("proxy %q: %w", t.Proxy, err))
	}
	if t.FromDomain == "" {
		t.FromDomain = host
	}
	if !isToken(t.FromUser) {
		errs = append(errs, fmt.Errorf("from_user %q: want a SIP user token", t.FromUser))
	}
	if t.CallerID != "" && !isNumber(t.CallerID) {
		errs = append(errs, fmt.Errorf("caller_id %q: want an E.164 number", t.CallerID))
	}
	if t.AuthUser != "" {
		if t.AuthPasswordEnv == "" {
			errs = append(errs, errors.New("auth_user without auth_password_env"))
		} else if t.password = getenv(t.AuthPasswordEnv); t.password == "" {
			errs = append(errs, fmt.Errorf("auth_password_env %s is empty", t.AuthPasswordEnv))
		}
	}
	if t.CallsPerSecond < 0 || t.MaxCalls < 0 {
		errs = append(errs, errors.New("calls_per_second and max_calls may not be negative"))
	}
	if t.CallsPerSecond == 0 {
		t.CallsPerSecond = defaultCallsPerSecond
	}
	if t.MaxCalls == 0 {
		t.MaxCalls = defaultMaxCalls
	}
	return errors.Join(errs...)
}

// isNumber accepts E.164: an optional + and 3 to 15 digits.
func isNumber(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if len(s) < 3 || len(s) > 15 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// isToken accepts the characters RFC 3261 allows unescaped in a user part
// and a Call-ID word, so an id from outside never breaks a header.
func isToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-_.!~*'+%", r):
		default:
			return false
		}
	}
	return true
}
