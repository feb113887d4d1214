package config_test

import (
	"strings"
	"testing"

	"github.com/omnigate/omnigate/dialer"
	"github.com/omnigate/omnigate/internal/config"
)

const dialerBase = `
auth:
  reps: [{id: alice, token: test-alice-token-0123456789}]
routing:
  reps: [{id: alice, skills: {sales: 3}}]
contact_policy:
  purposes:
    retention: {}
`

func TestDialerSection(t *testing.T) {
	t.Parallel()
	good := dialerBase + `
dialer:
  trunk: sim
  dial_log: data/dials.log
  sim:
    rules:
      - {digits: "01", outcome: answered, ring: 2s, talk: 30s}
      - {digits: "9", outcome: no_answer}
  campaigns:
    - id: winback
      purpose: retention
      caller_id: "+8657112345678"
      skills: {sales: 1}
      audience: {csv: "+8613900000001\n+8613900000009\n"}
`
	c, err := config.Parse([]byte(good), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Dialer.Campaigns) != 1 || c.Dialer.Campaigns[0].ID != "winback" {
		t.Fatalf("campaigns: %+v", c.Dialer.Campaigns)
	}
	rule := c.Dialer.Sim.Rule()
	if got := rule("+8613900000001"); got.Outcome != dialer.OutcomeAnswered || got.Talk.Seconds() != 30 || got.SIPCode != 200 {
		t.Errorf("last digit 1: %+v", got)
	}
	if got := rule("+8613900000005"); got.Outcome != dialer.OutcomeNoAnswer {
		t.Errorf("a digit no rule names: %+v, want no answer", got)
	}
	if (config.Config{}).Dialer.Sim.Rule()("+8613900000004").Outcome != dialer.SimByLastDigit("+8613900000004").Outcome {
		t.Error("no rules is not SimByLastDigit")
	}

	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "dialer: {trunk: sim, trunks: 2}", []string{"trunks"}},
		{"a SIP trunk", "dialer: {trunk: sip}", []string{`dialer.trunk: "sip" is not sim`}},
		{"a short lease", "dialer: {trunk: sim, lease: 500ms}", []string{"dialer.lease: 500ms is under 2s"}},
		{"campaigns without a trunk", "dialer:\n  campaigns: [{id: x}]", []string{"need a trunk"}},
		{"bad rules", "dialer:\n  trunk: sim\n  sim: {rules: [{digits: 1a, outcome: ringing, ring: -1s}]}",
			[]string{`rules[0].digits: "1a"`, `rules[0].outcome: "ringing"`, "may not be negative"}},
		{"bad campaigns", `dialer:
  trunk: sim
  campaigns:
    - id: a
      purpose: sales
      caller_id: "+8657112345678"
      ring_timeout: 10s
      abandon_target: 0.04
      skills: {klingon: 1}
      audience: {csv: "+8613900000001\nnot a number\n+86123\n"}
    - id: a
      purpose: haggling
      caller_id: "+8657112345678"
      reps: [zed]
      audience: {customers: [c1]}`,
			[]string{"dialer.campaigns[0]: ", "ring_timeout 10s", "abandon_target 0.04", `"klingon"`, "csv line 2:", "csv line 3:",
				`dialer.campaigns[1]: campaign id "a" is given twice`, `purpose "haggling"`, `"zed"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(dialerBase+tt.yaml), noEnv)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
