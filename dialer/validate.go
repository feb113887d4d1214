package dialer

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/sessions"
)

// Limits of a Spec.
const (
	MinRingTimeout       = 15 * time.Second
	DefaultRingTimeout   = 25 * time.Second
	DefaultAttempts      = 3
	MaxAttempts          = 10
	DefaultAbandonTarget = 0.03
	MinTrialSample       = 0.03
	MaxTrialSample       = 0.05
)

// Mode names. ratio:X is written with its number.
const (
	ModePreview     = "preview"
	ModeProgressive = "progressive"
	ModePredictive  = "predictive"
	ModeVici        = "vici"
	modeRatio       = "ratio:"
)

// Known is what a Spec is checked against: the deployment's contact
// policy purposes, skills and reps.
type Known struct {
	Purposes []string
	Skills   []string
	Reps     []string
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// Validate returns every problem of s (joined, each wrapping ErrInvalid),
// or nil. The CSV's lines are checked where they are read (ParseCSV).
func (s Spec) Validate(k Known) error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if !idPattern.MatchString(s.ID) {
		add("id %q: want 1-64 of a-z, 0-9, - and _, starting with a letter or digit", s.ID)
	}
	a := s.Audience
	if len(a.Customers) == 0 && a.Segment == nil && strings.TrimSpace(a.CSV) == "" {
		add("audience: give customers, a segment or a csv")
	}
	if slices.Contains(a.Customers, "") {
		add("audience.customers: an empty customer id")
	}
	if a.Region != "" && !sessions.ValidPhoneRegion(a.Region) {
		add("audience.region %q is not a phone region (ISO 3166, e.g. CN)", a.Region)
	}
	if seg := a.Segment; seg != nil {
		if len(seg.Tiers) == 0 && len(seg.Tags) == 0 && seg.VIP == nil && seg.Owner == "" {
			add("audience.segment: set tiers, tags, vip or owner")
		}
		for _, t := range seg.Tiers {
			if t == "" || !t.Valid() {
				add("audience.segment.tiers: %q is not a tier (A, B, C, D)", t)
			}
		}
	}
	if _, err := parseMode(s.Mode); err != nil {
		add("mode: %v", err)
	}
	switch {
	case s.Purpose == "":
		add("purpose is required (one of %s)", strings.Join(k.Purposes, ", "))
	case !slices.Contains(k.Purposes, s.Purpose):
		add("purpose %q is not a configured contact purpose (one of %s)", s.Purpose, strings.Join(k.Purposes, ", "))
	}
	for i, w := range s.Schedule {
		if _, err := w.compile(); err != nil {
			add("schedule[%d]: %v", i, err)
		}
	}
	if rt := time.Duration(s.RingTimeout); rt != 0 && rt < MinRingTimeout {
		add("ring_timeout %v is under %v: phones need time to ring", rt, MinRingTimeout)
	} else if rt > 2*time.Minute {
		add("ring_timeout %v is over 2m", rt)
	}
	if s.Attempts < 0 || s.Attempts > MaxAttempts {
		add("attempts %d: want 1-%d (0 means %d)", s.Attempts, MaxAttempts, DefaultAttempts)
	}
	for _, f := range s.Retry.fields() {
		if _, err := parseRetry(f.value); f.value != "" && err != nil {
			add("retry.%s: %v", f.outcome, err)
		}
	}
	if s.AbandonTarget < 0 || s.AbandonTarget > DefaultAbandonTarget {
		add("abandon_target %g: want at most %g of answered calls", s.AbandonTarget, DefaultAbandonTarget)
	}
	if len(s.Reps) == 0 && len(s.Skills) == 0 {
		add("give reps or skills: who takes the calls")
	}
	for _, r := range s.Reps {
		if !slices.Contains(k.Reps, r) {
			add("reps: %q is not a configured rep", r)
		}
	}
	for _, sk := range sortedKeys(s.Skills) {
		if !slices.Contains(k.Skills, sk) {
			add("skills: %q is not a skill any rep has (known: %s)", sk, strings.Join(k.Skills, ", "))
		} else if s.Skills[sk] < 0 {
			add("skills.%s: level %d is negative", sk, s.Skills[sk])
		}
	}
	if err := sessions.CheckPhone(s.CallerID); err != nil {
		add("caller_id: %v", err)
	}
	if t := s.Trial; t != nil && (t.Sample < MinTrialSample || t.Sample > MaxTrialSample) {
		add("trial.sample %g: want %g to %g", t.Sample, MinTrialSample, MaxTrialSample)
	}
	return errors.Join(errs...)
}

// withDefaults fills what zero means.
func (s Spec) withDefaults() Spec {
	if s.Mode == "" {
		s.Mode = ModeProgressive
	}
	if s.RingTimeout == 0 {
		s.RingTimeout = contact.Duration(DefaultRingTimeout)
	}
	if s.Attempts == 0 {
		s.Attempts = DefaultAttempts
	}
	if s.AbandonTarget == 0 {
		s.AbandonTarget = DefaultAbandonTarget
	}
	d := DefaultRetry
	r := &s.Retry
	for _, p := range []struct {
		v   *string
		def string
	}{{&r.Busy, d.Busy}, {&r.NoAnswer, d.NoAnswer},
		{&r.Failed, d.Failed}, {&r.Machine, d.Machine}, {&r.Unavailable, d.Unavailable}} {
		if *p.v == "" {
			*p.v = p.def
		}
	}
	return s
}

type retryField struct {
	outcome Outcome
	value   string
}

func (r Retry) fields() []retryField {
	return []retryField{{OutcomeBusy, r.Busy}, {OutcomeNoAnswer, r.NoAnswer}, {OutcomeFailed, r.Failed},
		{OutcomeMachine, r.Machine}, {OutcomeUnavailable, r.Unavailable}}
}

// after returns how long until an attempt ending in o is retried, ok
// false for never. r has its defaults filled.
func (r Retry) after(o Outcome) (time.Duration, bool) {
	if o == OutcomeInterrupted {
		o = OutcomeNoAnswer
	}
	for _, f := range r.fields() {
		if f.outcome == o {
			d, err := parseRetry(f.value)
			return d, err == nil && d >= 0
		}
	}
	return 0, false
}

// parseRetry reads a retry rule: -1 for never.
func parseRetry(v string) (time.Duration, error) {
	if v == "never" {
		return -1, nil
	}
	d, err := contact.ParseDuration(v)
	if err != nil || d < contact.Duration(time.Minute) {
		return 0, fmt.Errorf("%q: want a duration of a minute or more (30m, 2h, 1d) or never", v)
	}
	return time.Duration(d), nil
}

// parseMode checks a mode and returns its name without a ratio's number.
func parseMode(m string) (string, error) {
	switch m {
	case "", ModeProgressive:
		return ModeProgressive, nil
	case ModePreview, ModePredictive, ModeVici:
		return m, nil
	}
	if x, ok := strings.CutPrefix(m, modeRatio); ok {
		if f, err := strconv.ParseFloat(x, 64); err == nil && f >= 1 && f <= 10 {
			return "ratio", nil
		}
		return "", fmt.Errorf("%q: a ratio is ratio:X with X from 1 to 10", m)
	}
	return "", fmt.Errorf("%q is not preview, progressive, predictive, ratio:X or vici", m)
}

// schedule is a compiled Window.
type schedule struct {
	days     [7]bool
	from, to int // minutes after midnight
	loc      *time.Location
}

func (w Window) compile() (schedule, error) {
	var s schedule
	if len(w.Days) == 0 {
		s.days = [7]bool{true, true, true, true, true, true, true}
	}
	var errs []error
	for _, d := range w.Days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			errs = append(errs, fmt.Errorf("day %q is not mon..sun", d))
		}
		s.days[wd] = ok
	}
	from, err1 := clockMinutes(w.From)
	to, err2 := clockMinutes(w.To)
	errs = append(errs, err1, err2)
	if err1 == nil && err2 == nil && from >= to {
		errs = append(errs, fmt.Errorf("from %s is not before to %s", w.From, w.To))
	}
	s.from, s.to = from, to
	loc, err := time.LoadLocation(w.Zone)
	if err != nil {
		errs = append(errs, fmt.Errorf("zone %q is not an IANA time zone", w.Zone))
	}
	s.loc = loc
	return s, errors.Join(errs...)
}

func clockMinutes(hm string) (int, error) {
	t, err := time.Parse("15:04", hm)
	if err != nil {
		if hm == "24:00" {
			return 24 * 60, nil
		}
		return 0, fmt.Errorf("time %q: want HH:MM", hm)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// inSchedule reports whether t falls in one of the windows (none means
// always). Windows were validated at Create.
func inSchedule(ws []Window, t time.Time) bool {
	if len(ws) == 0 {
		return true
	}
	for _, w := range ws {
		s, err := w.compile()
		if err != nil {
			continue
		}
		lt := t.In(s.loc)
		m := lt.Hour()*60 + lt.Minute()
		if s.days[lt.Weekday()] && m >= s.from && m < s.to {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
