package pacing

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// teach feeds p rounds of 100 finished calls, humanShare of them
// answered by a person (after 6 to 14 s), 15 machines (10 s), 10 busy
// (4 s), the rest unanswered at 25 s; and as many talks (60 to 300 s)
// and wrap-ups (15 s) as people answered. It returns the time after.
func teach(p Pacer, rounds, humans int) time.Time {
	at := t0
	obs := func(k ObservationKind, d time.Duration) {
		at = at.Add(100 * time.Millisecond)
		p.Observe(Observation{Kind: k, At: at, Duration: d})
	}
	for range rounds {
		for i := range humans {
			obs(ObserveAnswered, time.Duration(6000+8000*i/humans)*time.Millisecond)
			obs(ObserveTalk, time.Duration(60+240*i/humans)*time.Second)
			obs(ObserveWrap, 15*time.Second)
		}
		for range 15 {
			obs(ObserveMachine, 10*time.Second)
		}
		for range 10 {
			obs(ObserveUnanswered, 4*time.Second)
		}
		for range 100 - humans - 25 {
			obs(ObserveUnanswered, 25*time.Second)
		}
	}
	return at
}

func taught(humans int) (*Predictive, time.Time) {
	p := NewPredictive(Config{})
	return p, teach(p, 10, humans)
}

func TestPredictiveWarmsUpProgressively(t *testing.T) {
	t.Parallel()
	p := NewPredictive(Config{})
	s := Snapshot{Now: t0, Ready: 5, Ringing: ages(2, time.Second)}
	if got := p.Decide(s); got != 3 {
		t.Fatalf("untaught Decide = %d, want progressive's 3", got)
	}
}

// team is 50 reps: 10 ending wrap-up in 6 s, 40 talking for 30 s.
func team(now time.Time) Snapshot {
	return Snapshot{Now: now, Wrapping: ages(10, 9*time.Second), Talking: ages(40, 30*time.Second)}
}

func TestPredictiveDialsForRepsAboutToFree(t *testing.T) {
	t.Parallel()
	p, now := taught(25)
	got := p.Decide(team(now))
	// Progressive places nothing (no rep ready); ten reps free in 6 s
	// and a quarter of calls reach a person in about 10 s.
	if got < 10 || got > 60 {
		t.Fatalf("Decide = %d, want between 10 and 60 calls for 10 reps freeing", got)
	}
}

func TestPredictiveCountsRingingCallsByAge(t *testing.T) {
	t.Parallel()
	p, now := taught(25)
	young := team(now)
	young.Ringing = ages(200, 2*time.Second)
	if got := p.Decide(young); got != 0 {
		t.Fatalf("with 200 young calls ringing (about 50 answers to come) Decide = %d, want 0", got)
	}
	old := team(now)
	old.Ringing = ages(200, 24*time.Second) // none answers after 14 s
	// They bring no answers (and, censored in the ring table, are
	// evidence that calls go unanswered).
	if got, free := p.Decide(old), p.Decide(team(now)); got < free {
		t.Fatalf("calls ringing past any answer seen count: Decide = %d, want at least %d as with none", got, free)
	}
}

func TestPredictiveLearnsTheAnswerRate(t *testing.T) {
	t.Parallel()
	high, now := taught(25)
	low, _ := taught(10)
	h, l := high.Decide(team(now)), low.Decide(team(now))
	if l <= h {
		t.Fatalf("10%% answering: %d calls; 25%%: %d; want more calls when fewer answer", l, h)
	}
}

func TestPredictiveClosesTheLoop(t *testing.T) {
	t.Parallel()
	p, now := taught(25)
	before := p.Risk()
	p.Observe(Observation{Kind: ObserveAbandoned, At: now})
	if p.Risk() >= before {
		t.Fatalf("risk %v after an abandoned call, was %v", p.Risk(), before)
	}
	// Idle reps (the average starts from the first decision): answers
	// raise the risk again.
	p.Decide(Snapshot{Now: now, Ready: 10, Talking: ages(40, time.Minute)})
	lowered := p.Risk()
	for range 50 {
		p.Observe(Observation{Kind: ObserveAnswered, At: now, Duration: 10 * time.Second})
	}
	if p.Risk() <= lowered {
		t.Fatalf("risk %v after 50 answers, was %v", p.Risk(), lowered)
	}
	// However many are abandoned, the pacer never locks down: the risk
	// stays above zero and an idle team still gets calls.
	for range 1000 {
		p.Observe(Observation{Kind: ObserveAbandoned, At: now})
	}
	if p.Risk() <= 0 {
		t.Fatalf("risk %v", p.Risk())
	}
	if got := p.Decide(Snapshot{Now: now.Add(time.Second), Ready: 10, Talking: ages(40, time.Minute)}); got < 10 {
		t.Fatalf("after 1000 abandoned, 10 ready and nothing ringing: Decide = %d, want at least a call a rep", got)
	}
}

func TestPredictiveIsDeterministic(t *testing.T) {
	t.Parallel()
	a, now := taught(25)
	b, _ := taught(25)
	for i := range 30 {
		s := team(now.Add(time.Duration(i) * time.Second))
		s.Ringing = ages(i, time.Duration(i)*time.Second)
		if x, y := a.Decide(s), b.Decide(s); x != y {
			t.Fatalf("decision %d: %d and %d", i, x, y)
		}
	}
}

// BenchmarkDecide500 is one decision for 500 reps in a busy moment:
// 450 talking, 40 in wrap-up, 10 ready, 180 calls ringing.
func BenchmarkDecide500(b *testing.B) {
	p, now := taught(25)
	s := Snapshot{Ready: 10}
	for i := range 450 {
		s.Talking = append(s.Talking, time.Duration(i)*time.Second)
	}
	for i := range 40 {
		s.Wrapping = append(s.Wrapping, time.Duration(i)*375*time.Millisecond)
	}
	for i := range 180 {
		s.Ringing = append(s.Ringing, time.Duration(i)*130*time.Millisecond)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Now = now.Add(time.Duration(i) * time.Second)
		p.Decide(s)
	}
}
