package contact

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/sessions"
)

// Test doubles. They are the least that drives the policy: L's
// MemoryLedger and memory suppressions replace them at merge.

// fakeLedger is a test double of Ledger: touches per customer under one
// lock, counted by reachedLimits.
type fakeLedger struct {
	mu      sync.Mutex
	touches map[string][]Touch
	claims  int
}

func newFakeLedger() *fakeLedger { return &fakeLedger{touches: map[string][]Touch{}} }

func (l *fakeLedger) Claim(_ context.Context, t Touch, limits []Limit) (Claimed, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.claims++
	ts := l.touches[t.CustomerID]
	if slices.ContainsFunc(ts, func(x Touch) bool { return x.ID == t.ID }) {
		return Claimed{Recorded: true}, nil
	}
	if r := reachedLimits(ts, t, limits); len(r) > 0 {
		return Claimed{Reached: r}, nil
	}
	l.touches[t.CustomerID] = append(ts, t)
	return Claimed{Recorded: true}, nil
}

func (l *fakeLedger) Record(_ context.Context, t Touch) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.touches[t.CustomerID] = append(l.touches[t.CustomerID], t)
	return nil
}

func (l *fakeLedger) Touches(_ context.Context, customerID string, since time.Time) ([]Touch, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Touch
	for _, t := range l.touches[customerID] {
		if !t.At.Before(since) {
			out = append(out, t)
		}
	}
	return out, nil
}

func (l *fakeLedger) Merge(context.Context, string, string) error {
	return errors.New("fake: no merge")
}
func (l *fakeLedger) Close() error { return nil }

func (l *fakeLedger) count(customerID string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.touches[customerID])
}

// fakeSuppressions is a test double of Suppressions: a list, matched by
// scanning it.
type fakeSuppressions struct{ list []Suppression }

func (f *fakeSuppressions) Add(_ context.Context, s Suppression) error {
	f.list = append(f.list, s)
	return nil
}

func (f *fakeSuppressions) Match(_ context.Context, keys []Key, channel, purpose string) ([]Suppression, error) {
	var out []Suppression
	for _, s := range f.list {
		if slices.Contains(keys, Key{s.Kind, s.Value}) && (s.Channel == "" || s.Channel == channel) &&
			(s.Purpose == "" || s.Purpose == purpose) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeSuppressions) Remove(context.Context, string, string, string, string) error { return nil }
func (f *fakeSuppressions) List(context.Context, string, int) ([]Suppression, string, error) {
	return f.list, "", nil
}
func (f *fakeSuppressions) Close() error { return nil }

// fakeStore is a test double of Store whose conversations carry the
// resolution times a test sets.
type fakeStore struct {
	customers map[string]sessions.Customer
	ids       map[string][]sessions.Identity
	convs     []sessions.Conversation // newest first
}

func (s *fakeStore) Customer(_ context.Context, id string) (sessions.Customer, error) {
	c, ok := s.customers[id]
	if !ok {
		return c, sessions.ErrNotFound
	}
	return c, nil
}

func (s *fakeStore) Identities(_ context.Context, id string) ([]sessions.Identity, error) {
	return s.ids[id], nil
}

func (s *fakeStore) Conversation(_ context.Context, id string) (sessions.Conversation, error) {
	for _, c := range s.convs {
		if c.ID == id {
			return c, nil
		}
	}
	return sessions.Conversation{}, sessions.ErrNotFound
}

func (s *fakeStore) Conversations(_ context.Context, q sessions.ConversationQuery) ([]sessions.Conversation, string, error) {
	var out []sessions.Conversation
	for _, c := range s.convs {
		if q.Matches(c) {
			out = append(out, c)
		}
	}
	return out, "", nil
}

func (s *fakeStore) addCustomer(c sessions.Customer, ids ...sessions.Identity) {
	s.customers[c.ID] = c
	s.ids[c.ID] = ids
}

// movingClock is a clock the test sets.
type movingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *movingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *movingClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

type fixture struct {
	p     *Policy
	led   *fakeLedger
	sup   *fakeSuppressions
	store *fakeStore
	clock *movingClock
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	f := &fixture{
		led: newFakeLedger(), sup: &fakeSuppressions{}, clock: &movingClock{},
		store: &fakeStore{customers: map[string]sessions.Customer{}, ids: map[string][]sessions.Identity{}},
	}
	p, err := NewPolicy(cfg, Options{Ledger: f.led, Suppressions: f.sup, Store: f.store, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	return f
}

func (f *fixture) eval(t *testing.T, r Request) Decision {
	t.Helper()
	d, err := f.p.Evaluate(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func phone(e164 string) sessions.Identity {
	return sessions.Identity{Kind: sessions.IdentityPhone, Value: e164, Verified: true}
}

func codes(d Decision) []string { return d.Verdict().Reasons }

func TestQuietHoursInLocalTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{DefaultTimeZone: "Europe/Berlin"})
	f.store.addCustomer(sessions.Customer{ID: "urumqi", TimeZone: "Asia/Urumqi"}, phone("+8613812345678"))
	f.store.addCustomer(sessions.Customer{ID: "shanghai", TimeZone: "Asia/Shanghai"})
	f.store.addCustomer(sessions.Customer{ID: "la", TimeZone: "America/Los_Angeles"})
	f.store.addCustomer(sessions.Customer{ID: "la-phone"}, phone("+14155550123"))
	f.store.addCustomer(sessions.Customer{ID: "cn-phone"}, phone("+8613812345678"))
	f.store.addCustomer(sessions.Customer{ID: "nobody"})
	// +1 605 spans Mountain and Central: allowed only when both allow,
	// 08:00-20:00 Mountain.
	f.store.addCustomer(sessions.Customer{ID: "two-zones"}, phone("+16055550123"))

	for _, tc := range []struct {
		customer, zone, source string
		wantZones              []string
		hour, min              int
		allow                  bool
		until                  string // local, next day unless allowed
	}{
		{"urumqi", "Asia/Urumqi", ZoneFromProfile, nil, 20, 59, true, ""},
		{"urumqi", "Asia/Urumqi", ZoneFromProfile, nil, 21, 1, false, "08:00"},
		{"shanghai", "Asia/Shanghai", ZoneFromProfile, nil, 20, 59, true, ""},
		{"shanghai", "Asia/Shanghai", ZoneFromProfile, nil, 21, 1, false, "08:00"},
		{"la", "America/Los_Angeles", ZoneFromProfile, nil, 20, 59, true, ""},
		{"la", "America/Los_Angeles", ZoneFromProfile, nil, 21, 1, false, "08:00"},
		{"la", "America/Los_Angeles", ZoneFromProfile, nil, 7, 59, false, "08:00 same day"},
		{"la-phone", "America/Los_Angeles", ZoneFromPhone, nil, 21, 1, false, "08:00"},
		{"cn-phone", "Asia/Shanghai", ZoneFromPhone, nil, 21, 1, false, "08:00"},
		{"nobody", "Europe/Berlin", ZoneFromDefault, nil, 21, 1, false, "08:00"},
		{"two-zones", "America/Denver", ZoneFromPhone, []string{"America/Denver", "America/North_Dakota/Center"}, 19, 59, true, ""},
		{"two-zones", "America/Denver", ZoneFromPhone, []string{"America/Denver", "America/North_Dakota/Center"}, 20, 1, false, "08:00"},
	} {
		t.Run(fmt.Sprintf("%s at %02d:%02d", tc.customer, tc.hour, tc.min), func(t *testing.T) {
			loc := mustZone(t, tc.zone)
			at := time.Date(2026, 6, 10, tc.hour, tc.min, 0, 0, loc)
			d := f.eval(t, Request{CustomerID: tc.customer, Channel: sessions.ChannelSMS, Purpose: PurposeNotice, At: at, DryRun: true})
			if d.ZoneSource != tc.source {
				t.Errorf("zone source %q, want %q", d.ZoneSource, tc.source)
			}
			if want := cmpZones(tc.wantZones, tc.zone); !slices.Equal(d.TimeZones, want) {
				t.Errorf("zones %v, want %v", d.TimeZones, want)
			}
			if tc.allow {
				if d.Decision != channels.Allow {
					t.Fatalf("want allow, got %+v", d)
				}
				return
			}
			day := 11
			if strings.HasSuffix(tc.until, "same day") {
				day = 10
			}
			want := time.Date(2026, 6, day, 8, 0, 0, 0, loc)
			if d.Decision != channels.Defer || !d.Until.Equal(want) || !slices.Equal(codes(d), []string{ReasonQuietHours}) {
				t.Fatalf("want defer until %s (quiet_hours), got %s until %s %v", want, d.Decision, d.Until.In(loc), codes(d))
			}
		})
	}
}

// TestTollFreeNumber: a toll-free number "spans" every zone from Guam to
// Newfoundland. With 08:00-21:00 they share 22:00-23:30 UTC; with a
// window they don't share, the default zone decides.
func TestTollFreeNumber(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{DefaultTimeZone: "Europe/Berlin", Purposes: map[string]PurposeConfig{
		"sales": {QuietHours: QuietHours{Allowed: Windows{"09:00-12:00"}}},
	}})
	f.store.addCustomer(sessions.Customer{ID: "toll-free"}, phone("+18005550123"))
	at := time.Date(2026, 6, 10, 19, 1, 0, 0, time.UTC)
	d := f.eval(t, Request{CustomerID: "toll-free", Channel: "sms", Purpose: PurposeNotice, At: at, DryRun: true})
	if want := time.Date(2026, 6, 10, 22, 0, 0, 0, time.UTC); d.ZoneSource != ZoneFromPhone || len(d.TimeZones) < 30 || !d.Until.Equal(want) {
		t.Fatalf("notice: %s from %s until %s, want until %s", d.Decision, d.ZoneSource, d.Until.UTC(), want)
	}
	d = f.eval(t, Request{CustomerID: "toll-free", Channel: "sms", Purpose: PurposeSales, At: at, DryRun: true})
	if want := time.Date(2026, 6, 11, 9, 0, 0, 0, mustZone(t, "Europe/Berlin")); d.ZoneSource != ZoneFromDefault || !d.Until.Equal(want) {
		t.Fatalf("sales: %s from %s %v until %s, want until %s", d.Decision, d.ZoneSource, d.TimeZones, d.Until, want)
	}
}

func cmpZones(zones []string, zone string) []string {
	if zones == nil {
		return []string{zone}
	}
	return zones
}

func TestQuietHoursAcrossDST(t *testing.T) {
	t.Parallel()
	la := mustZone(t, "America/Los_Angeles")
	f := newFixture(t, Config{Purposes: map[string]PurposeConfig{
		"sales": {QuietHours: QuietHours{Allowed: Windows{"09:00-12:00", "14:00-20:00"}}},
	}})
	f.store.addCustomer(sessions.Customer{ID: "la", TimeZone: "America/Los_Angeles"})
	for _, tc := range []struct {
		name      string
		at, until time.Time
		utc       string
	}{
		// 2026-03-08 02:00 PST becomes 03:00 PDT: the night is 10 hours
		// (not 11), and 09:00 is 16:00Z, not 17:00Z.
		{"spring forward", time.Date(2026, 3, 7, 21, 30, 0, 0, la), time.Date(2026, 3, 8, 9, 0, 0, 0, la), "2026-03-08T16:00:00Z"},
		// 2026-11-01 02:00 PDT becomes 01:00 PST: 09:00 is 17:00Z.
		{"fall back", time.Date(2026, 10, 31, 21, 30, 0, 0, la), time.Date(2026, 11, 1, 9, 0, 0, 0, la), "2026-11-01T17:00:00Z"},
		{"lunch on the spring-forward day", time.Date(2026, 3, 8, 12, 30, 0, 0, la), time.Date(2026, 3, 8, 14, 0, 0, 0, la), "2026-03-08T21:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := f.eval(t, Request{CustomerID: "la", Channel: sessions.ChannelVoice, Purpose: PurposeSales, At: tc.at, DryRun: true})
			if d.Decision != channels.Defer || !d.Until.Equal(tc.until) || d.Until.UTC().Format(time.RFC3339) != tc.utc {
				t.Fatalf("got %s until %s (%s), want until %s (%s)", d.Decision, d.Until.In(la), d.Until.UTC().Format(time.RFC3339), tc.until, tc.utc)
			}
		})
	}
}

func TestHoliday(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{
		Holidays: []Holiday{{Date: "2026-10-01", Regions: []string{"CN"}, Name: "National Day"}, {Date: "2026-10-02", Regions: []string{"cn"}}},
		Purposes: map[string]PurposeConfig{"sales": {QuietHours: QuietHours{Holidays: Windows{"closed"}}}},
	})
	f.store.addCustomer(sessions.Customer{ID: "cn"}, phone("+8613812345678"))
	f.store.addCustomer(sessions.Customer{ID: "us", TimeZone: "Asia/Shanghai"}, phone("+14155550123"))
	sh := mustZone(t, "Asia/Shanghai")
	at := time.Date(2026, 10, 1, 10, 0, 0, 0, sh)
	for _, tc := range []struct {
		name, customer, purpose string
		want                    channels.Decision
		reason                  string
		until                   time.Time
	}{
		{"sales on a CN holiday", "cn", PurposeSales, channels.Defer, ReasonHoliday, time.Date(2026, 10, 3, 8, 0, 0, 0, sh)},
		{"service on a CN holiday", "cn", PurposeService, channels.Allow, "", time.Time{}},
		{"sales to a US number in Shanghai", "us", PurposeSales, channels.Allow, "", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := f.eval(t, Request{CustomerID: tc.customer, Channel: sessions.ChannelSMS, Purpose: tc.purpose, At: at, DryRun: true})
			if d.Decision != tc.want || !d.Until.Equal(tc.until) || (tc.reason != "" && !slices.Equal(codes(d), []string{tc.reason})) {
				t.Fatalf("got %s until %s %v, want %s until %s %s", d.Decision, d.Until, codes(d), tc.want, tc.until, tc.reason)
			}
		})
	}
}

// salesConfig is the example: at most 1 sales call in 7 days and
// 3 sales touches in 30 days, nothing within 7 days after a complaint is
// resolved, campaigns held while a complaint is open.
func salesConfig() Config {
	return Config{
		DefaultTimeZone: "Asia/Shanghai",
		Purposes: map[string]PurposeConfig{
			"sales": {
				NeedsConsent:        true,
				Caps:                []Cap{{Channel: "voice", Window: Duration(7 * 24 * time.Hour), Max: 1}, {Window: Duration(30 * 24 * time.Hour), Max: 3}},
				MinGapAfterResolved: Duration(7 * 24 * time.Hour),
				MinGapTopics:        []string{"complaint"},
				OpenWork:            OpenWork{Topics: []string{"complaint"}},
				DuplicateWindow:     Duration(24 * time.Hour),
			},
			"notice":  {DuplicateWindow: Duration(24 * time.Hour)},
			"service": {Caps: []Cap{{Window: Duration(24 * time.Hour), Max: 1}}},
		},
		Campaigns: map[string]Override{"handoff-campaign": {OpenWork: &OpenWork{Action: OpenWorkHandoff, Topics: []string{"complaint"}}}},
	}
}

var consenting = sessions.Customer{ID: "cus", Attributes: map[string]string{"consent_sales": "yes"}}

// noon is a Wednesday noon in Shanghai: inside every contact window.
func noon(t testing.TB, days int) time.Time {
	return time.Date(2026, 6, 10+days, 12, 0, 0, 0, mustZone(t, "Asia/Shanghai"))
}

func TestFrequencyCapsAcrossChannels(t *testing.T) {
	t.Parallel()
	f := newFixture(t, salesConfig())
	f.store.addCustomer(consenting)
	day0 := noon(t, 0)
	steps := []struct {
		day     int
		channel string
		purpose string
		want    channels.Decision
		until   time.Time
	}{
		{0, "voice", PurposeSales, channels.Allow, time.Time{}},
		{1, "voice", PurposeSales, channels.Defer, day0.Add(7 * 24 * time.Hour)}, // 1 call in 7 days
		{1, "sms", PurposeSales, channels.Allow, time.Time{}},
		{1, "voice", PurposeService, channels.Allow, time.Time{}}, // service is not sales
		{2, "wechat", PurposeSales, channels.Allow, time.Time{}},
		{3, "sms", PurposeSales, channels.Defer, day0.Add(30 * 24 * time.Hour)}, // 3 touches in 30 days
		{30, "sms", PurposeSales, channels.Allow, time.Time{}},
	}
	for i, s := range steps {
		f.clock.set(noon(t, s.day))
		d := f.eval(t, Request{CustomerID: "cus", Channel: s.channel, Purpose: s.purpose})
		if d.Decision != s.want || !d.Until.Equal(s.until) {
			t.Fatalf("step %d (day %d %s %s): got %s until %s %v, want %s until %s", i, s.day, s.purpose, s.channel, d.Decision, d.Until, codes(d), s.want, s.until)
		}
		if s.want == channels.Defer && !slices.Equal(codes(d), []string{ReasonFrequencyCap}) {
			t.Fatalf("step %d: reasons %v", i, codes(d))
		}
		if d.Recorded != (s.want == channels.Allow) {
			t.Fatalf("step %d: recorded %v", i, d.Recorded)
		}
	}
	if n := f.led.count("cus"); n != 5 {
		t.Fatalf("ledger holds %d touches, want the 5 allowed", n)
	}
}

func TestCapUntilMovesIntoContactHours(t *testing.T) {
	t.Parallel()
	f := newFixture(t, salesConfig())
	f.store.addCustomer(consenting)
	sh := mustZone(t, "Asia/Shanghai")
	// A call at 22:30 (a rep's, recorded as it was made).
	if err := f.led.Record(context.Background(), Touch{ID: "tch_late", CustomerID: "cus", Channel: "voice", Direction: Outbound,
		Purpose: PurposeSales, At: time.Date(2026, 6, 10, 22, 30, 0, 0, sh)}); err != nil {
		t.Fatal(err)
	}
	f.clock.set(time.Date(2026, 6, 12, 10, 0, 0, 0, sh))
	d := f.eval(t, Request{CustomerID: "cus", Channel: "voice", Purpose: PurposeSales})
	// The cap frees a week after 22:30; the next contact hour is 08:00.
	if want := time.Date(2026, 6, 18, 8, 0, 0, 0, sh); d.Decision != channels.Defer || !d.Until.Equal(want) {
		t.Fatalf("got %s until %s, want until %s", d.Decision, d.Until.In(sh), want)
	}
}

func TestMinGapAfterResolvedComplaint(t *testing.T) {
	t.Parallel()
	f := newFixture(t, salesConfig())
	f.store.addCustomer(consenting)
	resolved := noon(t, 0)
	f.store.convs = []sessions.Conversation{
		{ID: "cnv_2", CustomerID: "cus", Status: sessions.StatusResolved, Topic: "question", ResolvedAt: resolved.Add(48 * time.Hour)},
		{ID: "cnv_1", CustomerID: "cus", Status: sessions.StatusResolved, Topic: "complaint:order-42", ResolvedAt: resolved},
	}
	f.clock.set(noon(t, 3))
	d := f.eval(t, Request{CustomerID: "cus", Channel: "sms", Purpose: PurposeSales})
	if want := resolved.Add(7 * 24 * time.Hour); d.Decision != channels.Defer || !d.Until.Equal(want) ||
		!slices.Equal(codes(d), []string{ReasonMinGap}) || d.Reasons[0].Ref != "cnv_1" {
		t.Fatalf("got %s until %s %+v, want min_gap until %s", d.Decision, d.Until, d.Reasons, want)
	}
	f.clock.set(resolved.Add(7 * 24 * time.Hour))
	if d := f.eval(t, Request{CustomerID: "cus", Channel: "sms", Purpose: PurposeSales}); d.Decision != channels.Allow {
		t.Fatalf("a week after: %+v", d)
	}
}

func TestOpenWork(t *testing.T) {
	t.Parallel()
	f := newFixture(t, salesConfig())
	f.store.addCustomer(consenting)
	f.store.convs = []sessions.Conversation{
		{ID: "cnv_q", CustomerID: "cus", Status: sessions.StatusOpen, Topic: "question"},
		{ID: "cnv_c", CustomerID: "cus", Status: sessions.StatusPending, Topic: "complaint/order-42", Assignee: "alice"},
	}
	at := noon(t, 0)
	f.clock.set(at)

	d := f.eval(t, Request{CustomerID: "cus", Channel: "voice", Purpose: PurposeSales, Campaign: "summer"})
	if d.Decision != channels.Defer || !d.Until.Equal(at.Add(time.Hour)) || !slices.Equal(codes(d), []string{ReasonOpenWork}) || d.Reasons[0].Ref != "cnv_c" || d.Recorded {
		t.Fatalf("campaign contact: %+v", d)
	}
	d = f.eval(t, Request{CustomerID: "cus", Channel: "voice", Purpose: PurposeSales, Campaign: "handoff-campaign"})
	if d.Decision != channels.Deny || d.Handoff == nil || *d.Handoff != (Handoff{ConversationID: "cnv_c", Assignee: "alice"}) {
		t.Fatalf("handoff campaign: %+v", d)
	}
	// A notice ignores open work; the complaint's own conversation is not
	// open work for a contact that goes into it.
	if d := f.eval(t, Request{CustomerID: "cus", Channel: "sms", Purpose: PurposeNotice}); d.Decision != channels.Allow {
		t.Fatalf("notice: %+v", d)
	}
	if d := f.eval(t, Request{CustomerID: "cus", ConversationID: "cnv_c", Channel: "sms", Purpose: PurposeSales}); d.Decision != channels.Allow {
		t.Fatalf("into the conversation itself: %+v", d)
	}
}

func TestDuplicateTopicNamesTheFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t, salesConfig())
	f.store.addCustomer(consenting)
	f.clock.set(noon(t, 0))
	first := f.eval(t, Request{CustomerID: "cus", Channel: "sms", Purpose: PurposeNotice, Topic: "callback:order-42", TouchID: "tch_rep_a"})
	if first.Decision != channels.Allow {
		t.Fatalf("first: %+v", first)
	}
	// A retry of the same touch is the same contact, not a duplicate.
	if d := f.eval(t, Request{CustomerID: "cus", Channel: "sms", Purpose: PurposeNotice, Topic: "callback:order-42", TouchID: "tch_rep_a"}); d.Decision != channels.Allow {
		t.Fatalf("retry: %+v", d)
	}
	f.clock.set(noon(t, 0).Add(10 * time.Minute))
	d := f.eval(t, Request{CustomerID: "cus", Channel: "voice", Purpose: PurposeNotice, Topic: "callback:order-42"})
	if d.Decision != channels.Deny || !slices.Equal(codes(d), []string{ReasonDuplicateTopic}) || d.Reasons[0].Ref != "tch_rep_a" || d.Reasons[0].Reached.First.ID != "tch_rep_a" {
		t.Fatalf("second: %+v", d)
	}
	f.clock.set(noon(t, 1))
	if d := f.eval(t, Request{CustomerID: "cus", Channel: "voice", Purpose: PurposeNotice, Topic: "callback:order-42"}); d.Decision != channels.Allow {
		t.Fatalf("a day later: %+v", d)
	}
}

func TestAbandonedLockout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{DefaultTimeZone: "Asia/Shanghai"})
	f.store.addCustomer(sessions.Customer{ID: "cus"})
	call := noon(t, 0)
	if err := f.led.Record(context.Background(), Touch{ID: "tch_call", CustomerID: "cus", Channel: "voice", Direction: Outbound,
		Purpose: PurposeSales, Campaign: "spring", Outcome: OutcomeAbandoned, At: call}); err != nil {
		t.Fatal(err)
	}
	req := Request{CustomerID: "cus", Channel: "voice", Purpose: PurposeSales, Campaign: "autumn"}
	f.clock.set(call.Add(71 * time.Hour))
	d := f.eval(t, req)
	if d.Decision != channels.Defer || !d.Until.Equal(call.Add(72*time.Hour)) || !slices.Equal(codes(d), []string{ReasonAbandonedLockout}) {
		t.Fatalf("71h after: %+v", d)
	}
	// Not a campaign, or not a call: no lockout.
	if d := f.eval(t, Request{CustomerID: "cus", Channel: "voice", Purpose: PurposeSales}); d.Decision != channels.Allow {
		t.Fatalf("a rep's call: %+v", d)
	}
	f.clock.set(call.Add(72 * time.Hour))
	if d := f.eval(t, req); d.Decision != channels.Allow {
		t.Fatalf("72h after: %+v", d)
	}
}

func TestConsent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, salesConfig())
	f.store.addCustomer(sessions.Customer{ID: "no"})
	f.store.addCustomer(sessions.Customer{ID: "withdrawn", Attributes: map[string]string{"consent_sales": "no"}})
	f.store.addCustomer(sessions.Customer{ID: "yes", Attributes: map[string]string{"consent_sales": "TRUE"}})
	f.clock.set(noon(t, 0))
	for id, want := range map[string]channels.Decision{"no": channels.Deny, "withdrawn": channels.Deny, "yes": channels.Allow} {
		d := f.eval(t, Request{CustomerID: id, Channel: "sms", Purpose: PurposeSales})
		if d.Decision != want || (want == channels.Deny && !slices.Equal(codes(d), []string{ReasonNoConsent})) {
			t.Errorf("%s: %+v", id, d)
		}
		// Notices need no consent.
		if d := f.eval(t, Request{CustomerID: id, Channel: "sms", Purpose: PurposeNotice}); d.Decision != channels.Allow {
			t.Errorf("%s notice: %+v", id, d)
		}
	}
}

func TestCombinedRulesReportEveryReason(t *testing.T) {
	t.Parallel()
	f := newFixture(t, salesConfig())
	f.store.addCustomer(sessions.Customer{ID: "cus", TimeZone: "Asia/Shanghai"}, phone("+8613812345678"))
	f.store.convs = []sessions.Conversation{{ID: "cnv_c", CustomerID: "cus", Status: sessions.StatusOpen, Topic: "complaint"}}
	f.sup.list = []Suppression{{Kind: "phone", Value: "+8613812345678", Purpose: PurposeSales, Source: "sms_stop"}}
	late := time.Date(2026, 6, 10, 22, 0, 0, 0, mustZone(t, "Asia/Shanghai"))
	if err := f.led.Record(context.Background(), Touch{ID: "tch_old", CustomerID: "cus", Channel: "voice", Direction: Outbound,
		Purpose: PurposeSales, Topic: "upgrade", At: late.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f.clock.set(late)
	d := f.eval(t, Request{CustomerID: "cus", Channel: "voice", Purpose: PurposeSales, Topic: "upgrade", Campaign: "summer"})
	want := []string{ReasonDoNotContact, ReasonNoConsent, ReasonQuietHours, ReasonOpenWork, ReasonFrequencyCap, ReasonDuplicateTopic}
	if d.Decision != channels.Deny || !d.Until.IsZero() || !slices.Equal(codes(d), want) {
		t.Fatalf("got %s %v, want deny %v", d.Decision, codes(d), want)
	}
	if d.Recorded || f.led.count("cus") != 1 {
		t.Fatal("a refused contact was recorded")
	}
	v := d.Verdict()
	if v.Decision != channels.Deny || len(v.Reasons) != len(want) {
		t.Fatalf("verdict %+v", v)
	}

	// Without the refusals, the deferrals: Until is the latest of them.
	f.sup.list = nil
	f.store.customers["cus"] = sessions.Customer{ID: "cus", TimeZone: "Asia/Shanghai", Attributes: map[string]string{"consent_sales": "yes"}}
	d = f.eval(t, Request{CustomerID: "cus", Channel: "voice", Purpose: PurposeSales, Topic: "other", Campaign: "summer"})
	cap := late.Add(-time.Hour).Add(7 * 24 * time.Hour) // 21:00, after the contact hours
	wantUntil := time.Date(2026, 6, 18, 8, 0, 0, 0, mustZone(t, "Asia/Shanghai"))
	if d.Decision != channels.Defer || !d.Until.Equal(wantUntil) ||
		!slices.Equal(codes(d), []string{ReasonQuietHours, ReasonOpenWork, ReasonFrequencyCap}) || !d.Reasons[2].Until.Equal(cap) {
		t.Fatalf("got %s until %s %+v, want defer until %s", d.Decision, d.Until, d.Reasons, wantUntil)
	}
}

func TestReplyInOpenConversation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, salesConfig())
	f.store.addCustomer(sessions.Customer{ID: "cus", TimeZone: "Asia/Shanghai"})
	f.store.convs = []sessions.Conversation{
		{ID: "cnv_open", CustomerID: "cus", Status: sessions.StatusOpen},
		{ID: "cnv_done", CustomerID: "cus", Status: sessions.StatusResolved},
	}
	f.clock.set(time.Date(2026, 6, 10, 23, 30, 0, 0, mustZone(t, "Asia/Shanghai")))
	check := func(conv string) channels.Verdict {
		t.Helper()
		v, err := f.p.Check(context.Background(), channels.Contact{CustomerID: "cus", ConversationID: conv, Channel: "webchat", Purpose: channels.PurposeReply, Author: "rep:alice"})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Late at night and over the service cap of 1 a day: never capped.
	for i := range 3 {
		if v := check("cnv_open"); v.Decision != channels.Allow {
			t.Fatalf("reply %d: %+v", i, v)
		}
	}
	if n := f.led.count("cus"); n != 3 {
		t.Fatalf("replies recorded: %d", n)
	}
	// A reply into a resolved conversation is an outbound service contact.
	if v := check("cnv_done"); v.Decision != channels.Defer || !slices.Contains(v.Reasons, ReasonQuietHours) || !slices.Contains(v.Reasons, ReasonFrequencyCap) {
		t.Fatalf("reply to a resolved conversation: %+v", v)
	}
	// Do-not-contact still refuses.
	f.sup.list = []Suppression{{Kind: "customer", Value: "cus", Channel: "webchat"}}
	if v := check("cnv_open"); v.Decision != channels.Deny || !slices.Equal(v.Reasons, []string{ReasonDoNotContact}) {
		t.Fatalf("suppressed reply: %+v", v)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	f.store.addCustomer(sessions.Customer{ID: "cus"})
	for _, r := range []Request{
		{CustomerID: "cus", Channel: "fax", Purpose: PurposeSales},
		{CustomerID: "cus", Channel: "sms", Purpose: "marketing"},
		{CustomerID: "", Channel: "sms", Purpose: PurposeSales},
	} {
		if _, err := f.p.Evaluate(context.Background(), r); !errors.Is(err, sessions.ErrInvalid) {
			t.Errorf("%+v: %v", r, err)
		}
	}
	if _, err := f.p.Evaluate(context.Background(), Request{CustomerID: "ghost", Channel: "sms", Purpose: PurposeSales}); !errors.Is(err, sessions.ErrNotFound) {
		t.Errorf("unknown customer: %v", err)
	}
	if f.led.claims != 0 {
		t.Fatal("a bad request reached the ledger")
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	cfg := Config{
		DefaultTimeZone: "Asia/Atlantis",
		DefaultRegion:   "XX",
		Holidays:        []Holiday{{Date: "2026-13-01"}, {Date: "2026-10-01", Regions: []string{"Narnia"}}},
		Purposes: map[string]PurposeConfig{
			"Sales!": {},
			"reply":  {},
			"sales": {
				QuietHours: QuietHours{
					Allowed:  Windows{"09:00-12:00", "11:00-14:00"},
					Weekdays: map[string]Windows{"funday": {"closed"}, "sat": {"9-5"}, "sun": {"21:00-02:00"}},
				},
				Caps:     []Cap{{Channel: "fax", Window: Duration(time.Hour), Max: 1}, {Max: 0}},
				OpenWork: OpenWork{Action: "postpone"},
			},
			"survey": {QuietHours: QuietHours{Allowed: Windows{"closed"}}},
		},
		Campaigns: map[string]Override{"x": {Caps: &[]Cap{{Channel: "pager", Window: Duration(time.Hour), Max: 1}}}},
	}
	_, err := NewPolicy(cfg, Options{Ledger: newFakeLedger(), Suppressions: &fakeSuppressions{}, Store: &fakeStore{}})
	if err == nil {
		t.Fatal("a bad config built a policy")
	}
	for _, want := range []string{
		`contact_policy.default_time_zone: "Asia/Atlantis" is not an IANA time zone`,
		`contact_policy.default_region: "XX"`,
		`contact_policy.holidays[0].date: "2026-13-01"`,
		`contact_policy.holidays[1].regions[0]: "Narnia"`,
		`contact_policy.purposes: "Sales!" is not a purpose name`,
		`contact_policy.purposes: "reply" is not a purpose name`,
		`contact_policy.purposes.sales.quiet_hours.allowed: windows 09:00-12:00 and 11:00-14:00 overlap`,
		`contact_policy.purposes.sales.quiet_hours.weekdays.funday: not a day of the week`,
		`contact_policy.purposes.sales.quiet_hours.weekdays.sat[0]: "9-5" is not a window`,
		`contact_policy.purposes.sales.quiet_hours.weekdays.sun[0]: "21:00-02:00" ends before it starts`,
		`contact_policy.purposes.sales.caps[0].channel: "fax" is not a channel`,
		`contact_policy.purposes.sales.caps[1].window: must be positive`,
		`contact_policy.purposes.sales.caps[1].max: must be at least 1`,
		`contact_policy.purposes.sales.open_work.action: "postpone" is not defer, handoff or ignore`,
		`contact_policy.purposes.survey.quiet_hours: every day is closed`,
		`contact_policy.campaigns.x.caps[0].channel: "pager" is not a channel`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 16 {
		t.Errorf("%d problems reported, want 16 (each once):\n%v", n, err)
	}
}

func TestConfigFromYAML(t *testing.T) {
	t.Parallel()
	const doc = `
default_time_zone: Asia/Shanghai
default_region: CN
abandoned_lockout: 3d
holidays:
  - {date: 2026-10-01, regions: [CN], name: National Day}
purposes:
  sales:
    needs_consent: true
    quiet_hours:
      allowed: "09:00-20:00"
      weekdays: {sat: ["10:00-12:00", "14:00-18:00"], sun: closed}
      holidays: closed
    caps:
      - {channel: voice, window: 7d, max: 1}
      - {window: 30d, max: 3}
    min_gap_after_resolved: 7d
    min_gap_topics: [complaint]
    open_work: {action: defer, topics: [complaint], recheck: 2h}
    duplicate_window: 24h
campaigns:
  spring:
    duplicate_window: 1d12h
    quiet_hours: {allowed: "10:00-18:00"}
`
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := cfg.compile()
	if err != nil {
		t.Fatal(err)
	}
	sales := c.purposes["sales"]
	if sales.hours.days[time.Sunday] != nil || len(sales.hours.days[time.Saturday]) != 2 || !sales.hours.holidayRule ||
		sales.recheck != 2*time.Hour || time.Duration(sales.caps[1].Window) != 30*24*time.Hour || c.lockout != 72*time.Hour {
		t.Fatalf("sales: %+v", sales)
	}
	spring := c.campaigns["spring"]["sales"]
	if spring.dupWindow != 36*time.Hour || spring.hours.days[time.Sunday][0] != (span{600, 1080}) || !spring.needsConsent {
		t.Fatalf("spring: %+v", spring)
	}

	var bad Config
	dec = yaml.NewDecoder(strings.NewReader("abandoned_lockout: 3 days\n"))
	if err := dec.Decode(&bad); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad duration: %v", err)
	}
}

// TestCapOfOneUnderRace: concurrent claims under a cap of 1 record one.
func TestCapOfOneUnderRace(t *testing.T) {
	t.Parallel()
	f := newFixture(t, salesConfig())
	f.store.addCustomer(consenting)
	f.clock.set(noon(t, 0))
	var wg sync.WaitGroup
	allowed := make(chan bool, 20)
	for range 20 {
		wg.Go(func() {
			d, err := f.p.Evaluate(context.Background(), Request{CustomerID: "cus", Channel: "voice", Purpose: PurposeSales})
			allowed <- err == nil && d.Decision == channels.Allow
		})
	}
	wg.Wait()
	close(allowed)
	n := 0
	for ok := range allowed {
		if ok {
			n++
		}
	}
	if n != 1 || f.led.count("cus") != 1 {
		t.Fatalf("%d allowed, %d recorded; want 1", n, f.led.count("cus"))
	}
}

// BenchmarkPolicyCheck is Check in process with the test doubles: 100,000
// customers with a phone each, the example sales caps, inside contact
// hours. The ledger's own cost is L's to measure.
func BenchmarkPolicyCheck(b *testing.B) {
	p, ids := benchPolicy(b)
	ctx := context.Background()
	var lat []time.Duration
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		start := time.Now()
		v, err := p.Check(ctx, channels.Contact{CustomerID: ids[i%len(ids)], Channel: "sms", Purpose: PurposeSales})
		lat = append(lat, time.Since(start))
		if err != nil || v.Decision != channels.Allow {
			b.Fatal(v, err)
		}
		i++
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkPolicyCheckParallel is the same on every core, as a gateway's
// concurrent requests check.
func BenchmarkPolicyCheckParallel(b *testing.B) {
	p, ids := benchPolicy(b)
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[int(n.Add(1))%len(ids)]
			if v, err := p.Check(ctx, channels.Contact{CustomerID: id, Channel: "sms", Purpose: PurposeSales}); err != nil || v.Decision != channels.Allow {
				b.Error(v, err)
				return
			}
		}
	})
}

// benchPolicy is a policy on the real in-process ledger and list, with
// 100,000 customers (each with a phone, so its zone comes from the number)
// and a cap that never bites, so every check claims and records.
func benchPolicy(b *testing.B) (*Policy, []string) {
	cfg := salesConfig()
	cfg.Purposes["sales"] = PurposeConfig{Caps: []Cap{{Window: Duration(time.Hour), Max: 1 << 30}}, OpenWork: OpenWork{Topics: []string{"complaint"}}}
	f := newFixture(b, cfg)
	p, err := NewPolicy(cfg, Options{Ledger: NewMemoryLedger(LedgerOptions{}), Suppressions: NewMemorySuppressions(),
		Store: f.store, Clock: f.clock})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("cus_%d", i)
		f.store.addCustomer(sessions.Customer{ID: ids[i]}, phone(fmt.Sprintf("+86138%08d", i)))
	}
	f.clock.set(noon(b, 0))
	return p, ids
}

// TestCheckPassesIDAndTopic: through channels.Policy, a retry of one
// message (same id) is one touch, and a second message on the same topic
// within notice's duplicate window is refused.
func TestCheckPassesIDAndTopic(t *testing.T) {
	t.Parallel()
	f := newFixture(t, salesConfig())
	f.store.addCustomer(sessions.Customer{ID: "cus", TimeZone: "Asia/Shanghai"})
	f.clock.set(noon(t, 0))
	check := func(id string) channels.Verdict {
		t.Helper()
		v, err := f.p.Check(context.Background(), channels.Contact{CustomerID: "cus", Channel: "sms",
			Purpose: channels.PurposeNotice, Author: "integrator:crm", ID: id, Topic: "order-42"})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for range 2 {
		if v := check("n-1"); v.Decision != channels.Allow {
			t.Fatalf("notice n-1: %+v", v)
		}
	}
	if n := f.led.count("cus"); n != 1 {
		t.Fatalf("a retry recorded %d touches, want 1", n)
	}
	if got := f.led.touches["cus"][0]; got.ID != "n-1" || got.Topic != "order-42" {
		t.Errorf("touch = %+v", got)
	}
	if v := check("n-2"); v.Decision != channels.Deny || !slices.Equal(v.Reasons, []string{ReasonDuplicateTopic}) {
		t.Fatalf("second notice on the topic: %+v", v)
	}
}
