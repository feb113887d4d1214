package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/dialer"
)

// Dialer is the `dialer:` section: outbound calling campaigns (package
// dialer). Its store is <data_dir>/dialer.db on one node and the store's
// Valkey in a cluster, where one node at a time runs each campaign under
// a lease. The zero value is no dialer: the campaign and preview routes
// answer 404 not_found.
type Dialer struct {
	// Trunk places the calls: "sim" is the simulated trunk, which calls
	// nobody and plays each call by the rules under sim (for demos and
	// tests); "sip:<name>" places them through that trunk of the voice
	// section. Empty means no dialer.
	Trunk string `yaml:"trunk"`
	// Sim is the simulated trunk's outcome rules.
	Sim SimTrunk `yaml:"sim"`
	// DialLog, when set, is a file to which the attempt id of every call
	// is appended, and synced, before the trunk is asked to place it: an
	// audit of what was dialed that survives a crash (the crash test
	// reads it to prove no attempt was dialed twice). Relative to the
	// working directory. Empty means none.
	DialLog string `yaml:"dial_log"`
	// Lease is how long a node's hold on a campaign lasts unrenewed (it
	// is renewed every second while the node runs the campaign): in a
	// cluster, how soon another node takes over the campaigns of a node
	// that died. At least 2s; zero means 15s.
	Lease time.Duration `yaml:"lease"`
	// Campaigns are created when the gateway starts, unless a campaign
	// with the id exists (it is kept as it is, whatever the file says
	// now). They are not started: a supervisor starts them. Each is a
	// dialer.Spec, checked like one posted to /v1/campaigns. Empty means
	// none.
	Campaigns []dialer.Spec `yaml:"campaigns"`
}

// TrunkSim names the simulated trunk.
const TrunkSim = "sim"

// SimTrunk says how the simulated trunk plays each call, by the last
// digit of the number dialed.
type SimTrunk struct {
	// Rules are tried in order; the first whose digits hold the number's
	// last digit decides. Empty means dialer.SimByLastDigit: 0-2 a person
	// answers after 5 s and talks 60 s once bridged, 3 a machine, 4 busy,
	// 5 unavailable, 6 failed, 7-9 no answer. A number no rule matches
	// is not answered.
	Rules []SimRule `yaml:"rules"`
}

// SimRule is one outcome rule of the simulated trunk.
type SimRule struct {
	// Digits are the last digits the rule matches ("012"). Required.
	Digits string `yaml:"digits"`
	// Outcome is answered, machine, busy, unavailable, failed, declined
	// or no_answer. Required.
	Outcome dialer.Outcome `yaml:"outcome"`
	// Ring is how long the call rings first; zero means at once. A ring
	// at or beyond the campaign's ring timeout is no_answer.
	Ring time.Duration `yaml:"ring"`
	// Talk is how long an answered call lasts once bridged to a rep;
	// zero means 60s.
	Talk time.Duration `yaml:"talk"`
}

// simCodes are the SIP final responses the simulated trunk reports per
// outcome.
var simCodes = map[dialer.Outcome]int{
	dialer.OutcomeAnswered: 200, dialer.OutcomeMachine: 200, dialer.OutcomeBusy: 486,
	dialer.OutcomeUnavailable: 480, dialer.OutcomeFailed: 503, dialer.OutcomeDeclined: 603, dialer.OutcomeNoAnswer: 487,
}

// Rule is the rules as a dialer.SimTrunk rule; call it on validated
// rules.
func (s SimTrunk) Rule() func(number string) dialer.SimCall {
	if len(s.Rules) == 0 {
		return dialer.SimByLastDigit
	}
	rules := slices.Clone(s.Rules)
	return func(number string) dialer.SimCall {
		last := "#"
		if number != "" {
			last = number[len(number)-1:]
		}
		for _, r := range rules {
			if strings.Contains(r.Digits, last) {
				talk := r.Talk
				if talk == 0 {
					talk = time.Minute
				}
				ring := r.Ring
				if r.Outcome == dialer.OutcomeNoAnswer {
					ring = 24 * time.Hour // rings until the campaign's ring timeout
				}
				return dialer.SimCall{Outcome: r.Outcome, Ring: ring, Talk: talk, SIPCode: simCodes[r.Outcome]}
			}
		}
		return dialer.SimCall{Outcome: dialer.OutcomeNoAnswer, Ring: 24 * time.Hour, SIPCode: 487}
	}
}

// validate checks the section against the purposes, reps and skills the
// rest of the file configures, as the dialer checks a posted campaign.
func (d Dialer) validate(k dialer.Known) []error {
	var errs []error
	switch d.Trunk {
	case "", TrunkSim:
	default:
		if !strings.HasPrefix(d.Trunk, TrunkSIPPrefix) { // checked against voice.trunks by Voice
			errs = append(errs, fmt.Errorf("dialer.trunk: %q is not sim or sip:<trunk> (or empty for no dialer)", d.Trunk))
		}
	}
	if d.Trunk == "" && (len(d.Campaigns) > 0 || d.DialLog != "" || len(d.Sim.Rules) > 0 || d.Lease != 0) {
		errs = append(errs, errors.New("dialer: campaigns, dial_log, lease and sim need a trunk; set dialer.trunk"))
	}
	if d.Lease != 0 && d.Lease < 2*time.Second {
		errs = append(errs, fmt.Errorf("dialer.lease: %v is under 2s (a lease is renewed every second)", d.Lease))
	}
	for i, r := range d.Sim.Rules {
		p := fmt.Sprintf("dialer.sim.rules[%d]", i)
		if r.Digits == "" || strings.Trim(r.Digits, "0123456789") != "" {
			errs = append(errs, fmt.Errorf("%s.digits: %q: want one or more of 0-9", p, r.Digits))
		}
		if _, ok := simCodes[r.Outcome]; !ok {
			errs = append(errs, fmt.Errorf("%s.outcome: %q is not answered, machine, busy, unavailable, failed, declined or no_answer", p, r.Outcome))
		}
		if r.Ring < 0 || r.Talk < 0 {
			errs = append(errs, fmt.Errorf("%s: ring and talk may not be negative", p))
		}
	}
	seen := map[string]bool{}
	for i, s := range d.Campaigns {
		p := fmt.Sprintf("dialer.campaigns[%d]: ", i)
		if seen[s.ID] {
			errs = append(errs, fmt.Errorf("%scampaign id %q is given twice", p, s.ID))
		}
		seen[s.ID] = true
		errs = append(errs, prefixed(p, s.Validate(k))...)
		if strings.TrimSpace(s.Audience.CSV) != "" {
			_, err := dialer.ParseCSV(strings.NewReader(s.Audience.CSV), s.Audience.Region)
			errs = append(errs, prefixed(p, err)...)
		}
	}
	return errs
}

// DialerKnown is what campaigns are checked against: the contact
// policy's purposes (the built-in four and those configured), the reps
// in auth.reps and the skills the routing section gives them.
func (c Config) DialerKnown() dialer.Known {
	purposes := []string{contact.PurposeService, contact.PurposeSales, contact.PurposeCollections, contact.PurposeNotice}
	for p := range c.ContactPolicy.Purposes {
		if !slices.Contains(purposes, p) {
			purposes = append(purposes, p)
		}
	}
	slices.Sort(purposes)
	var k dialer.Known
	k.Purposes = purposes
	skills := map[string]bool{}
	for _, r := range c.Routing.RouterConfig(c.Auth.Reps).Reps {
		k.Reps = append(k.Reps, r.ID)
		for s := range r.Skills {
			skills[s] = true
		}
	}
	k.Skills = slices.Sorted(maps.Keys(skills))
	return k
}
