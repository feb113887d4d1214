package router

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const exampleYAML = `
capacity: 100
costs: {voice: 100, webchat: 25, wechat: 20, sms: 20}
wrap_up: {voice: 30s}
priority:
  vip: 60
  tiers: {A: 40, B: 30}
  aging: 20s
max_candidates: 5
queues:
  - name: voice
    channels: [voice]
    owner: {wait: 20s}
    relaxed: {after: 45s, tier2: true, ignore_levels: true}
    overflow: {after: 3m, action: move, move_to: [wechat, sms], fallback: callback}
  - name: messaging
    channels: [webchat, wechat, sms]
    select: fewest_active
    offer: {accept_timeout: 20s, max_misses: 2}
reps:
  - id: alice
    name: Alice
    skills: {billing: 7, sales: 3}
    languages: [en, zh]
    sip_uri: sip:alice@pbx.example
  - id: bob
    tier: 2
    capacity: 75
    channels: [webchat]
`

func TestConfigYAML(t *testing.T) {
	t.Parallel()
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(exampleYAML))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Queues[0].Relaxed.After != 45*time.Second || cfg.Queues[1].Offer.AcceptTimeout != 20*time.Second ||
		cfg.Reps[0].Skills["billing"] != 7 || cfg.Priority.Priority(true, "") != 60 || cfg.Cost("wechat") != 20 {
		t.Fatalf("%+v", cfg)
	}
	if _, err := New(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	// A typo is an error, not silence.
	dec = yaml.NewDecoder(strings.NewReader("queues: [{name: q, ownr: {wait: 1s}}]"))
	dec.KnownFields(true)
	if err := dec.Decode(&Config{}); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	var c Config
	if c.Cost("voice") != 100 || c.Cost("webchat") != 25 || c.Cost("sms") != 20 || c.Cost("fax") != 25 || c.capacity() != 100 {
		t.Error("costs")
	}
	p := c.Priority
	if p.Priority(true, "D") != 50 || p.Priority(false, "A") != 40 || p.Priority(false, "D") != 10 || p.Priority(false, "") != 0 || p.aging() != 30*time.Second {
		t.Error("priorities")
	}
	if c.maxCandidates() != 10 || (QueueConfig{}).maxMisses() != 3 || (QueueConfig{}).selectPolicy() != SelectLongestIdle {
		t.Error("queue defaults")
	}
}

func TestConfigValidateReportsEverything(t *testing.T) {
	t.Parallel()
	cfg := Config{
		Costs: map[string]int{"voice": 0},
		Queues: []QueueConfig{
			{Name: "q", Select: "random", Relaxed: RelaxedConfig{After: time.Second}},
			{Name: "q", Overflow: OverflowConfig{After: time.Second}},
			{Name: "m", Overflow: OverflowConfig{Action: ActionMove}},
		},
		Reps: []Rep{{ID: "a", Tier: 3}, {ID: "a"}, {}},
	}
	err := cfg.Validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("%v", err)
	}
	for _, want := range []string{"cost of voice", "select \"random\"", "relaxes nothing", "appears twice", "action is not", "needs move_to", "tier 3", "rep \"a\" appears twice", "no id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if _, err := New(cfg, Options{}); !errors.Is(err, ErrConfig) {
		t.Errorf("New: %v", err)
	}
}
