package kpi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/kpi"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/router/routing"
	"github.com/omnigate/omnigate/sessions"
)

var quiet = slog.New(slog.DiscardHandler)

// dayRouter is the scripted day's routing: one chat queue, 80% within
// 20s, two reps who each hold four chats.
var dayRouter = router.Config{
	Queues: []router.QueueConfig{{Name: "chat", Channels: []string{"webchat"}, ServiceLevelTarget: 20 * time.Second}},
	Reps:   []router.Rep{{ID: "alice"}, {ID: "bob"}},
}

// rig is a router, a memory store and the engine, on one manual clock.
type rig struct {
	t      *testing.T
	ctx    context.Context
	clock  *router.ManualClock
	store  sessions.Store
	svc    *routing.Service
	engine *kpi.Engine
	convs  map[string]sessions.Conversation
}

func newRig(t *testing.T, at time.Time, counts kpi.Store, cfg kpi.Config) *rig {
	t.Helper()
	r := &rig{t: t, ctx: context.Background(), clock: router.NewManualClock(at), store: sessions.NewMemoryStore(),
		convs: map[string]sessions.Conversation{}}
	t.Cleanup(func() { _ = r.store.Close() })
	svc, err := routing.New(routing.Config{ReassignAfter: time.Hour}, dayRouter,
		routing.Options{Store: r.store, Logger: quiet, Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	r.engine, err = kpi.New(cfg, kpi.Options{Store: counts, Feed: r.store, Router: dayRouter, Now: r.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	svc.OnRepState(r.engine.RepState)
	if err := r.engine.Start(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	t.Cleanup(r.engine.Close)
	return r
}

// at moves the clock to hh:mm:ss of the rig's day.
func (r *rig) at(hms string) {
	r.t.Helper()
	now := r.clock.Now()
	t, err := time.Parse("15:04:05", hms)
	if err != nil {
		r.t.Fatal(err)
	}
	to := time.Date(now.Year(), now.Month(), now.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	if to.Before(now) {
		r.t.Fatalf("the clock cannot go back from %s to %s", now, to)
	}
	r.clock.Advance(to.Sub(now))
}

// state sets a rep's presence (and break reason) now.
func (r *rig) state(rep string, p router.Presence, reason string) {
	r.t.Helper()
	if err := r.svc.SetState(r.ctx, rep, p, reason); err != nil {
		r.t.Fatal(err)
	}
	r.settle()
}

// arrive is customer name's first web chat message, now.
func (r *rig) arrive(name string) {
	r.t.Helper()
	c, _, err := r.store.ResolveCustomer(r.ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "demo", Value: name}, sessions.Customer{})
	if err != nil {
		r.t.Fatal(err)
	}
	cv, _, _, err := r.store.Intake(r.ctx, "", sessions.Event{CustomerID: c.ID, Kind: sessions.KindMessageIn,
		Channel: sessions.ChannelWebchat, Author: "customer", Time: r.clock.Now(), Payload: json.RawMessage(`{"text":"hi"}`)})
	if err != nil {
		r.t.Fatal(err)
	}
	r.convs[name] = cv
	r.settle()
}

// reply is rep's message to name's conversation, now.
func (r *rig) reply(rep, name string) {
	r.t.Helper()
	cv := r.convs[name]
	if _, _, err := r.store.Append(r.ctx, sessions.Event{CustomerID: cv.CustomerID, ConversationID: cv.ID, Kind: sessions.KindMessageOut,
		Channel: sessions.ChannelWebchat, Author: "rep:" + rep, Time: r.clock.Now(), Payload: json.RawMessage(`{"text":"hello"}`)}); err != nil {
		r.t.Fatal(err)
	}
	r.settle()
}

// resolve ends name's conversation, now, by author.
func (r *rig) resolve(author, name string) {
	r.t.Helper()
	st := sessions.StatusResolved
	if _, _, err := r.store.UpdateConversation(r.ctx, r.convs[name].ID, sessions.ConversationUpdate{Status: &st,
		Event: sessions.Event{Author: author, Time: r.clock.Now()}}); err != nil {
		r.t.Fatal(err)
	}
	r.settle()
}

// assignee is who holds name's conversation.
func (r *rig) assignee(name string) string {
	r.t.Helper()
	cv, err := r.store.Conversation(r.ctx, r.convs[name].ID)
	if err != nil {
		r.t.Fatal(err)
	}
	return cv.Assignee
}

// settle waits until routing and the engine have handled every event of
// every customer so far: the watermark proves it, nothing sleeps.
func (r *rig) settle() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	for _, cv := range r.convs {
		seq, err := r.store.LastSeq(ctx, cv.CustomerID)
		if err != nil {
			r.t.Fatal(err)
		}
		if err := r.svc.WaitHandled(ctx, cv.CustomerID, seq); err != nil {
			r.t.Fatal(err)
		}
		// Routing's decisions are appended after it handled the event;
		// read the last seq again for the engine.
		if seq, err = r.store.LastSeq(ctx, cv.CustomerID); err != nil {
			r.t.Fatal(err)
		}
		if err := r.engine.WaitHandled(ctx, cv.CustomerID, seq); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *rig) report(q kpi.Query) []kpi.Row {
	r.t.Helper()
	rows, err := r.engine.Report(r.ctx, q)
	if err != nil {
		r.t.Fatal(err)
	}
	return rows
}

// scriptDay plays the morning the tests check, 09:00 to 09:15.
func scriptDay(r *rig) {
	t := r.t
	r.at("09:00:00")
	r.state("alice", router.PresenceAvailable, "")
	r.arrive("c1") // alice is free: answered at once, waited 0s
	r.at("09:01:00")
	r.state("alice", router.PresenceBreak, "lunch") // keeps c1, takes nothing new
	r.arrive("c2")                                  // nobody available: waits
	r.at("09:01:10")
	r.arrive("c3") // waits
	r.at("09:01:30")
	r.state("bob", router.PresenceAvailable, "") // takes c2 (waited 30s) and c3 (20s)
	if r.assignee("c2") != "bob" || r.assignee("c3") != "bob" {
		t.Fatalf("c2 to %q, c3 to %q; want bob for both (alice is on break)", r.assignee("c2"), r.assignee("c3"))
	}
	r.at("09:02:00")
	r.reply("bob", "c2") // first response to c2: 60s after it came in
	r.arrive("c4")       // bob has room: answered at once
	r.at("09:02:10")
	r.state("bob", router.PresenceAway, "")
	r.at("09:02:30")
	r.arrive("c5") // alice on break, bob away: waits
	r.at("09:03:00")
	r.resolve("system", "c5") // ended before anyone answered: abandoned
	r.state("bob", router.PresenceAvailable, "")
	r.at("09:04:00")
	r.state("alice", router.PresenceAvailable, "")
	if r.assignee("c5") != "" {
		t.Fatalf("abandoned c5 went to %q", r.assignee("c5"))
	}
	r.at("09:05:00")
	r.reply("alice", "c1") // first response to c1: 300s
	r.at("09:10:00")
	r.resolve("rep:alice", "c1") // handled: 600s from assignment, 600s from arrival
	r.at("09:15:00")
}

func f(v float64) *float64 { return &v }

// TestScriptedDay drives the router with known arrivals, answers and
// state changes on a manual clock and checks the report against the
// arithmetic below, done by hand.
//
// Waits (arrival to a rep taking it): c1 0s, c2 30s (09:01:00 to 09:01:30),
// c3 20s (09:01:10 to 09:01:30), c4 0s; c5 waited and was ended: abandoned.
//
//	offered 5, answered 4, abandoned 1
//	answered within the 20s target: c1, c3 (20s is within), c4 = 3
//	service level = 3 / (4 answered + 1 abandoned) = 0.6
//	ASA = (0 + 30 + 20 + 0) / 4 = 12.5s
//	p90: the ceil(0.9 × 4) = 4th smallest wait, 30s, in the ≤30s bucket = 30
//	abandon rate = 1 / 5 = 0.2
//	first response: c2 60s, c1 300s: average 180s
//	handle (c1): 09:00:00 to 09:10:00 = 600s; resolution the same
//
// Occupancy = handling / (logged in - break); utilisation = handling /
// logged in. alice: handling 09:00-09:01 (60s) and 09:04-09:10 (360s)
// = 420s, break 09:01-09:04 = 180s, idle 09:10-09:15 = 300s; logged in
// 900s: occupancy 420/720 = 0.5833, utilisation 420/900 = 0.4667.
// bob: handling 09:01:30-09:02:10 (40s) and 09:03-09:15 (720s) = 760s,
// away 09:02:10-09:03 = 50s, logged in 810s: occupancy = utilisation =
// 760/810 = 0.9383. Team: 1180 / (1710 - 180) = 0.7712, 1180/1710 = 0.6901.
func TestScriptedDay(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	r := newRig(t, day.Add(8*time.Hour), kpi.NewMemoryStore(), kpi.Config{})
	scriptDay(r)
	checkDay(t, r.report, day)
}

// checkDay checks the scripted day's report (see TestScriptedDay).
func checkDay(t *testing.T, report func(kpi.Query) []kpi.Row, day time.Time) {
	t.Helper()
	from, to := day.Add(9*time.Hour), day.Add(9*time.Hour+15*time.Minute)
	for _, interval := range []time.Duration{kpi.Slot, time.Hour, 24 * time.Hour} {
		rows := report(kpi.Query{Interval: interval, From: from, To: to, By: "all"})
		if len(rows) != 1 {
			t.Fatalf("interval %v: %d rows, want 1: %+v", interval, len(rows), rows)
		}
		got := rows[0]
		want := kpi.Row{Start: from.Truncate(interval), End: from.Truncate(interval).Add(interval),
			Offered: 5, Answered: 4, AnsweredInSL: 3, Abandoned: 1,
			ServiceLevel: f(0.6), ASA: f(12.5), ASAP90: f(30), AbandonRate: f(0.2),
			FirstResponses: 2, FRT: f(180), Handled: 1, AHT: f(600), Resolution: f(600),
			Contacts: 5, LoggedInS: 1710, HandlingS: 1180, IdleS: 300, BreakS: 180, AwayS: 50,
			Occupancy: f(0.7712), Utilisation: f(0.6901)}
		if d := diff(got, want); d != "" {
			t.Errorf("interval %v, the team:\n%s", interval, d)
		}
	}
	reps := report(kpi.Query{Interval: kpi.Slot, From: from, To: to, By: "rep"})
	if len(reps) != 2 || reps[0].Key != "alice" || reps[1].Key != "bob" {
		t.Fatalf("by rep: %+v", reps)
	}
	for _, c := range []struct {
		got                  kpi.Row
		logged, handling     float64
		occupancy, utilising float64
	}{{reps[0], 900, 420, 0.5833, 0.4667}, {reps[1], 810, 760, 0.9383, 0.9383}} {
		if c.got.LoggedInS != c.logged || c.got.HandlingS != c.handling || *c.got.Occupancy != c.occupancy || *c.got.Utilisation != c.utilising {
			t.Errorf("%s: logged in %vs handling %vs occupancy %v utilisation %v; want %v %v %v %v", c.got.Key,
				c.got.LoggedInS, c.got.HandlingS, *c.got.Occupancy, *c.got.Utilisation, c.logged, c.handling, c.occupancy, c.utilising)
		}
	}
	// bob answered c2 (30s), c3 (20s), c4 (0s): 2 of 3 within target.
	if b := reps[1]; b.Answered != 3 || b.AnsweredInSL != 2 || *b.ASA != 16.6667 {
		t.Errorf("bob answered %d, %d in target, ASA %v; want 3, 2, 16.6667", b.Answered, b.AnsweredInSL, *b.ASA)
	}
	queues := report(kpi.Query{Interval: time.Hour, From: from, To: to, By: "queue"})
	if len(queues) != 1 || queues[0].Key != "chat" || *queues[0].ServiceLevel != 0.6 || *queues[0].TargetS != 20 || *queues[0].Goal != 0.8 {
		t.Errorf("by queue: %+v", queues)
	}
}
