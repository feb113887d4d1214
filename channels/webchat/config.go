package webchat

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// Config is the webchat section of the gateway's configuration. Every
// field's comment says what its zero value means.
type Config struct {
	// Sites are the web sites that embed the widget. Empty means no site:
	// every connection is refused with 404.
	Sites []Site `yaml:"sites"`
	// MessageBufferSize is how many frames may wait for one visitor's
	// socket. Zero means 16. Timeline events that would go past three
	// quarters of it wait for the socket (up to SlowTimeout); other frames
	// that find it full get the client cut off as slow (CloseSlow).
	MessageBufferSize int `yaml:"message_buffer_size"`
	// SlowTimeout is how long the server waits for a visitor's socket to
	// drain before closing it with CloseSlow. Zero means 10s.
	SlowTimeout time.Duration `yaml:"slow_timeout"`
	// WriteTimeout bounds one write to a socket. Zero means 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// PingInterval is how often the server pings an idle socket; a client
	// that answers no ping for twice this long is dropped. Zero means 25s,
	// under the 60s idle timeout of common proxies.
	PingInterval time.Duration `yaml:"ping_interval"`
	// HelloTimeout is how long a new socket may wait before its hello
	// frame. Zero means 10s.
	HelloTimeout time.Duration `yaml:"hello_timeout"`
	// HistoryEvents is how many of the latest timeline events (visible or
	// not) a client that has seen nothing yet (hello with after 0) is sent.
	// Zero means 200.
	HistoryEvents int `yaml:"history_events"`
	// AvailabilityInterval is how often each site's availability (are reps
	// there to chat?) is asked again and, if it changed, pushed to every
	// visitor of the site. Zero means 15s.
	AvailabilityInterval time.Duration `yaml:"availability_interval"`
	// TrustedProxies are the networks (CIDR, as "10.0.0.0/8", or single
	// addresses) of reverse proxies in front of the gateway. A socket from
	// one of them counts against the new-visitor limit by the right-most
	// X-Forwarded-For address that is not itself a trusted proxy. Empty
	// means X-Forwarded-For is ignored and the peer address counts: behind
	// a proxy, list it, or every visitor shares the proxy's address.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Site is one web site that embeds the widget.
type Site struct {
	// ID names the site in the widget tag (data-site) and namespaces its
	// visitor and site-user identities. Required: 1 to 64 letters, digits,
	// '-' or '_'.
	ID string `yaml:"id"`
	// AllowedOrigins are the page origins the widget may connect from, as
	// "https://www.example.com" (scheme, host and port if not the
	// default), "https://*.example.com" for any subdomain, or "*" for any
	// origin (development only). Empty means only pages served by the
	// gateway itself, such as its demo page. A socket from another origin,
	// or without an Origin header, is refused with 403 before anything is
	// read or written.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// Secret is the HMAC-SHA256 key the site's back end signs user ids
	// with (data-user-hash; see Sign). Set it from the environment, not
	// the YAML file. Empty means identity verification is off: a
	// connection that presents a user_id is refused with
	// CloseIdentityRefused.
	Secret string `yaml:"secret"`
	// RequireUserExpires refuses signatures without an expiry (the
	// deprecated data-user-hash over the user id alone, SignForever) with
	// CloseIdentityRefused. False accepts both forms, so embeds made before
	// expiring signatures keep working.
	RequireUserExpires bool `yaml:"require_user_expires"`
	// SecretEnv names an environment variable holding Secret, which the
	// gateway's config loader reads; setting both is an error. Empty means
	// Secret is used as written.
	SecretEnv string `yaml:"secret_env"`
	// MaxMessageBytes caps one frame from a visitor, JSON included. Zero
	// means 8 KiB; at most 60 KiB, below the store's event payload cap. A
	// larger frame closes the socket with CloseMessageTooBig.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// RatePerMinute is how many frames (messages, typing, forms) one
	// visitor may send per minute, across all the visitor's sockets.
	// Zero means 120. Going over closes the socket with
	// CloseTooManyRequests.
	RatePerMinute int `yaml:"rate_per_minute"`
	// RateBurst is how many frames a visitor may send at once before
	// RatePerMinute applies. Zero means 30.
	RateBurst int `yaml:"rate_burst"`
	// NewVisitorsPerMinute is how many new anonymous visitors (customers
	// made by a first message or offline form) one client address may
	// start per minute; an IPv6 address counts by its /64. Zero means 10.
	// Going over refuses the frame with error too_many_requests and closes
	// the socket with CloseTooManyRequests; nothing is stored. Visitors
	// behind one NAT share the address: raise it for sites whose visitors
	// come through large shared gateways.
	NewVisitorsPerMinute int `yaml:"new_visitors_per_minute"`
	// NewVisitorsBurst is how many new visitors one client address may
	// start at once before NewVisitorsPerMinute applies. Zero means 30.
	NewVisitorsBurst int `yaml:"new_visitors_burst"`
}

// maxFrameCap keeps a frame, once stored as an event payload, under the
// store's limit.
const maxFrameCap = 60 << 10

var siteIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate returns every problem in the configuration at once.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, s := range c.Sites {
		if err := s.validate(); err != nil {
			errs = append(errs, fmt.Errorf("webchat: sites[%d]: %w", i, err))
		}
		if seen[s.ID] {
			errs = append(errs, fmt.Errorf("webchat: sites[%d]: site %q appears twice", i, s.ID))
		}
		seen[s.ID] = true
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"message_buffer_size", int64(c.MessageBufferSize)},
		{"slow_timeout", int64(c.SlowTimeout)},
		{"write_timeout", int64(c.WriteTimeout)},
		{"ping_interval", int64(c.PingInterval)},
		{"hello_timeout", int64(c.HelloTimeout)},
		{"history_events", int64(c.HistoryEvents)},
		{"availability_interval", int64(c.AvailabilityInterval)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("webchat: %s is negative", f.name))
		}
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("webchat: trusted_proxies: %w", err))
	}
	if c.HistoryEvents > 1000 {
		errs = append(errs, fmt.Errorf("webchat: history_events %d is over 1000", c.HistoryEvents))
	}
	return errors.Join(errs...)
}

func (s Site) validate() error {
	var errs []error
	if !siteIDRe.MatchString(s.ID) {
		errs = append(errs, fmt.Errorf("id %q must be 1 to 64 letters, digits, '-' or '_'", s.ID))
	}
	for _, o := range s.AllowedOrigins {
		if _, err := parseOriginPattern(o); err != nil {
			errs = append(errs, err)
		}
	}
	if s.MaxMessageBytes < 0 || s.MaxMessageBytes > maxFrameCap {
		errs = append(errs, fmt.Errorf("max_message_bytes %d is not between 0 and %d", s.MaxMessageBytes, maxFrameCap))
	}
	if s.RatePerMinute < 0 || s.RateBurst < 0 {
		errs = append(errs, errors.New("rate_per_minute and rate_burst must not be negative"))
	}
	if s.NewVisitorsPerMinute < 0 || s.NewVisitorsBurst < 0 {
		errs = append(errs, errors.New("new_visitors_per_minute and new_visitors_burst must not be negative"))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero values replaced by their documented
// meanings.
func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.MessageBufferSize == 0 {
		c.MessageBufferSize = 16
	}
	def(&c.SlowTimeout, 10*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.PingInterval, 25*time.Second)
	def(&c.HelloTimeout, 10*time.Second)
	def(&c.AvailabilityInterval, 15*time.Second)
	if c.HistoryEvents == 0 {
		c.HistoryEvents = 200
	}
	sites := make([]Site, len(c.Sites))
	for i, s := range c.Sites {
		if s.MaxMessageBytes == 0 {
			s.MaxMessageBytes = 8 << 10
		}
		if s.RatePerMinute == 0 {
			s.RatePerMinute = 120
		}
		if s.RateBurst == 0 {
			s.RateBurst = 30
		}
		if s.NewVisitorsPerMinute == 0 {
			s.NewVisitorsPerMinute = 10
		}
		if s.NewVisitorsBurst == 0 {
			s.NewVisitorsBurst = 30
		}
		sites[i] = s
	}
	c.Sites = sites
	return c
}

// originPattern is one parsed entry of AllowedOrigins.
type originPattern struct {
	any    bool
	scheme string
	host   string // host[:port]; for a wildcard, the suffix after "*."
	wild   bool
}

func parseOriginPattern(s string) (originPattern, error) {
	if s == "*" {
		return originPattern{any: true}, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return originPattern{}, fmt.Errorf("allowed origin %q is not scheme://host[:port]", s)
	}
	p := originPattern{scheme: u.Scheme, host: strings.ToLower(u.Host)}
	if rest, ok := strings.CutPrefix(p.host, "*."); ok {
		if rest == "" || strings.Contains(rest, "*") {
			return originPattern{}, fmt.Errorf("allowed origin %q has a bad wildcard", s)
		}
		p.host, p.wild = rest, true
	} else if strings.Contains(p.host, "*") {
		return originPattern{}, fmt.Errorf("allowed origin %q has a bad wildcard", s)
	}
	return p, nil
}

// originAllowed reports whether origin (the request's Origin header) may
// connect. host is the request's Host, for the same-origin default.
func originAllowed(patterns []originPattern, origin, host string) bool {
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	oh := strings.ToLower(u.Host)
	if len(patterns) == 0 {
		return oh == strings.ToLower(host)
	}
	for _, p := range patterns {
		switch {
		case p.any:
			return true
		case u.Scheme != p.scheme:
		case p.wild:
			if strings.HasSuffix(oh, "."+p.host) {
				return true
			}
		case oh == p.host:
			return true
		}
	}
	return false
}

// visitorIdentity is the unverified identity a visitor id stands for.
func visitorIdentity(site, visitor string) sessions.Identity {
	return sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: site, Value: visitor}
}

// unsignedIdentity is the visitor id's twin for sockets without a
// signature once the visitor id itself is bound to a signed-in user (see
// resolveUnsigned). The suffix can't be part of a visitor id (visitorRe),
// so no visitor's identity collides with another's twin, and the site
// namespace keeps the customer reachable by web chat (CanSend).
func unsignedIdentity(site, visitor string) sessions.Identity {
	return sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: site, Value: visitor + ".unsigned"}
}

// parsePrefixes parses TrustedProxies: CIDR prefixes or single addresses.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("%q is not an address or CIDR prefix", s))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}
