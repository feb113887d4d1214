package inbox

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Config tunes the rep socket. Every field's zero value is a working
// default.
type Config struct {
	// MaxMessageBytes caps one frame from a rep. Reps send only small
	// frames (auth, watch, typing, ping); replies go through the API. Zero
	// means 4 KiB; at most 64 KiB. A larger frame closes the socket with
	// CloseMessageTooBig.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MessageBufferSize is how many frames may wait for one rep's socket.
	// A socket whose queue is full is closed with CloseSlow. Zero means
	// 1024: a busy contact centre's burst, a few seconds of a rep's
	// network stalling.
	MessageBufferSize int `yaml:"message_buffer_size"`
	// WriteTimeout bounds one write to a socket. Zero means 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// PingInterval is how often the server pings an idle socket; a client
	// that answers no ping for twice this long is dropped (and marked
	// offline). Zero means 25s, under the 60s idle timeout of common
	// proxies.
	PingInterval time.Duration `yaml:"ping_interval"`
	// AuthTimeout is how long a new socket may wait before authenticating.
	// Zero means 10s.
	AuthTimeout time.Duration `yaml:"auth_timeout"`
	// RatePerMinute is how many frames one socket may send per minute,
	// with bursts of a tenth of it (at least 20). Zero means 600. Going
	// over closes the socket with CloseTooManyRequests.
	RatePerMinute int `yaml:"rate_per_minute"`
	// ListFlushInterval is how often the list views' changes go out, each
	// view's coalesced into one conversations frame: a conversation that
	// changed five times in the interval is sent once. Zero means 250ms.
	ListFlushInterval time.Duration `yaml:"list_flush_interval"`
	// MaxListBatch caps the conversations in one conversations frame;
	// more changes in one interval send a resync frame instead (reload
	// the list over REST). Zero means 500.
	MaxListBatch int `yaml:"max_list_batch"`
	// AllowedOrigins are page origins, besides the gateway's own, that may
	// open the socket, as "https://inbox.example.com". Empty means only
	// the gateway's own pages (Origin host equal to the request's Host),
	// which is right unless a proxy rewrites Host. A request without an
	// Origin header (not a browser) is allowed: it carries no ambient
	// credentials, since the token is sent explicitly.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxMessageBytes < 0 || c.MaxMessageBytes > 64<<10 {
		errs = append(errs, fmt.Errorf("inbox: max_message_bytes %d is not between 0 and 64 KiB", c.MaxMessageBytes))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"message_buffer_size", int64(c.MessageBufferSize)},
		{"write_timeout", int64(c.WriteTimeout)},
		{"ping_interval", int64(c.PingInterval)},
		{"auth_timeout", int64(c.AuthTimeout)},
		{"rate_per_minute", int64(c.RatePerMinute)},
		{"list_flush_interval", int64(c.ListFlushInterval)},
		{"max_list_batch", int64(c.MaxListBatch)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("inbox: %s is negative", f.name))
		}
	}
	for i, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("inbox: allowed_origins[%d]: %q is not scheme://host[:port]", i, o))
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 4 << 10
	}
	if c.MessageBufferSize == 0 {
		c.MessageBufferSize = 1024
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.PingInterval == 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.AuthTimeout == 0 {
		c.AuthTimeout = 10 * time.Second
	}
	if c.RatePerMinute == 0 {
		c.RatePerMinute = 600
	}
	if c.ListFlushInterval == 0 {
		c.ListFlushInterval = 250 * time.Millisecond
	}
	if c.MaxListBatch == 0 {
		c.MaxListBatch = 500
	}
	return c
}
