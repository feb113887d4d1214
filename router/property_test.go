package router

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// TestRandomOperations drives the router with random operations and checks
// after each one that capacity per rep is never exceeded (nor out of step
// with the State), no conversation is held twice, no offline or away rep is
// given work, and no waiting task could have been taken by a rep with room.
func TestRandomOperations(t *testing.T) {
	t.Parallel()
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			runRandom(t, seed, 400)
		})
	}
}

func runRandom(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 42))
	channels := []string{sessions.ChannelVoice, sessions.ChannelWebchat, sessions.ChannelWeChat, sessions.ChannelSMS}
	skills := []string{"sales", "billing", "tech"}
	langs := []string{"en", "zh"}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	var queues []QueueConfig
	for i := range 3 {
		q := QueueConfig{Name: fmt.Sprint("q", i), Select: []Select{SelectLongestIdle, SelectRoundRobin, SelectFewestActive}[i]}
		if rng.IntN(2) == 0 {
			q.Owner.Wait = time.Duration(rng.IntN(60)) * time.Second
		}
		if rng.IntN(2) == 0 {
			q.Relaxed = RelaxedConfig{After: time.Duration(1+rng.IntN(90)) * time.Second, Tier2: true, IgnoreLevels: rng.IntN(2) == 0, AnyLanguage: rng.IntN(2) == 0}
		}
		if rng.IntN(2) == 0 {
			q.Offer = OfferConfig{AcceptTimeout: time.Duration(5+rng.IntN(20)) * time.Second, MaxMisses: 1 + rng.IntN(3)}
		}
		switch rng.IntN(4) {
		case 0:
			q.Overflow = OverflowConfig{After: time.Duration(60+rng.IntN(240)) * time.Second, Action: ActionMove, MoveTo: []string{pick(channels), pick(channels)}, Fallback: ActionCallback}
		case 1:
			q.Overflow = OverflowConfig{After: time.Duration(60+rng.IntN(240)) * time.Second, Action: ActionCallback}
		}
		if i > 0 {
			q.Channels = []string{channels[i], channels[i+1]}
		}
		queues = append(queues, q)
	}
	var reps []Rep
	for i := range 8 {
		rep := Rep{ID: fmt.Sprintf("r%d", i), Tier: 1 + rng.IntN(2), Skills: map[string]int{}, Languages: []string{pick(langs)}}
		for _, s := range skills {
			if rng.IntN(2) == 0 {
				rep.Skills[s] = 1 + rng.IntN(10)
			}
		}
		if rng.IntN(3) == 0 {
			rep.Capacity = []int{40, 60, 100, 150}[rng.IntN(4)]
		}
		if rng.IntN(3) == 0 {
			rep.Channels = []string{pick(channels), pick(channels)}
		}
		reps = append(reps, rep)
	}
	cfg := Config{Queues: queues, WrapUp: map[string]time.Duration{sessions.ChannelVoice: 10 * time.Second, sessions.ChannelWebchat: 2 * time.Second}}
	f := newFixture(t, cfg, reps...)
	ctx := context.Background()
	var convs []string
	n := 0
	presences := []Presence{PresenceAvailable, PresenceAvailable, PresenceAvailable, PresenceAway, PresenceOffline, PresenceOnCall}
	for step := range steps {
		// blocked: reps that are away or offline before the operation; no
		// decision of the operation may give them work.
		blocked := map[string]bool{}
		for _, st := range f.r.Reps() {
			blocked[st.ID] = st.Presence == PresenceAway || st.Presence == PresenceOffline
		}
		var ds []Decision
		var err error
		switch op := rng.IntN(10); {
		case op < 4:
			n++
			task := Task{ConversationID: fmt.Sprint("c", n), Channel: pick(channels), VIP: rng.IntN(10) == 0,
				Tier: []sessions.Tier{"", "A", "B", "C", "D"}[rng.IntN(5)], Language: pick(langs)}
			if rng.IntN(2) == 0 {
				task.Skills = map[string]int{pick(skills): 1 + rng.IntN(8)}
			}
			if rng.IntN(3) == 0 {
				task.Owner = pick([]string{"r0", "r1", "r2", "ghost"})
			}
			if rng.IntN(8) == 0 {
				task.Queue = pick([]string{"q0", "q1", "q2"})
			}
			var d Decision
			d, err = f.r.Enqueue(ctx, task)
			ds = []Decision{d}
			convs = append(convs, task.ConversationID)
		case op < 6 && len(convs) > 0:
			i := rng.IntN(len(convs))
			ds, err = f.r.Release(ctx, convs[i])
			if err == nil || rng.IntN(2) == 0 {
				convs = append(convs[:i], convs[i+1:]...)
			}
			err = nil // released already by an overflow: fine
		case op < 7:
			rep, p := pick([]string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"}), presences[rng.IntN(len(presences))]
			blocked[rep] = p != PresenceAvailable
			ds, err = f.r.SetPresence(ctx, rep, p)
		case op < 8 && len(convs) > 0:
			conv := convs[rng.IntN(len(convs))]
			if st, e := f.r.Task(conv); e == nil && st.Status == "offered" {
				if rng.IntN(3) == 0 {
					ds, err = f.r.Decline(ctx, conv, st.RepID)
				} else {
					var d Decision
					d, err = f.r.Accept(ctx, conv, st.RepID)
					ds = []Decision{d}
				}
			}
		default:
			now := f.clk.Advance(time.Duration(rng.IntN(40)) * time.Second)
			ds, err = f.r.Tick(ctx, now)
		}
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		for _, d := range ds {
			if d.RepAway {
				blocked[d.RepID] = true
			}
			if (d.Kind == KindAssign || d.Kind == KindOffer) && blocked[d.RepID] && d.Why != "conversation already assigned to this rep" {
				for _, d := range ds {
					t.Logf("%s %s %s %s %s", d.Kind, d.ConversationID, d.RepID, d.Ring, d.Why)
				}
				t.Fatalf("step %d: %s given to %s who is away or offline", step, d.ConversationID, d.RepID)
			}
		}
		if err := f.r.checkInvariants(ctx); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
	}
}
