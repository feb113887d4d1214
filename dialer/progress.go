package dialer

import (
	"context"
	"time"
)

// CampaignProgress is a campaign's live numbers for supervisors.
type CampaignProgress struct {
	Campaign string `json:"campaign"`
	State    State  `json:"state"`
	Mode     string `json:"mode"`
	// Customers is the audience; Remaining those whose calls are not
	// concluded (due, held for approval, in a call, or tried again later).
	Customers int `json:"customers"`
	Remaining int `json:"remaining"`
	Dialed    int `json:"dialed"`
	// Answered counts calls a person answered (abandoned ones included);
	// Machine those a machine did.
	Answered  int `json:"answered"`
	Machine   int `json:"machine"`
	Abandoned int `json:"abandoned"`
	Skipped   int `json:"skipped"` // denied by the policy or skipped by a rep
	// Lines are calls in progress; Ready the campaign's free reps at the
	// last decision; DialLevel lines per ready rep. Known on the node
	// running the campaign (Running); zero elsewhere.
	Running   bool    `json:"running"`
	Lines     int     `json:"lines"`
	Ready     int     `json:"ready"`
	DialLevel float64 `json:"dial_level"`
	// AbandonRate is abandoned per answered over the campaign,
	// AbandonRate30d over the last 30 days, against AbandonTarget.
	AbandonRate    float64 `json:"abandon_rate"`
	AbandonRate30d float64 `json:"abandon_rate_30d"`
	AbandonTarget  float64 `json:"abandon_target"`
	// Guarded: abandonment reached the target, so the campaign dials
	// progressively (a rep held for every call) until it is back under.
	Guarded bool `json:"guarded"`
}

// Progress returns the campaign's live numbers, from the store's Counts
// (no scan of the attempts) and, on the node running the campaign, the
// runner's.
func (s *Service) Progress(ctx context.Context, id string) (CampaignProgress, error) {
	c, err := s.o.Store.Campaign(ctx, id)
	if err != nil {
		return CampaignProgress{}, err
	}
	n, err := s.o.Store.Counts(ctx, id)
	if err != nil {
		return CampaignProgress{}, err
	}
	p := CampaignProgress{Campaign: id, State: c.State, Mode: c.Spec.Mode, Customers: c.Audience,
		AbandonTarget: c.Spec.AbandonTarget,
		Remaining:     n.sum("state:", "") - n["state:"+string(AttemptDone)],
		Dialed:        n["dialed"],
		Answered:      n.sum("answered:", ""),
		Abandoned:     n.sum("abandoned:", ""),
		Machine:       n["outcome:"+string(OutcomeMachine)],
		Skipped:       n["outcome:"+string(OutcomeDenied)] + n["outcome:"+string(OutcomeSkipped)],
	}
	// The 30 days by whole UTC days; the runner's guard counts to the
	// second.
	from := s.o.Clock.Now().Add(-abandonWindow).UTC().Format(time.DateOnly)
	p.AbandonRate = rate(p.Abandoned, p.Answered)
	p.AbandonRate30d = rate(n.sum("abandoned:", from), n.sum("answered:", from))
	if r := s.runner(id); r != nil {
		r.mu.Lock()
		p.Running, p.Ready, p.Guarded = true, r.ready, r.guarded
		r.mu.Unlock()
		p.Lines = len(s.liveCalls(id))
		if p.Ready > 0 {
			p.DialLevel = float64(p.Lines) / float64(p.Ready)
		}
	}
	return p, nil
}

// TrialResult is what a trial sample's calls came to: the numbers a
// supervisor approves or rejects the campaign on.
type TrialResult struct {
	Campaign string `json:"campaign"`
	State    State  `json:"state"`
	Sample   int    `json:"sample"`
	// Strata counts the sample's customers per stratum (tier|region|
	// history).
	Strata    map[string]int `json:"strata"`
	Concluded int            `json:"concluded"`
	Dialed    int            `json:"dialed"`
	Answered  int            `json:"answered"`
	Abandoned int            `json:"abandoned"`
	// ConnectRate is answered per dialed; AbandonRate abandoned per
	// answered.
	ConnectRate float64       `json:"connect_rate"`
	AbandonRate float64       `json:"abandon_rate"`
	AverageTalk time.Duration `json:"average_talk_ns"`
	// RepOutcomes counts what reps marked.
	RepOutcomes map[string]int `json:"rep_outcomes"`
}

// TrialReport sums up the trial sample's calls (every try).
func (s *Service) TrialReport(ctx context.Context, id string) (TrialResult, error) {
	c, err := s.o.Store.Campaign(ctx, id)
	if err != nil {
		return TrialResult{}, err
	}
	as, err := s.o.Store.Attempts(ctx, id)
	if err != nil {
		return TrialResult{}, err
	}
	t := TrialResult{Campaign: id, State: c.State, Sample: c.TrialSize, Strata: map[string]int{}, RepOutcomes: map[string]int{}}
	var talk time.Duration
	for _, a := range as {
		if !a.Trial {
			continue
		}
		if a.Try == 1 {
			t.Strata[a.Stratum]++
		}
		if a.State == AttemptDone {
			t.Concluded++
		}
		if !a.DialedAt.IsZero() {
			t.Dialed++
		}
		switch a.Outcome {
		case OutcomeAnswered:
			t.Answered++
			talk += a.Talk
		case OutcomeAbandoned:
			t.Answered++
			t.Abandoned++
		}
		if a.RepOutcome != "" {
			t.RepOutcomes[a.RepOutcome]++
		}
	}
	t.ConnectRate = rate(t.Answered, t.Dialed)
	t.AbandonRate = rate(t.Abandoned, t.Answered)
	if n := t.Answered - t.Abandoned; n > 0 {
		t.AverageTalk = talk / time.Duration(n)
	}
	return t, nil
}

func rate(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}
