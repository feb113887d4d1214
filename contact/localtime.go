package contact

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/omnigate/omnigate/sessions"
)

// Where the customer's local time comes from.
const (
	ZoneFromProfile = "profile"
	ZoneFromPhone   = "phone"
	ZoneFromDefault = "default"
)

// span is one contact window: minutes after local midnight, from < to <=
// 24h.
type span struct{ from, to int }

// schedule is a purpose's quiet hours, parsed.
type schedule struct {
	days [7][]span // by time.Weekday; empty is closed
	// holidays replaces the day's windows on a holiday when holidayRule.
	holidays    []span
	holidayRule bool
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// defaultHours is 08:00-21:00, the hours most contact rules allow.
var defaultHours = []span{{8 * 60, 21 * 60}}

func compileHours(p *problems, path string, q QuietHours) schedule {
	var s schedule
	every := defaultHours
	if q.Allowed != nil {
		every = parseWindows(p, path+".allowed", q.Allowed)
	}
	for d := range s.days {
		s.days[d] = every
	}
	for _, name := range sortedKeys(q.Weekdays) {
		d, ok := dayNames[strings.ToLower(name)]
		if !ok {
			p.add(path+".weekdays."+name, "not a day of the week (mon ... sun)")
			continue
		}
		s.days[d] = parseWindows(p, path+".weekdays."+name, q.Weekdays[name])
	}
	if q.Holidays != nil {
		s.holidayRule = true
		s.holidays = parseWindows(p, path+".holidays", q.Holidays)
	}
	if !slices.ContainsFunc(s.days[:], func(w []span) bool { return len(w) > 0 }) {
		p.add(path, "every day is closed, so no contact could ever be made")
	}
	return s
}

// parseWindows reads "HH:MM-HH:MM" windows (or "closed") into sorted
// spans, reporting garbled and overlapping ones.
func parseWindows(p *problems, path string, ws Windows) []span {
	if len(ws) == 1 && strings.EqualFold(strings.TrimSpace(ws[0]), "closed") {
		return nil
	}
	var out []span
	for i, w := range ws {
		wpath := fmt.Sprintf("%s[%d]", path, i)
		from, to, ok := strings.Cut(strings.TrimSpace(w), "-")
		f, ferr := parseClock(from)
		t, terr := parseClock(to)
		switch {
		case !ok || ferr != nil || terr != nil:
			p.add(wpath, "%q is not a window written HH:MM-HH:MM (or the one word closed)", w)
			continue
		case f >= t:
			p.add(wpath, "%q ends before it starts (a window may not cross midnight: split it in two)", w)
			continue
		}
		out = append(out, span{f, t})
	}
	slices.SortFunc(out, func(a, b span) int { return cmp.Compare(a.from, b.from) })
	for i := 1; i < len(out); i++ {
		if out[i].from < out[i-1].to {
			p.add(path, "windows %s and %s overlap", out[i-1], out[i])
		}
	}
	return out
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, herr := strconv.Atoi(h)
	mm, merr := strconv.Atoi(m)
	if !ok || herr != nil || merr != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh*60+mm > 24*60 {
		return 0, fmt.Errorf("bad clock time %q", s)
	}
	return hh*60 + mm, nil
}

func (s span) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", s.from/60, s.from%60, s.to/60, s.to%60)
}

// locale is where a customer is, as far as quiet hours and holidays go.
type locale struct {
	// zones are where the customer may be: one, or the several zones
	// their phone number spans (a contact must then be allowed in all).
	zones  []*time.Location
	source string // ZoneFrom*
	// phone is the number the region comes from; region is read from it
	// only when a regional holiday asks (reading it costs 20µs).
	phone         string
	region        string
	regionChecked bool
}

func (l locale) zoneNames() []string {
	names := make([]string, len(l.zones))
	for i, z := range l.zones {
		names[i] = z.String()
	}
	return names
}

// regionOf is the ISO 3166 region of the customer's phone, else the
// config's default region.
func (l *locale) regionOf(def string) string {
	if !l.regionChecked {
		l.regionChecked, l.region = true, def
		if n, err := phonenumbers.Parse(l.phone, "ZZ"); l.phone != "" && err == nil {
			if r := phonenumbers.GetRegionCodeForNumber(n); r != "" && r != "ZZ" && r != "001" {
				l.region = r
			}
		}
	}
	return l.region
}

// locate finds the customer's local time: the profile's zone, else the
// zones of their phone number, else the default zone. The phone is the
// first of their numbers that gives a zone, verified ones first, then the
// longest linked (then by number, so the choice never depends on store
// order). A number that spans several zones (a US area code on a zone
// line) gives them all, and a contact must be allowed in each. The region
// for holidays comes from that number (or the first), else the config's
// default region.
func (c *compiled) locate(cust sessions.Customer, ids []sessions.Identity) *locale {
	l := &locale{}
	phones := slices.DeleteFunc(slices.Clone(ids), func(i sessions.Identity) bool { return i.Kind != sessions.IdentityPhone })
	slices.SortFunc(phones, func(a, b sessions.Identity) int {
		if a.Verified != b.Verified {
			if a.Verified {
				return -1
			}
			return 1
		}
		return cmp.Or(a.LinkedAt.Compare(b.LinkedAt), cmp.Compare(a.Value, b.Value))
	})
	if len(phones) > 0 {
		l.phone = phones[0].Value
	}
	for _, ph := range phones {
		if zones := phoneZones(ph.Value); len(zones) > 0 {
			l.zones, l.source, l.phone = zones, ZoneFromPhone, ph.Value
			break
		}
	}
	if cust.TimeZone != "" {
		// The store checked it on write; a zone this machine's database
		// lacks falls through to the phone or the default.
		if loc, err := loadZone(cust.TimeZone); err == nil {
			l.zones, l.source = []*time.Location{loc}, ZoneFromProfile
		}
	}
	if len(l.zones) == 0 {
		l.zones, l.source = []*time.Location{c.defaultZone}, ZoneFromDefault
	}
	return l
}

// phoneZones returns the zones libphonenumber gives the number (E.164,
// as the store keeps it), sorted by name.
func phoneZones(e164 string) []*time.Location {
	names, err := phonenumbers.GetTimezonesForPrefix(e164)
	if err != nil {
		return nil
	}
	var zones []*time.Location
	for _, name := range names {
		if name == phonenumbers.UNKNOWN_TIMEZONE {
			continue
		}
		if loc, err := loadZone(name); err == nil {
			zones = append(zones, loc)
		}
	}
	return zones
}

// multiZoneHorizon bounds the search for an instant allowed in every zone
// of a number: when none comes within it (a toll-free number "spans" Guam
// to Newfoundland), the zones say nothing useful and the default zone is
// used instead.
const multiZoneHorizon = 8 * 24 * time.Hour

// open returns t when s allows a contact at t in every zone of l, else the
// first instant after t that it does, with why t is closed (ReasonHoliday
// or ReasonQuietHours). ok is false when no such instant comes within a
// year (or, for several zones, within multiZoneHorizon).
func (c *compiled) open(s *schedule, l *locale, t time.Time) (at time.Time, why string, ok bool) {
	at = t
	for {
		moved := false
		for _, loc := range l.zones {
			o, w, ok := c.openIn(s, loc, l, at)
			if !ok {
				return time.Time{}, cmp.Or(why, w), false
			}
			if o.After(at) {
				at, moved, why = o, true, cmp.Or(why, w)
			}
		}
		if !moved {
			return at, why, true
		}
		if at.Sub(t) > multiZoneHorizon {
			return time.Time{}, why, false
		}
	}
}

// openIn is open for one zone. Every instant is built with time.Date in
// loc, never by adding 24h, so a window is at its wall-clock time on the
// days a DST change makes 23 or 25 hours long.
func (c *compiled) openIn(s *schedule, loc *time.Location, l *locale, t time.Time) (time.Time, string, bool) {
	lt := t.In(loc)
	y, m, d := lt.Date()
	why := ReasonQuietHours
	for i := 0; i <= 366; i++ {
		dy, dm, dd := time.Date(y, m, d+i, 12, 0, 0, 0, loc).Date()
		spans, holiday := s.days[time.Date(dy, dm, dd, 12, 0, 0, 0, loc).Weekday()], false
		if s.holidayRule && c.isHoliday(dy, dm, dd, l) {
			spans, holiday = s.holidays, true
		}
		if i == 0 && holiday {
			why = ReasonHoliday
		}
		for _, sp := range spans {
			start := time.Date(dy, dm, dd, 0, sp.from, 0, 0, loc)
			if end := time.Date(dy, dm, dd, 0, sp.to, 0, 0, loc); !t.Before(end) {
				continue
			}
			if !t.Before(start) {
				return t, "", true
			}
			return start, why, true
		}
	}
	return time.Time{}, why, false
}

func (c *compiled) isHoliday(y int, m time.Month, d int, l *locale) bool {
	regions, ok := c.holidays[dateKey(y, m, d)]
	return ok && (regions == nil || slices.Contains(regions, l.regionOf(c.defaultRegion)))
}

func dateKey(y int, m time.Month, d int) int { return y*10000 + int(m)*100 + d }
