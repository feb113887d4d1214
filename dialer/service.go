package dialer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/dialer/pacing"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/router/routing"
	"github.com/omnigate/omnigate/sessions"
	"github.com/prometheus/client_golang/prometheus"
)

// Reps is what the dialer needs of the routing service (*routing.Service
// satisfies it): hold a rep for a call, free them after, and see who is
// free.
type Reps interface {
	Reserve(ctx context.Context, rv routing.Reservation) (router.Decision, error)
	Release(ctx context.Context, id string) error
	Rep(id string) (router.RepStatus, error)
}

// Policy is the contact policy (*contact.Policy satisfies it), asked at
// the moment of every dial.
type Policy interface {
	Evaluate(ctx context.Context, r contact.Request) (contact.Decision, error)
}

// Ledger is what the dialer needs of the contact ledger: recording a
// call's outcome (an abandoned call starts the policy's lockout) and
// reading whether a customer had voice contact before (a trial stratum).
type Ledger interface {
	Record(ctx context.Context, t contact.Touch) error
	Touches(ctx context.Context, customerID string, since time.Time) ([]contact.Touch, error)
}

// Sessions is what the dialer needs of the sessions store
// (sessions.Store satisfies it): customers from a CSV, and the timeline.
type Sessions interface {
	ResolveCustomer(ctx context.Context, id sessions.Identity, seed sessions.Customer) (sessions.Customer, bool, error)
	Customer(ctx context.Context, id string) (sessions.Customer, error)
	Identities(ctx context.Context, customerID string) ([]sessions.Identity, error)
	OpenConversation(ctx context.Context, customerID, topic, channel string) (sessions.Conversation, bool, error)
	Append(ctx context.Context, ev sessions.Event) (sessions.Event, bool, error)
}

// Options are what New needs. Store, Sessions, Policy, Ledger, Reps,
// Roster and Trunk are required.
type Options struct {
	Store    Store
	Sessions Sessions
	Policy   Policy
	Ledger   Ledger
	Reps     Reps
	// Roster returns the configured reps: their ids, skills and sip_uri
	// (router.Config.Reps). A campaign's reps are those it lists and
	// those with its skills.
	Roster func() []router.Rep
	Trunk  Trunk
	// Purposes are the contact policy's configured purposes; empty means
	// the built-in service, sales, collections and notice.
	Purposes []string
	// Segment returns the ids of the customers a segment selects; nil
	// refuses segment audiences (the sessions store cannot list
	// customers by profile).
	Segment func(ctx context.Context, s Segment) ([]string, error)
	// Pacer builds a campaign's pacer when a node starts running it; nil
	// gives every mode progressive pacing (pacing.New replaces it when
	// it lands).
	Pacer func(PacerConfig) (pacing.Pacer, error)
	// Node names this process as a lease holder; empty means
	// hostname:pid.
	Node string
	// LeaseTTL is how long a campaign's lease lasts unrenewed; zero means
	// 15s. Renewed every tick.
	LeaseTTL time.Duration
	// ConnectLimit is how long an answered customer may wait for a rep
	// before the call is abandoned; zero means 2s.
	ConnectLimit time.Duration
	// Clock nil is the system clock.
	Clock  Clock
	Logger *slog.Logger
	// Metrics, when set, gets omnigate_dialer_* metrics.
	Metrics prometheus.Registerer
}

// PacerConfig is what a campaign's pacer is built from: its mode and
// abandonment target, the connect limit, and the campaign's answered and
// abandoned calls so far (a node taking a campaign over carries the
// measured rate on).
type PacerConfig struct {
	Mode          string
	AbandonTarget float64
	ConnectLimit  time.Duration
	Answered      int
	Abandoned     int
}

// Service runs campaigns: the API's side (Create, Start, Approve...) and
// the runners (Run). Safe for concurrent use. Lock order: Service.mu,
// then a runner's mu.
type Service struct {
	o   Options
	log *slog.Logger
	m   *metrics

	mu      sync.Mutex
	runners map[string]*runner
	calls   map[string]*liveCall // by attempt id
	// released has when each rep was last released from one of this
	// node's calls: the start of their wrap-up, for the pacers.
	released map[string]time.Time
	// wg counts the calls followed, so Run returns only when none is
	// left.
	wg sync.WaitGroup
	// handling counts call steps being handled now (not waiting on the
	// trunk or the clock): with SimTrunk.settled, what a test moving a
	// ManualClock waits for.
	handling atomic.Int64
}

// New checks o and returns a Service; Run starts dialing.
func New(o Options) (*Service, error) {
	var missing []string
	for name, nilv := range map[string]bool{"Store": o.Store == nil, "Sessions": o.Sessions == nil,
		"Policy": o.Policy == nil, "Ledger": o.Ledger == nil, "Reps": o.Reps == nil, "Roster": o.Roster == nil,
		"Trunk": o.Trunk == nil} {
		if nilv {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("dialer: options %v are required", missing)
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Node == "" {
		host, _ := os.Hostname()
		o.Node = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 15 * time.Second
	}
	if o.ConnectLimit <= 0 {
		o.ConnectLimit = 2 * time.Second
	}
	if o.Pacer == nil {
		o.Pacer = func(PacerConfig) (pacing.Pacer, error) { return pacing.Progressive{}, nil }
	}
	if len(o.Purposes) == 0 {
		o.Purposes = []string{contact.PurposeService, contact.PurposeSales, contact.PurposeCollections, contact.PurposeNotice}
	}
	s := &Service{o: o, log: o.Logger, runners: map[string]*runner{}, calls: map[string]*liveCall{},
		released: map[string]time.Time{}}
	m, err := newMetrics(o.Metrics, s)
	if err != nil {
		return nil, fmt.Errorf("dialer: metrics: %w", err)
	}
	s.m = m
	return s, nil
}

// knownNow is what a Spec is checked against: the roster may change
// (config reload), so it is read at each Create.
func (s *Service) knownNow() Known {
	k := Known{Purposes: s.o.Purposes}
	for _, r := range s.o.Roster() {
		k.Reps = append(k.Reps, r.ID)
		for sk := range r.Skills {
			if !slices.Contains(k.Skills, sk) {
				k.Skills = append(k.Skills, sk)
			}
		}
	}
	slices.Sort(k.Skills)
	return k
}

// Campaign returns one campaign.
func (s *Service) Campaign(ctx context.Context, id string) (Campaign, error) {
	return s.o.Store.Campaign(ctx, id)
}

// Campaigns lists every campaign, by id.
func (s *Service) Campaigns(ctx context.Context) ([]Campaign, error) {
	return s.o.Store.Campaigns(ctx)
}

// Start begins dialing a created campaign: its trial sample first when
// it has one.
func (s *Service) Start(ctx context.Context, id string) (Campaign, error) {
	return s.transition(ctx, id, func(c *Campaign) error {
		if c.State != StateCreated {
			return fmt.Errorf("%w: campaign %s is %s, only a created one starts", ErrState, id, c.State)
		}
		c.State = StateRunning
		if c.Spec.Trial != nil {
			c.State = StateTrial
		}
		return nil
	})
}

// Pause stops placing new calls (calls in progress go on); Resume picks
// up where it was.
func (s *Service) Pause(ctx context.Context, id string) (Campaign, error) {
	return s.transition(ctx, id, func(c *Campaign) error {
		if c.State != StateTrial && c.State != StateRunning {
			return fmt.Errorf("%w: campaign %s is %s, not dialing", ErrState, id, c.State)
		}
		c.PausedIn, c.State = c.State, StatePaused
		return nil
	})
}

// Resume undoes Pause.
func (s *Service) Resume(ctx context.Context, id string) (Campaign, error) {
	return s.transition(ctx, id, func(c *Campaign) error {
		if c.State != StatePaused {
			return fmt.Errorf("%w: campaign %s is %s, not paused", ErrState, id, c.State)
		}
		c.State, c.PausedIn = c.PausedIn, ""
		return nil
	})
}

// Stop ends a campaign for good; calls in progress finish.
func (s *Service) Stop(ctx context.Context, id string) (Campaign, error) {
	return s.transition(ctx, id, func(c *Campaign) error {
		if c.State.Final() {
			return fmt.Errorf("%w: campaign %s is %s already", ErrState, id, c.State)
		}
		c.State = StateStopped
		return nil
	})
}

// Approve dials the rest of a campaign whose trial is done. The trial's
// customers are not in the rest.
func (s *Service) Approve(ctx context.Context, id string) (Campaign, error) {
	c, err := s.o.Store.Campaign(ctx, id)
	if err != nil {
		return Campaign{}, err
	}
	if c.State != StateTrialDone {
		return Campaign{}, fmt.Errorf("%w: campaign %s is %s, not waiting for approval", ErrState, id, c.State)
	}
	// The held attempts become due first: a crash between the two leaves
	// a campaign still waiting for approval, whose Approve is repeated.
	as, err := s.o.Store.Attempts(ctx, id)
	if err != nil {
		return Campaign{}, err
	}
	now := s.o.Clock.Now()
	var batch []Attempt
	for _, a := range as {
		if a.State == AttemptHeld {
			a.State, a.Due = AttemptDue, now
			batch = append(batch, a)
		}
		if len(batch) == maxBatch {
			if _, err := s.o.Store.SaveAttempts(ctx, batch...); err != nil {
				return Campaign{}, err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if _, err := s.o.Store.SaveAttempts(ctx, batch...); err != nil {
			return Campaign{}, err
		}
	}
	return s.transition(ctx, id, func(c *Campaign) error {
		if c.State != StateTrialDone {
			return fmt.Errorf("%w: campaign %s is %s, not waiting for approval", ErrState, id, c.State)
		}
		c.State = StateRunning
		return nil
	})
}

// Reject ends a campaign whose trial is done, with the reason.
func (s *Service) Reject(ctx context.Context, id, reason string) (Campaign, error) {
	if reason == "" {
		return Campaign{}, fmt.Errorf("%w: a rejection needs a reason", ErrInvalid)
	}
	return s.transition(ctx, id, func(c *Campaign) error {
		if c.State != StateTrialDone {
			return fmt.Errorf("%w: campaign %s is %s, not waiting for approval", ErrState, id, c.State)
		}
		c.State, c.RejectReason = StateRejected, reason
		return nil
	})
}

// transition applies fn to the stored campaign and saves it, again on a
// lost compare-and-set (a runner wrote meanwhile).
func (s *Service) transition(ctx context.Context, id string, fn func(*Campaign) error) (Campaign, error) {
	for range 10 {
		c, err := s.o.Store.Campaign(ctx, id)
		if err != nil {
			return Campaign{}, err
		}
		if err := fn(&c); err != nil {
			return Campaign{}, err
		}
		c.UpdatedAt = s.o.Clock.Now()
		saved, err := s.o.Store.SaveCampaign(ctx, c)
		if !errors.Is(err, ErrConflict) {
			return saved, err
		}
	}
	return Campaign{}, fmt.Errorf("%w: campaign %s kept changing", ErrConflict, id)
}
