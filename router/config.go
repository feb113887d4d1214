package router

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// Config is the router's part of the gateway's YAML file. The zero value is
// usable: one queue named "default" for every channel, the default costs and
// priorities, owners first, direct assignment, longest idle.
type Config struct {
	// Capacity is the units of work a rep can hold at once; zero means 100.
	// A rep's own Capacity overrides it.
	Capacity int `yaml:"capacity" json:"capacity,omitempty"`
	// Costs is the units a task on each channel takes from a rep's capacity.
	// A channel missing here costs its default: voice 100, webchat 25,
	// wechat 20, sms 20, any other 25. So one call fills a rep, and a rep
	// holds four chats or five WeChat or SMS threads.
	Costs map[string]int `yaml:"costs" json:"costs,omitempty"`
	// WrapUp is how long a rep stays in wrap-up (taking no new work) after a
	// task on the channel ends; a channel missing here has no wrap-up.
	WrapUp map[string]time.Duration `yaml:"wrap_up" json:"wrap_up,omitempty"`
	// Priority derives a task's priority from VIP and tier, and sets aging.
	Priority PriorityConfig `yaml:"priority" json:"priority"`
	// Queues are tried by a task's Queue name, else by its channel (the first
	// queue listing it), else the first queue. Empty means one queue named
	// "default" with every setting at its zero value.
	Queues []QueueConfig `yaml:"queues" json:"queues,omitempty"`
	// Reps known at start. Every rep starts offline until SetPresence.
	Reps []Rep `yaml:"reps" json:"reps,omitempty"`
	// MaxCandidates caps the per-rep entries a Decision lists (the counts of
	// excluded reps by reason always cover every rep); zero means 10, a
	// negative value lists none.
	MaxCandidates int `yaml:"max_candidates" json:"max_candidates,omitempty"`
}

// PriorityConfig orders waiting tasks. A task's effective priority is its
// base priority plus one point for every Aging it has waited, continuously,
// so low priority never starves: a task of priority 0 overtakes a fresh
// VIP task (50) after 50 × Aging.
type PriorityConfig struct {
	// VIP is the base priority of a VIP customer's task, whatever the tier;
	// zero means 50.
	VIP int `yaml:"vip" json:"vip,omitempty"`
	// Tiers is the base priority per tier ("A" to "D"; "" for not graded).
	// A tier missing here gets its default: A 40, B 30, C 20, D 10, none 0.
	Tiers map[sessions.Tier]int `yaml:"tiers" json:"tiers,omitempty"`
	// Aging is the wait that earns one point of priority; zero means 30s
	// (a tier-D task passes a fresh tier-A task after 15 minutes). A
	// negative value turns aging off: strict priority, FIFO within it, and
	// low priority can starve.
	Aging time.Duration `yaml:"aging" json:"aging,omitempty"`
}

// QueueConfig is one queue and the rings its tasks go through.
//
// The rings, innermost first: the conversation's current assignee
// ("sticky") or else the customer's owner; reps with the exact skills and
// language (tier 1 only unless AnyTier); the relaxed ring once it opens;
// then the overflow action. A task is offered to the innermost ring that
// has an eligible rep, so an owner who frees up is still preferred after
// the owner's wait is over.
type QueueConfig struct {
	// Name identifies the queue in tasks and decisions; required, unique.
	Name string `yaml:"name" json:"name"`
	// Channels whose tasks come here when the task names no queue; empty
	// means none (tasks must name the queue, or it is the first queue).
	Channels []string `yaml:"channels" json:"channels,omitempty"`
	// Skills every task in the queue requires besides its own, skill to
	// minimum level (1 to 10; 0 means 1); empty means none.
	Skills map[string]int `yaml:"skills" json:"skills,omitempty"`
	// AnyTier admits tier-2 reps to the exact ring; false keeps them for
	// the relaxed ring (when Relaxed.Tier2 is set).
	AnyTier bool `yaml:"any_tier" json:"any_tier,omitempty"`
	// Select picks among the eligible reps of a ring: "longest_idle" (also
	// the zero value), "fewest_active" or "round_robin".
	Select Select `yaml:"select" json:"select,omitempty"`
	// Owner is the first ring: the sticky assignee, else the owner.
	Owner OwnerConfig `yaml:"owner" json:"owner"`
	// Relaxed is the third ring.
	Relaxed RelaxedConfig `yaml:"relaxed" json:"relaxed"`
	// Overflow is what happens when nobody took the task in time.
	Overflow OverflowConfig `yaml:"overflow" json:"overflow"`
	// Offer says whether a rep must accept a task.
	Offer OfferConfig `yaml:"offer" json:"offer"`
	// ServiceLevelTarget is the wait within which a contact counts as
	// answered in time, for the service level the reports and the
	// wallboard show (the router does not use it); zero means 20s.
	ServiceLevelTarget time.Duration `yaml:"service_level_target" json:"service_level_target,omitempty"`
	// ServiceLevelGoal is the percentage of contacts to answer within
	// ServiceLevelTarget (80 for "80/20"); the wallboard alerts below it.
	// Zero means 80.
	ServiceLevelGoal int `yaml:"service_level_goal" json:"service_level_goal,omitempty"`
}

// Service-level defaults: 80% of contacts answered within 20s.
const (
	DefaultServiceLevelTarget = 20 * time.Second
	DefaultServiceLevelGoal   = 80
)

// SLTarget is ServiceLevelTarget, its zero value as the default.
func (q QueueConfig) SLTarget() time.Duration {
	if q.ServiceLevelTarget <= 0 {
		return DefaultServiceLevelTarget
	}
	return q.ServiceLevelTarget
}

// SLGoal is ServiceLevelGoal, its zero value as the default.
func (q QueueConfig) SLGoal() int {
	if q.ServiceLevelGoal <= 0 {
		return DefaultServiceLevelGoal
	}
	return q.ServiceLevelGoal
}

// QueueOf is the queue a task on channel that names no queue waits in,
// as the router picks it: the first queue listing the channel, else the
// first queue ("default" when none is configured).
func (c Config) QueueOf(channel string) QueueConfig {
	for _, q := range c.Queues {
		if slices.Contains(q.Channels, channel) {
			return q
		}
	}
	if len(c.Queues) == 0 {
		return QueueConfig{Name: "default"}
	}
	return c.Queues[0]
}

// OwnerConfig is the owner ring.
type OwnerConfig struct {
	// Disabled gives owners no preference; false (the zero value) tries the
	// owner first. The sticky assignee of an assigned conversation is
	// always tried first.
	Disabled bool `yaml:"disabled" json:"disabled,omitempty"`
	// Wait is how long a task waits only for its owner (or sticky assignee)
	// when that rep is online (available or on a call) but has no free
	// capacity; zero means no waiting: the skills rings open at once. An
	// owner who is away or offline is skipped at once whatever Wait says.
	Wait time.Duration `yaml:"wait" json:"wait,omitempty"`
}

// RelaxedConfig is the relaxed ring: it adds reps that fail the exact
// ring's test in the ways it names.
type RelaxedConfig struct {
	// After is how long after the exact ring opens the relaxed ring opens;
	// zero means the queue has no relaxed ring.
	After time.Duration `yaml:"after" json:"after,omitempty"`
	// Tier2 admits tier-2 reps.
	Tier2 bool `yaml:"tier2" json:"tier2,omitempty"`
	// IgnoreLevels accepts a required skill at any level.
	IgnoreLevels bool `yaml:"ignore_levels" json:"ignore_levels,omitempty"`
	// DropSkills are required skills the ring no longer requires; "*"
	// drops them all. Empty means every skill is still required.
	DropSkills []string `yaml:"drop_skills" json:"drop_skills,omitempty"`
	// AnyLanguage drops the language requirement.
	AnyLanguage bool `yaml:"any_language" json:"any_language,omitempty"`
}

// OverflowConfig is the last ring. The router only decides; the caller
// tells the customer, books the callback or sends the message.
type OverflowConfig struct {
	// After is the wait (since the task entered this queue) after which the
	// action runs; zero means never: the task waits until it is assigned
	// or released.
	After time.Duration `yaml:"after" json:"after,omitempty"`
	// Action is "callback", "message" or "move"; required when After is set.
	Action Action `yaml:"action" json:"action,omitempty"`
	// MoveTo lists the channels, in order of preference, that "move" may
	// take the task to; the first whose queue has an eligible rep with free
	// capacity now wins. Channels the task says the customer cannot
	// receive are skipped.
	MoveTo []string `yaml:"move_to" json:"move_to,omitempty"`
	// Fallback is the action when "move" finds no channel: "callback" or
	// "message"; zero means the task stays queued.
	Fallback Action `yaml:"fallback" json:"fallback,omitempty"`
}

// OfferConfig says how a chosen rep gets the task.
type OfferConfig struct {
	// AcceptTimeout is how long a rep has to accept an offered task before
	// it moves on to the next rep; zero means direct assignment, no offer.
	AcceptTimeout time.Duration `yaml:"accept_timeout" json:"accept_timeout,omitempty"`
	// MaxMisses is how many offers in a row a rep may let time out before
	// the router sets the rep away; zero means 3. Declining is an answer
	// and is not a miss.
	MaxMisses int `yaml:"max_misses" json:"max_misses,omitempty"`
}

// Select is a policy choosing among the eligible reps of one ring.
type Select string

const (
	// SelectLongestIdle picks the rep whose work changed longest ago, ties
	// to the fewest active tasks, then the rep id.
	SelectLongestIdle Select = "longest_idle"
	// SelectFewestActive picks the rep with the fewest active tasks, ties to
	// the longest idle.
	SelectFewestActive Select = "fewest_active"
	// SelectRoundRobin picks the next eligible rep in id order after the
	// one the queue chose last.
	SelectRoundRobin Select = "round_robin"
)

// Action is an overflow action.
type Action string

const (
	ActionCallback Action = "callback"
	ActionMessage  Action = "message"
	ActionMove     Action = "move"
)

// ErrConfig marks every configuration problem.
var ErrConfig = errors.New("router: invalid config")

var defaultCosts = map[string]int{
	sessions.ChannelVoice: 100, sessions.ChannelWebchat: 25,
	sessions.ChannelWeChat: 20, sessions.ChannelSMS: 20,
}

var defaultTiers = map[sessions.Tier]int{
	sessions.TierA: 40, sessions.TierB: 30, sessions.TierC: 20, sessions.TierD: 10, "": 0,
}

func (c Config) capacity() int {
	if c.Capacity == 0 {
		return 100
	}
	return c.Capacity
}

// Cost returns the units a task on channel takes.
func (c Config) Cost(channel string) int {
	if v, ok := c.Costs[channel]; ok && v > 0 {
		return v
	}
	if v, ok := defaultCosts[channel]; ok {
		return v
	}
	return 25
}

// Priority returns the base priority of a task for a customer with vip and
// tier.
func (p PriorityConfig) Priority(vip bool, tier sessions.Tier) int {
	if vip {
		if p.VIP == 0 {
			return 50
		}
		return p.VIP
	}
	if v, ok := p.Tiers[tier]; ok {
		return v
	}
	return defaultTiers[tier]
}

func (p PriorityConfig) aging() time.Duration {
	if p.Aging == 0 {
		return 30 * time.Second
	}
	return p.Aging
}

func (c Config) maxCandidates() int {
	switch {
	case c.MaxCandidates == 0:
		return 10
	case c.MaxCandidates < 0:
		return 0
	}
	return c.MaxCandidates
}

func (q QueueConfig) maxMisses() int {
	if q.Offer.MaxMisses <= 0 {
		return 3
	}
	return q.Offer.MaxMisses
}

func (q QueueConfig) selectPolicy() Select {
	if q.Select == "" {
		return SelectLongestIdle
	}
	return q.Select
}

// Validate reports every problem at once, each wrapping ErrConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...))
	}
	if c.Capacity < 0 {
		bad("capacity %d is negative", c.Capacity)
	}
	for ch, v := range c.Costs {
		if v <= 0 || v > c.capacity() {
			bad("cost of %s is %d, want 1 to %d", ch, v, c.capacity())
		}
	}
	for ch, d := range c.WrapUp {
		if d < 0 {
			bad("wrap-up of %s is negative", ch)
		}
	}
	if c.Priority.VIP < 0 {
		bad("priority.vip is negative")
	}
	for t, v := range c.Priority.Tiers {
		if !t.Valid() {
			bad("priority.tiers: %q is not a tier", t)
		}
		if v < 0 {
			bad("priority.tiers: %q is negative", t)
		}
	}
	names := map[string]bool{}
	for i, q := range c.Queues {
		if q.Name == "" {
			bad("queues[%d] has no name", i)
		} else if names[q.Name] {
			bad("queue %q appears twice", q.Name)
		}
		names[q.Name] = true
		for s, l := range q.Skills {
			if s == "" || l < 0 || l > 10 {
				bad("queue %q: skill %q level %d, want 1 to 10", q.Name, s, l)
			}
		}
		switch q.Select {
		case "", SelectLongestIdle, SelectFewestActive, SelectRoundRobin:
		default:
			bad("queue %q: select %q is not longest_idle, fewest_active or round_robin", q.Name, q.Select)
		}
		if q.ServiceLevelTarget < 0 || q.ServiceLevelGoal < 0 || q.ServiceLevelGoal > 100 {
			bad("queue %q: service_level_target must not be negative, service_level_goal 0 to 100", q.Name)
		}
		if q.Owner.Wait < 0 {
			bad("queue %q: owner.wait is negative", q.Name)
		}
		r := q.Relaxed
		if r.After < 0 {
			bad("queue %q: relaxed.after is negative", q.Name)
		}
		if r.After > 0 && !r.Tier2 && !r.IgnoreLevels && len(r.DropSkills) == 0 && !r.AnyLanguage {
			bad("queue %q: relaxed ring relaxes nothing (set tier2, ignore_levels, drop_skills or any_language)", q.Name)
		}
		o := q.Overflow
		if o.After < 0 {
			bad("queue %q: overflow.after is negative", q.Name)
		}
		switch o.Action {
		case "":
			if o.After > 0 {
				bad("queue %q: overflow.after is set but overflow.action is not", q.Name)
			}
		case ActionCallback, ActionMessage:
		case ActionMove:
			if len(o.MoveTo) == 0 {
				bad("queue %q: overflow.action move needs move_to", q.Name)
			}
		default:
			bad("queue %q: overflow.action %q is not callback, message or move", q.Name, o.Action)
		}
		switch o.Fallback {
		case "", ActionCallback, ActionMessage:
		default:
			bad("queue %q: overflow.fallback %q is not callback or message", q.Name, o.Fallback)
		}
		if q.Offer.AcceptTimeout < 0 || q.Offer.MaxMisses < 0 {
			bad("queue %q: offer settings are negative", q.Name)
		}
	}
	ids := map[string]bool{}
	for i, r := range c.Reps {
		if err := r.validate(c); err != nil {
			errs = append(errs, fmt.Errorf("%w: reps[%d]: %w", ErrConfig, i, err))
		}
		if ids[r.ID] {
			bad("rep %q appears twice", r.ID)
		}
		ids[r.ID] = true
	}
	return errors.Join(errs...)
}
