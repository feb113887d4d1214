package contact

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/omnigate/omnigate/sessions"
)

// Clock tells the policy the time; tests pass one they can move.
type Clock interface{ Now() time.Time }

// The purposes every deployment has, whether configured or not.
const (
	PurposeService     = "service"
	PurposeSales       = "sales"
	PurposeCollections = "collections"
	PurposeNotice      = "notice"
)

// Channels a cap may name and a contact may go out on: sessions' channels
// that reach a customer (not "system").
var knownChannels = []string{
	sessions.ChannelWebchat, sessions.ChannelWeChat, sessions.ChannelSMS,
	sessions.ChannelVoice, sessions.ChannelAPI,
}

// Config is the `contact_policy:` section of the gateway's YAML file. The
// zero value is usable: the four built-in purposes, contacts between 08:00
// and 21:00 in the customer's local time (UTC when nothing tells it),
// sales and collections deferred while the customer has open work, and
// campaigns locked out for 72 hours after an abandoned call.
type Config struct {
	// Purposes are the rules per purpose. service, sales, collections and
	// notice always exist: an entry for one replaces its rules, any other
	// lowercase word adds a purpose. A missing built-in has every field at
	// its zero value. "reply" is not a purpose: a rep's reply is judged as
	// service.
	Purposes map[string]PurposeConfig `yaml:"purposes" json:"purposes,omitempty"`
	// DefaultTimeZone is the IANA zone of a customer whose profile has no
	// zone and whose phone numbers give none; empty means UTC.
	DefaultTimeZone string `yaml:"default_time_zone" json:"default_time_zone,omitempty"`
	// DefaultRegion is the ISO 3166 region ("CN") whose holidays apply to
	// a customer whose phone numbers give no region; empty means none, so
	// only holidays without regions apply to them.
	DefaultRegion string `yaml:"default_region" json:"default_region,omitempty"`
	// Holidays are the dates on which a purpose's quiet_hours.holidays
	// windows replace its weekday windows; empty means none.
	Holidays []Holiday `yaml:"holidays" json:"holidays,omitempty"`
	// AbandonedLockout is how long no campaign calls a customer after a
	// call of ours they answered that no rep took (a touch on voice with
	// outcome "abandoned"); zero means 72h, a negative value turns the
	// lockout off.
	AbandonedLockout Duration `yaml:"abandoned_lockout" json:"abandoned_lockout,omitempty"`
	// Campaigns override their purpose's rules for their own contacts, by
	// campaign name; a field left out keeps the purpose's value. Empty
	// means no campaign has overrides.
	Campaigns map[string]Override `yaml:"campaigns" json:"campaigns,omitempty"`
}

// PurposeConfig is the rules for contacts of one purpose.
type PurposeConfig struct {
	// NeedsConsent refuses a contact unless the customer's attribute
	// consent_<purpose> (consent_sales) is "yes" or "true"; false means
	// no consent is asked for.
	NeedsConsent bool `yaml:"needs_consent" json:"needs_consent,omitempty"`
	// QuietHours says when contacts may be made, in the customer's local
	// time; the zero value allows 08:00-21:00 every day, holidays included.
	QuietHours QuietHours `yaml:"quiet_hours" json:"quiet_hours"`
	// Caps limit the purpose's outbound contacts counted across every
	// channel (or one); empty means no cap.
	Caps []Cap `yaml:"caps" json:"caps,omitempty"`
	// MinGapAfterResolved defers contacts until this long after the
	// customer's last resolved conversation on one of MinGapTopics; zero
	// means no gap.
	MinGapAfterResolved Duration `yaml:"min_gap_after_resolved" json:"min_gap_after_resolved,omitempty"`
	// MinGapTopics are the topics whose resolution starts the gap (see
	// OpenWork.Topics for how a topic matches); empty means any.
	MinGapTopics []string `yaml:"min_gap_topics" json:"min_gap_topics,omitempty"`
	// OpenWork is what happens to a contact while the customer has open
	// work.
	OpenWork OpenWork `yaml:"open_work" json:"open_work"`
	// DuplicateWindow refuses an outbound contact on a topic when one on
	// the same topic (of any purpose, by anyone) was made within it; zero
	// means no duplicate rule.
	DuplicateWindow Duration `yaml:"duplicate_window" json:"duplicate_window,omitempty"`
}

// QuietHours are the windows in which contacts may be made, "HH:MM-HH:MM"
// in the customer's local time (end after start, "24:00" for midnight),
// or the word "closed". A window list may be written as one string.
type QuietHours struct {
	// Allowed are the windows on every day not named in Weekdays; nil
	// means 08:00-21:00.
	Allowed Windows `yaml:"allowed" json:"allowed,omitempty"`
	// Weekdays replace Allowed on the days they name (mon ... sun, or
	// monday ... sunday); empty means every day has Allowed.
	Weekdays map[string]Windows `yaml:"weekdays" json:"weekdays,omitempty"`
	// Holidays replace the day's windows on a holiday in the customer's
	// region ("closed": no sales on holidays); nil means holidays are
	// ordinary days.
	Holidays Windows `yaml:"holidays" json:"holidays,omitempty"`
}

// Cap is a frequency cap: at most Max outbound contacts of the purpose
// within any rolling Window.
type Cap struct {
	// Channel counts only the contacts on that channel (and applies only
	// to contacts on it); empty means every channel.
	Channel string `yaml:"channel" json:"channel,omitempty"`
	// Window is the rolling window ("7d", "30d", "12h"); required.
	Window Duration `yaml:"window" json:"window"`
	// Max is the contacts allowed in Window; at least 1.
	Max int `yaml:"max" json:"max"`
}

// Open-work actions.
const (
	OpenWorkDefer   = "defer"   // try again at Recheck
	OpenWorkHandoff = "handoff" // refuse, naming the conversation's owner
	OpenWorkIgnore  = "ignore"  // contact anyway
)

// OpenWork is the rule for a customer with an open or pending
// conversation (other than the one the contact goes into).
type OpenWork struct {
	// Action is defer, handoff (refuse and name the conversation and its
	// assignee, for the caller to give them a task) or ignore; empty means
	// ignore for service and notice, defer for every other purpose.
	Action string `yaml:"action" json:"action,omitempty"`
	// Topics are the conversation topics that count as open work: a word
	// matches a topic equal to it or starting with it and ":" or "/"
	// ("complaint" matches "complaint:order-42"); empty means any
	// conversation.
	Topics []string `yaml:"topics" json:"topics,omitempty"`
	// Recheck is how long a deferred contact waits before it is tried
	// again (open work has no known end); zero means 1h.
	Recheck Duration `yaml:"recheck" json:"recheck,omitempty"`
}

// Holiday is one date without ordinary contact hours.
type Holiday struct {
	// Date is the local date, YYYY-MM-DD; required.
	Date string `yaml:"date" json:"date"`
	// Regions are the ISO 3166 regions it is a holiday in; empty means
	// everywhere.
	Regions []string `yaml:"regions" json:"regions,omitempty"`
	// Name is for people reading the file and the decisions; optional.
	Name string `yaml:"name" json:"name,omitempty"`
}

// Override changes a campaign's rules; a nil field keeps its purpose's.
type Override struct {
	NeedsConsent        *bool       `yaml:"needs_consent" json:"needs_consent,omitempty"`
	QuietHours          *QuietHours `yaml:"quiet_hours" json:"quiet_hours,omitempty"`
	Caps                *[]Cap      `yaml:"caps" json:"caps,omitempty"`
	MinGapAfterResolved *Duration   `yaml:"min_gap_after_resolved" json:"min_gap_after_resolved,omitempty"`
	MinGapTopics        *[]string   `yaml:"min_gap_topics" json:"min_gap_topics,omitempty"`
	OpenWork            *OpenWork   `yaml:"open_work" json:"open_work,omitempty"`
	DuplicateWindow     *Duration   `yaml:"duplicate_window" json:"duplicate_window,omitempty"`
}

func (o Override) apply(p PurposeConfig) PurposeConfig {
	set(&p.NeedsConsent, o.NeedsConsent)
	set(&p.QuietHours, o.QuietHours)
	set(&p.Caps, o.Caps)
	set(&p.MinGapAfterResolved, o.MinGapAfterResolved)
	set(&p.MinGapTopics, o.MinGapTopics)
	set(&p.OpenWork, o.OpenWork)
	set(&p.DuplicateWindow, o.DuplicateWindow)
	return p
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Duration is a time.Duration that YAML and JSON may also write in days
// ("7d", "1d12h"), since contact rules are counted in days.
type Duration time.Duration

// ParseDuration reads "7d", "1d12h" or anything time.ParseDuration reads.
func ParseDuration(s string) (Duration, error) {
	days, rest, hasDays := strings.Cut(s, "d")
	if !hasDays {
		d, err := time.ParseDuration(s)
		return Duration(d), err
	}
	n, err := strconv.Atoi(days)
	if err != nil || n < 0 || n > 100*365 {
		return 0, fmt.Errorf("duration %q: want a whole number of days before d (7d, 1d12h)", s)
	}
	var r time.Duration
	if rest != "" {
		if r, err = time.ParseDuration(rest); err != nil || r < 0 {
			return 0, fmt.Errorf("duration %q: after the days, want hours or minutes (1d12h)", s)
		}
	}
	return Duration(time.Duration(n)*24*time.Hour + r), nil
}

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	*d = v
	return err
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Windows are contact windows as written ("09:00-12:00", "closed");
// Validate parses them.
type Windows []string

// UnmarshalYAML takes one window as a string or a list of them.
func (w *Windows) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*w = Windows{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*w = Windows(l)
	if *w == nil {
		*w = Windows{}
	}
	return nil
}

// Validate returns every problem in c at once, each with its YAML path.
func (c Config) Validate() error {
	_, err := c.compile()
	return err
}

// rules are one purpose's rules, parsed.
type rules struct {
	purpose      string
	needsConsent bool
	hours        schedule
	caps         []Cap
	minGap       time.Duration
	minGapTopics []string
	openWork     string
	openTopics   []string
	recheck      time.Duration
	dupWindow    time.Duration
}

// compiled is a Config checked and parsed, ready for every check.
type compiled struct {
	purposes      map[string]*rules
	campaigns     map[string]map[string]*rules // campaign → purpose → rules
	defaultZone   *time.Location
	defaultRegion string
	holidays      map[int][]string // yyyymmdd → regions, nil for everywhere
	lockout       time.Duration
}

type problems struct{ errs []error }

func (p *problems) add(path, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("contact_policy.%s: %s", path, fmt.Sprintf(format, args...)))
}

func (c Config) compile() (*compiled, error) {
	var p problems
	out := &compiled{
		purposes:      map[string]*rules{},
		campaigns:     map[string]map[string]*rules{},
		defaultZone:   time.UTC,
		defaultRegion: strings.ToUpper(c.DefaultRegion),
		holidays:      map[int][]string{},
		lockout:       72 * time.Hour,
	}
	if c.DefaultTimeZone != "" {
		loc, err := loadZone(c.DefaultTimeZone)
		if err != nil {
			p.add("default_time_zone", "%q is not an IANA time zone (Asia/Shanghai, America/Los_Angeles)", c.DefaultTimeZone)
		}
		out.defaultZone = loc
	}
	if c.DefaultRegion != "" && !sessions.ValidPhoneRegion(c.DefaultRegion) {
		p.add("default_region", "%q is not an ISO 3166 region (CN, US)", c.DefaultRegion)
	}
	if c.AbandonedLockout != 0 {
		out.lockout = max(time.Duration(c.AbandonedLockout), 0)
	}
	for i, h := range c.Holidays {
		path := fmt.Sprintf("holidays[%d]", i)
		d, err := time.Parse(time.DateOnly, h.Date)
		if err != nil {
			p.add(path+".date", "%q is not a date written YYYY-MM-DD", h.Date)
			continue
		}
		key := dateKey(d.Date())
		if rs, ok := out.holidays[key]; ok && (rs == nil || len(h.Regions) == 0) {
			out.holidays[key] = nil // everywhere wins
			continue
		}
		for j, r := range h.Regions {
			if !sessions.ValidPhoneRegion(r) {
				p.add(fmt.Sprintf("%s.regions[%d]", path, j), "%q is not an ISO 3166 region (CN, US)", r)
			}
			out.holidays[key] = append(out.holidays[key], strings.ToUpper(r))
		}
		if len(h.Regions) == 0 {
			out.holidays[key] = nil
		}
	}

	base := map[string]PurposeConfig{}
	for _, name := range []string{PurposeService, PurposeSales, PurposeCollections, PurposeNotice} {
		base[name] = PurposeConfig{}
	}
	for name, pc := range c.Purposes {
		if !validWord(name) || name == "reply" {
			p.add("purposes", "%q is not a purpose name: a lowercase word of letters, digits, _ and - other than reply", name)
			continue
		}
		base[name] = pc
	}
	for _, name := range sortedKeys(base) {
		out.purposes[name] = compileRules(&p, "purposes."+name, name, base[name])
	}
	for _, camp := range sortedKeys(c.Campaigns) {
		if camp == "" {
			p.add("campaigns", "a campaign needs a name")
			continue
		}
		o := c.Campaigns[camp]
		// The zero PurposeConfig is valid, so on it only the override's
		// own fields can be wrong: report them once, not per purpose
		// (the purposes' own problems are reported under purposes).
		compileRules(&p, "campaigns."+camp, "", o.apply(PurposeConfig{}))
		out.campaigns[camp] = map[string]*rules{}
		for _, name := range sortedKeys(base) {
			out.campaigns[camp][name] = compileRules(&problems{}, "", name, o.apply(base[name]))
		}
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func compileRules(p *problems, path, name string, pc PurposeConfig) *rules {
	r := &rules{
		purpose:      name,
		needsConsent: pc.NeedsConsent,
		minGap:       time.Duration(pc.MinGapAfterResolved),
		minGapTopics: pc.MinGapTopics,
		openWork:     pc.OpenWork.Action,
		openTopics:   pc.OpenWork.Topics,
		recheck:      time.Duration(pc.OpenWork.Recheck),
		dupWindow:    time.Duration(pc.DuplicateWindow),
		hours:        compileHours(p, path+".quiet_hours", pc.QuietHours),
	}
	if r.openWork == "" {
		r.openWork = OpenWorkDefer
		if name == PurposeService || name == PurposeNotice {
			r.openWork = OpenWorkIgnore
		}
	}
	switch r.openWork {
	case OpenWorkDefer, OpenWorkHandoff, OpenWorkIgnore:
	default:
		p.add(path+".open_work.action", "%q is not defer, handoff or ignore", r.openWork)
	}
	if r.recheck == 0 {
		r.recheck = time.Hour
	} else if r.recheck < 0 {
		p.add(path+".open_work.recheck", "must not be negative")
	}
	if r.minGap < 0 {
		p.add(path+".min_gap_after_resolved", "must not be negative")
	}
	if r.dupWindow < 0 {
		p.add(path+".duplicate_window", "must not be negative")
	}
	for i, cp := range pc.Caps {
		cpath := fmt.Sprintf("%s.caps[%d]", path, i)
		if cp.Channel != "" && !slices.Contains(knownChannels, cp.Channel) {
			p.add(cpath+".channel", "%q is not a channel (%s)", cp.Channel, strings.Join(knownChannels, ", "))
		}
		if cp.Window <= 0 {
			p.add(cpath+".window", "must be positive (7d, 12h)")
		}
		if cp.Max < 1 {
			p.add(cpath+".max", "must be at least 1 (to forbid the purpose, use needs_consent or a suppression)")
		}
	}
	r.caps = pc.Caps
	return r
}

var zoneCache sync.Map // zone name → *time.Location

// loadZone is time.LoadLocation, which reads the zone database on every
// call, behind a cache: a check looks a zone up every time.
func loadZone(name string) (*time.Location, error) {
	if loc, ok := zoneCache.Load(name); ok {
		return loc.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("contact: time zone %q is not an IANA zone", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zoneCache.Store(name, loc)
	return loc, nil
}

func validWord(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
