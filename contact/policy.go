package contact

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/sessions"
)

// Reasons a contact is denied or deferred, as the API and the timeline
// name them.
const (
	ReasonDoNotContact     = "do_not_contact"
	ReasonNoConsent        = "no_consent"
	ReasonQuietHours       = "quiet_hours"
	ReasonHoliday          = "holiday"
	ReasonFrequencyCap     = "frequency_cap"
	ReasonMinGap           = "min_gap"
	ReasonOpenWork         = "open_work"
	ReasonDuplicateTopic   = "duplicate_topic"
	ReasonAbandonedLockout = "abandoned_lockout"
)

// OutcomeAbandoned is the Touch outcome of a call the customer answered
// and no rep took: it starts the abandoned-call lockout.
const OutcomeAbandoned = "abandoned"

// Store is what the policy reads of a sessions.Store.
type Store interface {
	Customer(ctx context.Context, id string) (sessions.Customer, error)
	Identities(ctx context.Context, customerID string) ([]sessions.Identity, error)
	Conversation(ctx context.Context, id string) (sessions.Conversation, error)
	Conversations(ctx context.Context, q sessions.ConversationQuery) ([]sessions.Conversation, string, error)
}

// Options are what a Policy works with besides its Config.
type Options struct {
	Ledger       Ledger       // required
	Suppressions Suppressions // required
	Store        Store        // required
	// Clock tells the time; nil means the system clock.
	Clock Clock
	// Logger gets a debug line per refusal (ids and reasons, no
	// addresses); nil means none.
	Logger *slog.Logger
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Policy is the contact policy: it answers allow, deny or defer for every
// outbound contact and records the allowed ones in the ledger. Safe for
// concurrent use.
type Policy struct {
	cfg    *compiled
	o      Options
	clock  Clock
	logger *slog.Logger
}

var _ channels.Policy = (*Policy)(nil)

// NewPolicy checks cfg (every problem at once) and builds the policy.
func NewPolicy(cfg Config, o Options) (*Policy, error) {
	c, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	if o.Ledger == nil || o.Suppressions == nil || o.Store == nil {
		return nil, errors.New("contact: the policy needs a ledger, suppressions and a store")
	}
	p := &Policy{cfg: c, o: o, clock: o.Clock, logger: o.Logger}
	if p.clock == nil {
		p.clock = systemClock{}
	}
	if p.logger == nil {
		p.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return p, nil
}

// Request is one contact to judge.
type Request struct {
	CustomerID string `json:"customer_id"`
	// ConversationID is the conversation the contact goes into; empty for
	// none. Open work in it does not hold the contact back, and a reply
	// into it while it is active is a service contact.
	ConversationID string `json:"conversation_id,omitempty"`
	// Channel is the channel it goes out on.
	Channel string `json:"channel"`
	// Purpose is a configured purpose, or channels.PurposeReply (judged as
	// service).
	Purpose string `json:"purpose"`
	// Topic is what it is about (an order, a ticket); empty means none,
	// and no duplicate rule applies.
	Topic string `json:"topic,omitempty"`
	// Campaign names the campaign it belongs to, whose overrides apply;
	// empty means none.
	Campaign string `json:"campaign,omitempty"`
	// TouchID is the ledger id of the contact, so that a retry is
	// recorded once; empty means a new id.
	TouchID string `json:"touch_id,omitempty"`
	// At is when the contact would be made; zero means now.
	At time.Time `json:"at,omitzero"`
	// DryRun judges the contact and records nothing (a what-if check).
	DryRun bool `json:"dry_run,omitempty"`
}

// Reason is one rule that holds a contact back.
type Reason struct {
	Code string `json:"code"` // Reason*
	// Decision is Deny or Defer.
	Decision channels.Decision `json:"decision"`
	// Until is when the rule allows the contact (with Defer).
	Until time.Time `json:"until,omitzero"`
	// Detail says it for people; it names no address.
	Detail string `json:"detail"`
	// Ref is what the rule is about: the touch a duplicate repeats, the
	// conversation of open work or of a minimum gap.
	Ref string `json:"ref,omitempty"`
	// Reached is the ledger's answer for a counting rule.
	Reached *Reached `json:"reached,omitempty"`
	// Suppressions are the do-not-contact entries that matched.
	Suppressions []Suppression `json:"suppressions,omitempty"`
}

// Handoff is open work whose owner should make the contact (open_work
// action handoff).
type Handoff struct {
	ConversationID string `json:"conversation_id"`
	Assignee       string `json:"assignee,omitempty"`
}

// Decision is the policy's full answer.
type Decision struct {
	// Decision is Allow, Deny (a rule denies) or Defer (rules defer, none
	// denies).
	Decision channels.Decision `json:"decision"`
	// Until is the earliest instant every deferring rule allows, inside
	// the contact hours (with Defer).
	Until time.Time `json:"until,omitzero"`
	// Reasons are every rule that holds the contact back, not just the
	// first.
	Reasons []Reason `json:"reasons,omitempty"`
	// Touch is the contact as the ledger records it.
	Touch Touch `json:"touch"`
	// Recorded is true when Touch is in the ledger (allowed, not a dry
	// run).
	Recorded bool     `json:"recorded"`
	Handoff  *Handoff `json:"handoff,omitempty"`
	// TimeZones are the zones the quiet hours were judged in, and
	// ZoneSource where they came from (ZoneFrom*); empty for a reply
	// in an open conversation, which has no quiet hours.
	TimeZones  []string `json:"time_zones,omitempty"`
	ZoneSource string   `json:"zone_source,omitempty"`
}

// Verdict is d as the channels' Sender takes it.
func (d Decision) Verdict() channels.Verdict {
	v := channels.Verdict{Decision: d.Decision, Until: d.Until}
	if d.Handoff != nil && d.Decision != channels.Allow {
		v.HandoffTo = d.Handoff.ConversationID
	}
	for _, r := range d.Reasons {
		if !slices.Contains(v.Reasons, r.Code) {
			v.Reasons = append(v.Reasons, r.Code)
		}
	}
	return v
}

// Check implements channels.Policy. The message's id is the touch id, so
// a retry of one message is one touch, and the conversation's topic is
// the touch's topic, so two contacts about one thing are a duplicate.
func (p *Policy) Check(ctx context.Context, c channels.Contact) (channels.Verdict, error) {
	d, err := p.Evaluate(ctx, Request{CustomerID: c.CustomerID, ConversationID: c.ConversationID, Channel: c.Channel,
		Purpose: c.Purpose, Topic: c.Topic, TouchID: c.ID})
	if err != nil {
		return channels.Verdict{}, err
	}
	return d.Verdict(), nil
}

func (p *Policy) validate(r Request) error {
	switch {
	case r.CustomerID == "":
		return fmt.Errorf("%w: contact: customer id is required", sessions.ErrInvalid)
	case !slices.Contains(knownChannels, r.Channel):
		return fmt.Errorf("%w: contact: %q is not a channel (%s)", sessions.ErrInvalid, r.Channel, strings.Join(knownChannels, ", "))
	case r.Purpose != channels.PurposeReply && p.cfg.purposes[r.Purpose] == nil:
		return fmt.Errorf("%w: contact: %q is not a configured purpose (%s, or reply)", sessions.ErrInvalid, r.Purpose, strings.Join(sortedKeys(p.cfg.purposes), ", "))
	case len(r.Topic) > sessions.MaxTopic:
		return fmt.Errorf("%w: contact: topic longer than %d bytes", sessions.ErrInvalid, sessions.MaxTopic)
	}
	return nil
}

// Evaluate judges r: the static rules (do-not-contact, consent, quiet
// hours and holidays, open work, the gap after a resolved conversation)
// from the store, then the counting rules (caps, duplicate topic,
// abandoned lockout) with one Ledger.Claim, which records the contact
// when nothing holds it back. When a static rule already holds it back
// (or r is a dry run), the counting rules are judged from the ledger's
// touches and nothing is recorded, so the answer still lists every
// reason. An error means no decision (bad request, store or ledger
// down); nothing was recorded.
func (p *Policy) Evaluate(ctx context.Context, r Request) (Decision, error) {
	if err := p.validate(r); err != nil {
		return Decision{}, err
	}
	at := r.At
	if at.IsZero() {
		at = p.clock.Now()
	}
	cust, err := p.o.Store.Customer(ctx, r.CustomerID)
	if err != nil {
		return Decision{}, fmt.Errorf("contact: customer %s: %w", r.CustomerID, err)
	}
	ids, err := p.o.Store.Identities(ctx, r.CustomerID)
	if err != nil {
		return Decision{}, fmt.Errorf("contact: identities of customer %s: %w", r.CustomerID, err)
	}
	purpose, serviceReply := r.Purpose, false
	if purpose == channels.PurposeReply {
		// A reply into a conversation the customer opened (conversations
		// open on a customer's inbound event) answers them: service, and
		// never capped or held for the hour.
		purpose = PurposeService
		if r.ConversationID != "" {
			conv, err := p.o.Store.Conversation(ctx, r.ConversationID)
			if err != nil && !errors.Is(err, sessions.ErrNotFound) {
				return Decision{}, fmt.Errorf("contact: conversation %s: %w", r.ConversationID, err)
			}
			serviceReply = err == nil && conv.CustomerID == r.CustomerID && conv.Status.Active()
		}
	}
	rl := p.cfg.purposes[purpose]
	if camp, ok := p.cfg.campaigns[r.Campaign]; ok {
		rl = camp[purpose]
	}
	d := Decision{Touch: Touch{
		ID: r.TouchID, CustomerID: r.CustomerID, Channel: r.Channel, Direction: Outbound,
		Purpose: purpose, Topic: r.Topic, Campaign: r.Campaign, At: at,
	}}
	if d.Touch.ID == "" {
		d.Touch.ID = sessions.NewID("tch")
	}

	sups, err := p.o.Suppressions.Match(ctx, suppressionKeys(r.CustomerID, ids), r.Channel, purpose)
	if err != nil {
		return Decision{}, fmt.Errorf("contact: suppressions of customer %s: %w", r.CustomerID, err)
	}
	if len(sups) > 0 {
		d.deny(Reason{Code: ReasonDoNotContact, Suppressions: sups,
			Detail: fmt.Sprintf("%d do-not-contact entries match (first: %s, source %s)", len(sups), sups[0].Kind, cmp.Or(sups[0].Source, "unknown"))})
	}
	var limits []Limit
	var where *locale
	if !serviceReply {
		if rl.needsConsent && !consented(cust, purpose) {
			d.deny(Reason{Code: ReasonNoConsent, Detail: fmt.Sprintf("%s needs the customer's consent (attribute consent_%s yes)", purpose, purpose)})
		}
		where = p.cfg.locate(cust, ids)
		var open time.Time
		var why string
		open, why, where = p.openAt(rl, where, at)
		d.TimeZones, d.ZoneSource = where.zoneNames(), where.source
		if open.IsZero() {
			d.deny(Reason{Code: why, Detail: "no contact hours within a year"})
		} else if open.After(at) {
			d.deferUntil(Reason{Code: why, Until: open, Detail: fmt.Sprintf("outside %s contact hours in %s", purpose, strings.Join(d.TimeZones, ", "))})
		}
		if err := p.conversations(ctx, rl, r, at, &d); err != nil {
			return Decision{}, err
		}
		limits = p.limits(rl, r)
	}

	var reached []Reached
	if len(d.Reasons) == 0 && !r.DryRun {
		claimed, err := p.o.Ledger.Claim(ctx, d.Touch, limits)
		if err != nil {
			return Decision{}, fmt.Errorf("contact: claiming a touch of customer %s: %w", r.CustomerID, err)
		}
		if !claimed.Recorded && len(claimed.Reached) == 0 {
			return Decision{}, fmt.Errorf("contact: the ledger neither recorded touch %s nor named a limit", d.Touch.ID)
		}
		d.Recorded, reached = claimed.Recorded, claimed.Reached
	} else if len(limits) > 0 {
		window := slices.MaxFunc(limits, func(a, b Limit) int { return int(a.Window - b.Window) }).Window
		touches, err := p.o.Ledger.Touches(ctx, r.CustomerID, at.Add(-window))
		if err != nil {
			return Decision{}, fmt.Errorf("contact: touches of customer %s: %w", r.CustomerID, err)
		}
		reached = reachedLimits(touches, d.Touch, limits)
	}
	if !d.Recorded {
		for _, lr := range reached {
			d.limitReason(lr)
		}
	}

	switch {
	case d.Recorded || len(d.Reasons) == 0:
		d.Decision = channels.Allow
	case d.Decision == channels.Deny:
		d.Until = time.Time{}
	default:
		// The latest instant the deferring rules allow may be at night:
		// move it into the contact hours.
		if !serviceReply {
			if open, _, _ := p.openAt(rl, where, d.Until); !open.IsZero() {
				d.Until = open
			}
		}
	}
	if d.Decision != channels.Allow {
		p.logger.LogAttrs(ctx, slog.LevelDebug, "contact held back",
			slog.String("customer_id", r.CustomerID), slog.String("channel", r.Channel),
			slog.String("purpose", purpose), slog.String("decision", string(d.Decision)),
			slog.Any("reasons", d.Verdict().Reasons))
	}
	return d, nil
}

// openAt is compiled.open, falling back to the default zone when the
// zones of a phone number that spans several have no hour in common.
func (p *Policy) openAt(rl *rules, where *locale, t time.Time) (time.Time, string, *locale) {
	open, why, ok := p.cfg.open(&rl.hours, where, t)
	if !ok && len(where.zones) > 1 {
		fallback := *where
		fallback.zones, fallback.source = []*time.Location{p.cfg.defaultZone}, ZoneFromDefault
		where = &fallback
		open, why, _ = p.cfg.open(&rl.hours, where, t)
	}
	return open, why, where
}

func (d *Decision) deny(r Reason) {
	r.Decision = channels.Deny
	d.Decision = channels.Deny
	d.Reasons = append(d.Reasons, r)
}

func (d *Decision) deferUntil(r Reason) {
	r.Decision = channels.Defer
	if d.Decision != channels.Deny {
		d.Decision = channels.Defer
	}
	if r.Until.After(d.Until) {
		d.Until = r.Until
	}
	d.Reasons = append(d.Reasons, r)
}

func (d *Decision) limitReason(lr Reached) {
	r := Reason{Code: lr.Limit.Name, Reached: &lr, Until: lr.Until}
	switch lr.Limit.Name {
	case ReasonDuplicateTopic:
		r.Ref = lr.First.ID
		r.Detail = fmt.Sprintf("repeats touch %s on %s at %s", lr.First.ID, lr.First.Channel, lr.First.At.UTC().Format(time.RFC3339))
		d.deny(r)
		return
	case ReasonAbandonedLockout:
		r.Detail = fmt.Sprintf("a call the customer answered was abandoned at %s", lr.First.At.UTC().Format(time.RFC3339))
	default:
		r.Detail = fmt.Sprintf("%d of at most %d %s touches%s in %s", lr.Count, max(lr.Limit.Max, 1),
			lr.Limit.Purpose, onChannel(lr.Limit.Channel), lr.Limit.Window)
	}
	d.deferUntil(r)
}

func onChannel(ch string) string {
	if ch == "" {
		return ""
	}
	return " on " + ch
}

// conversations applies the rules that read the customer's conversations:
// open work and the gap after a resolved one.
func (p *Policy) conversations(ctx context.Context, rl *rules, r Request, at time.Time, d *Decision) error {
	if rl.openWork == OpenWorkIgnore && rl.minGap == 0 {
		return nil
	}
	var open []sessions.Conversation
	var gap sessions.Conversation
	q := sessions.ConversationQuery{CustomerID: r.CustomerID, Limit: 500}
	for {
		page, next, err := p.o.Store.Conversations(ctx, q)
		if err != nil {
			return fmt.Errorf("contact: conversations of customer %s: %w", r.CustomerID, err)
		}
		for _, c := range page {
			switch {
			case c.Status.Active() && c.ID != r.ConversationID && topicMatches(rl.openTopics, c.Topic):
				open = append(open, c)
			case c.Status == sessions.StatusResolved && topicMatches(rl.minGapTopics, c.Topic) &&
				c.ResolvedAt.After(gap.ResolvedAt):
				gap = c
			}
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	if len(open) > 0 && rl.openWork != OpenWorkIgnore {
		c := open[0] // the newest
		reason := Reason{Code: ReasonOpenWork, Ref: c.ID,
			Detail: fmt.Sprintf("%d open conversations (newest %s, topic %q)", len(open), c.ID, c.Topic)}
		if rl.openWork == OpenWorkHandoff {
			d.Handoff = &Handoff{ConversationID: c.ID, Assignee: c.Assignee}
			d.deny(reason)
		} else {
			reason.Until = at.Add(rl.recheck)
			d.deferUntil(reason)
		}
	}
	if end := gap.ResolvedAt.Add(rl.minGap); rl.minGap > 0 && !gap.ResolvedAt.IsZero() && end.After(at) {
		d.deferUntil(Reason{Code: ReasonMinGap, Ref: gap.ID, Until: end,
			Detail: fmt.Sprintf("conversation %s (topic %q) was resolved at %s", gap.ID, gap.Topic, gap.ResolvedAt.UTC().Format(time.RFC3339))})
	}
	return nil
}

// limits are the counting rules that apply to r.
func (p *Policy) limits(rl *rules, r Request) []Limit {
	var ls []Limit
	for _, c := range rl.caps {
		if c.Channel == "" || c.Channel == r.Channel {
			ls = append(ls, Limit{Name: ReasonFrequencyCap, Purpose: rl.purpose, Channel: c.Channel,
				Window: time.Duration(c.Window), Max: c.Max})
		}
	}
	if r.Topic != "" && rl.dupWindow > 0 {
		ls = append(ls, Limit{Name: ReasonDuplicateTopic, Topic: r.Topic, Window: rl.dupWindow})
	}
	if r.Campaign != "" && r.Channel == sessions.ChannelVoice && p.cfg.lockout > 0 {
		ls = append(ls, Limit{Name: ReasonAbandonedLockout, Channel: sessions.ChannelVoice,
			Outcome: OutcomeAbandoned, Window: p.cfg.lockout})
	}
	return ls
}

// reachedLimits is what a Claim of t would find among a customer's
// touches (in any order): the ledgers' own evaluate over those up to
// t.At, so a dry run and a claim agree on what a Limit means.
func reachedLimits(touches []Touch, t Touch, limits []Limit) []Reached {
	var upTo []Touch
	for _, x := range touches {
		if !x.At.After(t.At) {
			upTo = append(upTo, x)
		}
	}
	sortTouches(upTo)
	return evaluate(upTo, t.At, limits)
}

// consented reports the customer's consent to purpose: attribute
// consent_<purpose> set to yes or true.
func consented(c sessions.Customer, purpose string) bool {
	switch strings.ToLower(c.Attributes["consent_"+purpose]) {
	case "yes", "true":
		return true
	}
	return false
}

// topicMatches reports whether topic is one of words, or starts with one
// of them and ":" or "/"; no words match every topic.
func topicMatches(words []string, topic string) bool {
	if len(words) == 0 {
		return true
	}
	for _, w := range words {
		if rest, ok := strings.CutPrefix(topic, w); ok && (rest == "" || rest[0] == ':' || rest[0] == '/') {
			return true
		}
	}
	return false
}

// suppressionKeys are the do-not-contact keys of a customer: its id and
// the identities a suppression can name.
func suppressionKeys(customerID string, ids []sessions.Identity) []Key {
	keys := []Key{{Kind: "customer", Value: customerID}}
	for _, id := range ids {
		switch id.Kind {
		case sessions.IdentityPhone, sessions.IdentityEmail:
			keys = append(keys, Key{Kind: string(id.Kind), Value: id.Value})
		case sessions.IdentityWeChatOpenID:
			keys = append(keys, Key{Kind: string(id.Kind), Value: id.Namespace + ":" + id.Value})
		}
	}
	return keys
}
