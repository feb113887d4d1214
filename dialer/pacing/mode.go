package pacing

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind names a pacing strategy.
type Kind string

const (
	// KindPreview: the rep sees the customer and clicks call or skip;
	// the pacer places nothing by itself.
	KindPreview Kind = "preview"
	// KindProgressive: one line per ready rep.
	KindProgressive Kind = "progressive"
	// KindRatio: a fixed number of lines per ready rep ("ratio:2.5").
	KindRatio Kind = "ratio"
	// KindVICI: VICIdial's adaptive dial level.
	KindVICI Kind = "vici"
	// KindPredictive: the model of Predictive.
	KindPredictive Kind = "predictive"
)

// MaxRatio bounds a fixed ratio: beyond it a campaign abandons most of
// what it dials.
const MaxRatio = 10

// Mode is a parsed pacing mode: a kind and, for KindRatio, the ratio.
type Mode struct {
	Kind  Kind
	Ratio float64
}

// String gives the mode back in ParseMode's syntax.
func (m Mode) String() string {
	if m.Kind == KindRatio {
		return "ratio:" + strconv.FormatFloat(m.Ratio, 'f', -1, 64)
	}
	return string(m.Kind)
}

// ErrMode is returned for a mode ParseMode does not know.
var ErrMode = errors.New("pacing: unknown mode")

// ParseMode reads "preview", "progressive", "ratio:R" (1 <= R <= 10),
// "vici" or "predictive".
func ParseMode(s string) (Mode, error) {
	switch k := Kind(s); k {
	case KindPreview, KindProgressive, KindVICI, KindPredictive:
		return Mode{Kind: k}, nil
	}
	r, ok := strings.CutPrefix(s, "ratio:")
	if !ok {
		return Mode{}, fmt.Errorf("%w %q (want preview, progressive, ratio:R, vici or predictive)", ErrMode, s)
	}
	v, err := strconv.ParseFloat(r, 64)
	if err != nil || math.IsNaN(v) || v < 1 || v > MaxRatio {
		return Mode{}, fmt.Errorf("%w %q: the ratio must be a number from 1 to %d", ErrMode, s, MaxRatio)
	}
	return Mode{Kind: KindRatio, Ratio: v}, nil
}

// DefaultTargetAbandon is the abandonment target when none is set: 3% of
// answered calls, the most regulators allow.
const DefaultTargetAbandon = 0.03

// DefaultConnectLimit is how long an answered customer waits for a rep
// when Config.ConnectLimit is zero (Ofcom and the FTC allow two seconds).
const DefaultConnectLimit = 2 * time.Second

// Config tunes the pacers that keep abandonment under a target.
type Config struct {
	// TargetAbandon is the share of answered calls that may be abandoned,
	// above 0 and at most 0.03. Zero means DefaultTargetAbandon.
	TargetAbandon float64 `yaml:"target_abandon" json:"target_abandon,omitempty"`
	// ConnectLimit is how long an answered customer may wait for a rep
	// before the call is abandoned. Zero means DefaultConnectLimit.
	ConnectLimit time.Duration `yaml:"connect_limit" json:"connect_limit,omitempty"`
	// Answered and Abandoned carry the campaign's counts so far (after a
	// restart, or from an earlier run of the campaign today) into the
	// measured rate VICI and Predictive hold under the target. Zero: the
	// pacer starts counting afresh.
	Answered  int64 `yaml:"-" json:"-"`
	Abandoned int64 `yaml:"-" json:"-"`
}

// ErrConfig is wrapped by Validate's errors.
var ErrConfig = errors.New("pacing: bad config")

// Validate checks the fields, returning every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.TargetAbandon < 0 || c.TargetAbandon > DefaultTargetAbandon || math.IsNaN(c.TargetAbandon) {
		errs = append(errs, fmt.Errorf("%w: target_abandon %v must be above 0 and at most %v", ErrConfig, c.TargetAbandon, DefaultTargetAbandon))
	}
	if c.ConnectLimit < 0 {
		errs = append(errs, fmt.Errorf("%w: connect_limit %v is negative", ErrConfig, c.ConnectLimit))
	}
	if c.Answered < 0 || c.Abandoned < 0 || c.Abandoned > c.Answered {
		errs = append(errs, fmt.Errorf("%w: %d abandoned of %d answered", ErrConfig, c.Abandoned, c.Answered))
	}
	return errors.Join(errs...)
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.TargetAbandon == 0 {
		c.TargetAbandon = DefaultTargetAbandon
	}
	if c.ConnectLimit == 0 {
		c.ConnectLimit = DefaultConnectLimit
	}
	return c
}

// New builds the pacer for mode. Each campaign run has its own: pacers
// learn from what they observe and are not safe for concurrent use.
func New(m Mode, c Config) (Pacer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	switch m.Kind {
	case KindPreview:
		return Preview{}, nil
	case KindProgressive:
		return Progressive{}, nil
	case KindRatio:
		if m.Ratio < 1 || m.Ratio > MaxRatio {
			return nil, fmt.Errorf("%w %q", ErrMode, m)
		}
		return FixedRatio{Ratio: m.Ratio}, nil
	case KindVICI:
		return NewVICI(c), nil
	case KindPredictive:
		return NewPredictive(c), nil
	}
	return nil, fmt.Errorf("%w %q", ErrMode, m)
}
