package voice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/omnigate/omnigate/dialer/sip"
	"github.com/omnigate/omnigate/sessions"
)

// Config is the inbound part of the gateway's voice section.
type Config struct {
	// RingTime is how long a rep's phone rings for a direct assignment or
	// the conversation's assignee (an offer rings until it expires); zero
	// means 20s.
	RingTime time.Duration `yaml:"ring_time"`
	// MaxWait is how long a caller may wait for a rep before the call
	// overflows, when the router's queue has not overflowed it first;
	// zero means 3 minutes.
	MaxWait time.Duration `yaml:"max_wait"`
	// Hold is a WAV file (16-bit PCM, 8 kHz, mono) the waiting caller
	// hears on a loop; empty means ringback.
	Hold string `yaml:"hold"`
	// Voicemail is the SIP URI an overflowing call is sent to; empty means
	// the caller is told unavailable and a callback is requested.
	Voicemail string `yaml:"voicemail"`
	// DefaultRegion (ISO 3166, "GB") reads a caller number without its
	// country code; empty means only E.164 numbers resolve.
	DefaultRegion string `yaml:"default_region"`
}

// Defaults for the zero values documented above.
const (
	defaultRingTime = 20 * time.Second
	defaultMaxWait  = 3 * time.Minute
)

// Validate checks the configuration, returning every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.RingTime < 0 || c.MaxWait < 0 {
		errs = append(errs, errors.New("voice: ring_time and max_wait may not be negative"))
	}
	if c.Hold != "" {
		if _, err := os.Stat(c.Hold); err != nil {
			errs = append(errs, fmt.Errorf("voice: hold: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (c Config) ringTime() time.Duration {
	if c.RingTime == 0 {
		return defaultRingTime
	}
	return c.RingTime
}

func (c Config) maxWait() time.Duration {
	if c.MaxWait == 0 {
		return defaultMaxWait
	}
	return c.MaxWait
}

// Options are the adapter's collaborators.
type Options struct {
	// Store is where calls are recorded. Required.
	Store sessions.Store
	// Watcher follows a customer's new events (the node's
	// sessions.Fanout). Required.
	Watcher sessions.Watcher
	// RepURI returns a rep's sip_uri (the router's rep attributes); an
	// error or "" means the rep has no phone. Required.
	RepURI func(rep string) (string, error)
	// Callback, when set, asks for a rep to call the customer back after
	// a call overflowed without voicemail (the gateway: Sender.Reach on
	// voice). Nil means the conversation is left for the router as it is.
	Callback func(ctx context.Context, customerID, callID string) error
	// Logger; nil discards.
	Logger *slog.Logger
}

// Adapter takes the UA's inbound calls. See the package doc.
type Adapter struct {
	cfg Config
	o   Options
	log *slog.Logger
	wg  sync.WaitGroup
}

// New checks cfg and o and returns the adapter; hand Handle to
// sip.UA.HandleInbound.
func New(cfg Config, o Options) (*Adapter, error) {
	if o.Store == nil || o.Watcher == nil || o.RepURI == nil {
		return nil, errors.New("voice: a store, a watcher and RepURI are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Adapter{cfg: cfg, o: o, log: log.With("part", "voice")}, nil
}

var _ sip.InboundHandler = (*Adapter)(nil).Handle

// Close waits for the goroutines of calls that ended to finish recording;
// close the UA first (it ends every call).
func (a *Adapter) Close() { a.wg.Wait() }
