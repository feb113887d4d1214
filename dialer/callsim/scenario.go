package callsim

import (
	"errors"
	"fmt"
	"time"
)

// Scenario is the campaign and call model.
type Scenario struct {
	// Reps logged in for the whole shift.
	Reps int
	// Shift is the simulated time.
	Shift time.Duration
	// Answer, Machine, Busy and NoAnswer are the chances of a call's
	// outcome: a person answers, an answering machine does (the trunk
	// detects it at the answer; for reps it is unanswered), busy or
	// failed, and no answer until RingTimeout. They sum to 1.
	Answer, Machine, Busy, NoAnswer float64
	// DriftTo, when not negative, is Answer at the end of the shift: the
	// chance moves linearly from Answer to DriftTo, and the other three
	// scale so that they keep their proportions and the sum stays 1.
	DriftTo float64
	// RingTimeout ends an unanswered call.
	RingTimeout time.Duration
	// AnswerMean and AnswerCV: time to answer (person or machine),
	// lognormal. An answer later than RingTimeout is no answer.
	AnswerMean time.Duration
	AnswerCV   float64
	// TalkMean and TalkCV: talk time, lognormal.
	TalkMean time.Duration
	TalkCV   float64
	// Wrap is the rep's after-call work, fixed.
	Wrap time.Duration
	// BusyMin and BusyMax bound a busy or failed call's time to its end
	// (uniform).
	BusyMin, BusyMax time.Duration
	// ConnectLimit is how long an answered customer waits for a rep
	// before the call is abandoned.
	ConnectLimit time.Duration
}

// Issue13 is the scenario of the issue: person 0.25, machine 0.15, busy
// 0.10, no answer 0.50 at 25 s; answer in 10 s (CV 0.5), talk 180 s
// (CV 1.0), wrap-up 15 s, 8 hours, 2 s to connect.
func Issue13(reps int) Scenario {
	return Scenario{
		Reps: reps, Shift: 8 * time.Hour,
		Answer: 0.25, Machine: 0.15, Busy: 0.10, NoAnswer: 0.50, DriftTo: -1,
		RingTimeout: 25 * time.Second,
		AnswerMean:  10 * time.Second, AnswerCV: 0.5,
		TalkMean: 180 * time.Second, TalkCV: 1.0,
		Wrap:    15 * time.Second,
		BusyMin: 2 * time.Second, BusyMax: 6 * time.Second,
		ConnectLimit: 2 * time.Second,
	}
}

// ErrScenario is wrapped by Validate's errors.
var ErrScenario = errors.New("callsim: bad scenario")

// Validate returns every problem at once.
func (s Scenario) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrScenario}, a...)...))
	}
	if s.Reps < 1 {
		bad("reps %d: at least 1", s.Reps)
	}
	if s.Shift <= 0 {
		bad("shift %v: must be positive", s.Shift)
	}
	for _, p := range []float64{s.Answer, s.Machine, s.Busy, s.NoAnswer} {
		if !(p >= 0 && p <= 1) {
			bad("outcome chance %v: must be in [0, 1]", p)
		}
	}
	if sum := s.Answer + s.Machine + s.Busy + s.NoAnswer; sum < 0.999 || sum > 1.001 {
		bad("outcome chances sum to %v, not 1", sum)
	}
	if s.DriftTo > 1 {
		bad("drift-to %v: above 1", s.DriftTo)
	}
	if s.DriftTo >= 0 && s.Answer == 1 {
		bad("drift needs other outcomes to scale (answer is 1)")
	}
	if s.RingTimeout <= 0 || s.AnswerMean <= 0 || s.TalkMean <= 0 || s.Wrap < 0 || s.ConnectLimit < 0 {
		bad("ring timeout, answer mean, talk mean must be positive; wrap and connect limit not negative")
	}
	if s.AnswerCV < 0 || s.TalkCV < 0 {
		bad("coefficients of variation must not be negative")
	}
	if s.BusyMin < 0 || s.BusyMax < s.BusyMin {
		bad("busy time [%v, %v]", s.BusyMin, s.BusyMax)
	}
	return errors.Join(errs...)
}

// Result is one run's measures.
type Result struct {
	Mode string `json:"mode"`
	Reps int    `json:"reps"`
	Seed uint64 `json:"seed"`
	// TalkOccupancy is the reps' talk time in the shift over reps × shift.
	TalkOccupancy float64 `json:"talk_occupancy"`
	// AbandonRate is Abandoned over Answered.
	AbandonRate float64 `json:"abandon_rate"`
	Dialed      int     `json:"dialed"`
	// Answered counts people who answered (abandoned ones included).
	Answered  int `json:"answered"`
	Abandoned int `json:"abandoned"`
	// Machine, Unanswered (busy, failed, no answer) and Ringing (at the
	// end of the shift) complete Dialed.
	Machine    int `json:"machine"`
	Unanswered int `json:"unanswered"`
	Ringing    int `json:"ringing_at_end"`
}
