package sim

import (
	"fmt"
	"time"

	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// ErlangScenario is the textbook single-skill voice queue: Poisson
// arrivals at callsPerHalfHour, exponential handle times of mean handle,
// reps answering one call at a time, patience exponential with mean
// patience (zero: nobody abandons, Erlang C), hours of arrivals after a
// 30-minute warm-up.
func ErlangScenario(reps int, callsPerHalfHour float64, handle, patience time.Duration, hours float64) Scenario {
	s := Scenario{
		Seed:     1,
		Warmup:   30 * time.Minute,
		Duration: 30*time.Minute + time.Duration(hours*float64(time.Hour)),
		Router:   router.Config{MaxCandidates: -1},
		Streams: []Stream{{Channel: sessions.ChannelVoice, Rate: callsPerHalfHour * 2,
			MeanHandle: handle, MeanPatience: patience}},
	}
	for i := range reps {
		s.Reps = append(s.Reps, RepSpec{Rep: router.Rep{ID: fmt.Sprintf("rep%03d", i)}})
	}
	return s
}

// Strategies compared by MixedScenario, in report order.
var Strategies = []string{"longest_idle", "round_robin", "fewest_active", "ring", "ring_no_owner_wait"}

// MixedScenario is a working day of a mixed contact centre, routed by one
// of Strategies: 8 hours of voice, web chat, WeChat and SMS (after a
// 30-minute warm-up), VIP and graded customers, a third of them with a
// dedicated advisor, two skills at levels, two languages, and 64 reps: 28
// on voice, 26 on the digital channels and 10 tier-2 experts on all, 8 of
// the digital reps on a late shift (from 2h to the end).
//
// The flat strategies (longest_idle, round_robin, fewest_active) route to
// every rep with the skills, experts included, with no owner preference:
// the way most tools do. "ring" is Omnigate's: owner first (waiting 20s on
// voice, 60s on digital for a busy owner), then tier-1 reps with the exact
// skills, then after 30s (voice) or 60s (digital) tier-2 experts and any
// skill level, longest idle within each ring. All use the same priorities
// (VIP, tiers, aging). "ring_no_owner_wait" is "ring" giving the owner
// the task only when the owner is free at that moment.
func MixedScenario(strategy string) (Scenario, error) {
	voiceQ := router.QueueConfig{Name: "voice", Channels: []string{sessions.ChannelVoice}}
	digitalQ := router.QueueConfig{Name: "digital", Channels: []string{sessions.ChannelWebchat, sessions.ChannelWeChat, sessions.ChannelSMS}}
	switch strategy {
	case "longest_idle", "round_robin", "fewest_active":
		for _, q := range []*router.QueueConfig{&voiceQ, &digitalQ} {
			q.Select = router.Select(strategy)
			q.AnyTier = true
			q.Owner.Disabled = true
		}
	case "ring", "ring_no_owner_wait":
		if strategy == "ring" {
			voiceQ.Owner.Wait = 20 * time.Second
			digitalQ.Owner.Wait = 60 * time.Second
		}
		voiceQ.Relaxed = router.RelaxedConfig{After: 30 * time.Second, Tier2: true, IgnoreLevels: true}
		digitalQ.Relaxed = router.RelaxedConfig{After: 60 * time.Second, Tier2: true, IgnoreLevels: true}
	default:
		return Scenario{}, fmt.Errorf("sim: unknown strategy %q", strategy)
	}
	s := Scenario{
		Seed:     100,
		Warmup:   30 * time.Minute,
		Duration: 8*time.Hour + 30*time.Minute,
		Router: router.Config{
			MaxCandidates: -1,
			WrapUp:        map[string]time.Duration{sessions.ChannelVoice: 15 * time.Second},
			Queues:        []router.QueueConfig{voiceQ, digitalQ},
		},
		Targets: map[string]time.Duration{
			sessions.ChannelVoice: 20 * time.Second, sessions.ChannelWebchat: 60 * time.Second,
			sessions.ChannelWeChat: 5 * time.Minute, sessions.ChannelSMS: 5 * time.Minute,
		},
	}
	// Skill levels vary from rep to rep in a fixed, seed-free pattern so
	// every strategy sees the same team.
	var voiceReps, digitalReps []string
	add := func(id string, tier int, channels []string, i int, start time.Duration) {
		rep := router.Rep{ID: id, Tier: tier, Channels: channels,
			Skills:    map[string]int{"support": 1 + (i*7)%10, "sales": 1 + (i*3)%10},
			Languages: []string{"en"}}
		if i%4 == 0 || tier == 2 {
			rep.Languages = append(rep.Languages, "zh")
		}
		if tier == 2 {
			rep.Skills = map[string]int{"support": 9, "sales": 8}
		}
		s.Reps = append(s.Reps, RepSpec{Rep: rep, Start: start})
	}
	for i := range 28 {
		id := fmt.Sprintf("voice%02d", i)
		add(id, 1, []string{sessions.ChannelVoice}, i, 0)
		voiceReps = append(voiceReps, id)
	}
	for i := range 26 {
		id := fmt.Sprintf("digital%02d", i)
		start := time.Duration(0)
		if i >= 18 {
			start = 2 * time.Hour
		}
		add(id, 1, []string{sessions.ChannelWebchat, sessions.ChannelWeChat, sessions.ChannelSMS}, i, start)
		digitalReps = append(digitalReps, id)
	}
	for i := range 10 {
		id := fmt.Sprintf("expert%02d", i)
		add(id, 2, nil, i, 0)
	}
	needs := []Need{
		{Weight: 45, Skills: map[string]int{"support": 4}, Language: "en"},
		{Weight: 30, Skills: map[string]int{"sales": 4}, Language: "en"},
		{Weight: 10, Skills: map[string]int{"support": 7}, Language: "en"},
		{Weight: 10, Skills: map[string]int{"support": 3}, Language: "zh"},
		{Weight: 5, Skills: map[string]int{"sales": 3}, Language: "zh"},
	}
	stream := func(ch string, perHour float64, handle, patience time.Duration, owners []string) Stream {
		return Stream{Channel: ch, Rate: perHour, MeanHandle: handle, MeanPatience: patience,
			VIP: 0.05, Tiers: [4]float64{0.15, 0.25, 0.25, 0.15}, Needs: needs, Owned: 0.3, Owners: owners}
	}
	s.Streams = []Stream{
		stream(sessions.ChannelVoice, 300, 5*time.Minute, 2*time.Minute, voiceReps),
		stream(sessions.ChannelWebchat, 380, 10*time.Minute, 5*time.Minute, digitalReps),
		stream(sessions.ChannelWeChat, 180, 15*time.Minute, 30*time.Minute, digitalReps),
		stream(sessions.ChannelSMS, 90, 15*time.Minute, time.Hour, digitalReps),
	}
	return s, nil
}
