package dialer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/dialer/pacing"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/router/routing"
	"github.com/omnigate/omnigate/sessions"
	"github.com/prometheus/client_golang/prometheus"
)

// The real services satisfy the dialer's interfaces.
var (
	_ Reps     = (*routing.Service)(nil)
	_ Policy   = (*contact.Policy)(nil)
	_ Ledger   = contact.Ledger(nil)
	_ Sessions = sessions.Store(nil)
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// fakeReps is the routing service as the dialer sees it: reps that are
// available or not, a reservation filling one until released.
type fakeReps struct {
	mu     sync.Mutex
	status map[string]router.RepStatus
	held   map[string]string // reservation id → rep
	// reserved counts Reserve calls that held a rep.
	reserved int
}

func newFakeReps(ids ...string) *fakeReps {
	f := &fakeReps{status: map[string]router.RepStatus{}, held: map[string]string{}}
	for _, id := range ids {
		f.status[id] = router.RepStatus{Rep: router.Rep{ID: id, Capacity: 100}, Presence: router.PresenceAvailable}
	}
	return f
}

func (f *fakeReps) Reserve(_ context.Context, rv routing.Reservation) (router.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.status[rv.Rep]
	if !ok || st.Presence != router.PresenceAvailable || st.Used > 0 {
		return router.Decision{}, fmt.Errorf("%w: %s", router.ErrNoRep, rv.Rep)
	}
	if _, dup := f.held[rv.ID]; dup {
		return router.Decision{}, fmt.Errorf("reservation %s twice", rv.ID)
	}
	st.Used, st.Presence = 100, router.PresenceOnCall
	f.status[rv.Rep] = st
	f.held[rv.ID] = rv.Rep
	f.reserved++
	return router.Decision{RepID: rv.Rep}, nil
}

func (f *fakeReps) Release(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	rep, ok := f.held[id]
	if !ok {
		return nil
	}
	delete(f.held, id)
	st := f.status[rep]
	st.Used, st.Presence = 0, router.PresenceAvailable
	f.status[rep] = st
	return nil
}

func (f *fakeReps) Rep(id string) (router.RepStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.status[id]
	if !ok {
		return st, router.ErrUnknownRep
	}
	return st, nil
}

func (f *fakeReps) setPresence(id string, p router.Presence) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status[id]
	st.Presence = p
	f.status[id] = st
}

func (f *fakeReps) holding() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.held)
}

// fakePolicy allows everyone except the customers it was told about.
type fakePolicy struct {
	mu       sync.Mutex
	decide   map[string]contact.Decision // by customer id
	requests []contact.Request
}

func (p *fakePolicy) Evaluate(_ context.Context, r contact.Request) (contact.Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, r)
	if d, ok := p.decide[r.CustomerID]; ok {
		return d, nil
	}
	return contact.Decision{Decision: channels.Allow, Recorded: true}, nil
}

func (p *fakePolicy) set(customer string, d contact.Decision) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.decide[customer] = d
}

type harness struct {
	t      *testing.T
	ctx    context.Context
	clock  *ManualClock
	store  Store
	sess   *sessions.MemoryStore
	ledger *contact.MemoryLedger
	reps   *fakeReps
	policy *fakePolicy
	trunk  *SimTrunk
	roster []router.Rep
	pacer  func(PacerConfig) (pacing.Pacer, error)
	// leaseTTL is the services' lease; on a ManualClock any is renewed
	// every tick.
	leaseTTL time.Duration
	metrics  *prometheus.Registry // the first service's
	s        *Service
}

func newHarness(t *testing.T, store Store, reps int) *harness {
	t.Helper()
	clock := NewManualClock(t0)
	if store == nil {
		store = NewMemoryStore(clock)
	}
	h := &harness{t: t, ctx: context.Background(), clock: clock, store: store, sess: sessions.NewMemoryStore(),
		ledger: contact.NewMemoryLedger(contact.LedgerOptions{}), policy: &fakePolicy{decide: map[string]contact.Decision{}},
		trunk: NewSimTrunk(clock)}
	var ids []string
	for i := range reps {
		id := fmt.Sprintf("rep%d", i+1)
		ids = append(ids, id)
		h.roster = append(h.roster, router.Rep{ID: id, Skills: map[string]int{"sales": 2}, SIPURI: "sip:" + id + "@pbx.test"})
	}
	h.reps = newFakeReps(ids...)
	h.metrics = prometheus.NewRegistry()
	h.s = h.service("node-a")
	return h
}

func (h *harness) service(node string) *Service {
	h.t.Helper()
	return h.serviceWith(node, h.store, h.reps, h.trunk)
}

func (h *harness) serviceWith(node string, store Store, reps Reps, trunk Trunk) *Service {
	h.t.Helper()
	var reg prometheus.Registerer
	if h.s == nil {
		reg = h.metrics
	}
	s, err := New(Options{Store: store, Sessions: h.sess, Policy: h.policy, Ledger: h.ledger, Reps: reps,
		Roster: func() []router.Rep { return h.roster }, Trunk: trunk, Clock: h.clock, Node: node,
		Pacer: h.pacer, LeaseTTL: h.leaseTTL, Metrics: reg})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// customers creates n customers with phone numbers ending in the given
// last digits, round robin (SimByLastDigit: 0-2 answer), tiers A-D
// round robin.
func (h *harness) customers(n int, digits string) []string {
	return h.customersTiered(n, digits, "ABCD")
}

func (h *harness) customersTiered(n int, digits, tiers string) []string {
	h.t.Helper()
	var ids []string
	for i := range n {
		phone := fmt.Sprintf("+861380000%03d%c", i, digits[i%len(digits)])
		c, _, err := h.sess.ResolveCustomer(h.ctx, sessions.Identity{Kind: sessions.IdentityPhone, Value: phone, Verified: true},
			sessions.Customer{Name: fmt.Sprintf("Customer %d", i), Tier: sessions.Tier(tiers[i%len(tiers) : i%len(tiers)+1])})
		if err != nil {
			h.t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	return ids
}

func (h *harness) spec(id string, customers []string) Spec {
	return Spec{ID: id, Name: "Spring sale", Audience: Audience{Customers: customers}, Purpose: "sales",
		Skills: map[string]int{"sales": 1}, CallerID: "+861062345678"}
}

// runUntil steps the service and the clock a second at a time until
// cond holds (a watermark), failing after limit seconds of the clock.
func (h *harness) runUntil(s *Service, limit time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for end := h.clock.Now().Add(limit); h.clock.Now().Before(end); {
		s.Tick(h.ctx)
		h.settle(s)
		if cond() {
			return
		}
		h.clock.Advance(time.Second)
		if time.Now().After(deadline) {
			break
		}
	}
	cs, _ := h.store.Campaigns(h.ctx)
	for _, c := range cs {
		p, _ := s.Progress(h.ctx, c.ID())
		h.t.Logf("%+v", p)
	}
	h.clock.mu.Lock()
	for _, w := range h.clock.waiters {
		h.t.Logf("waiter at %v (now %v)", w.at, h.clock.now)
	}
	h.clock.mu.Unlock()
	h.t.Logf("dials %d, settled %v, handling %d", len(h.trunk.Dials()), h.trunk.settled(), s.handling.Load())
	if os.Getenv("DIALER_STACKS") != "" {
		buf := make([]byte, 1<<20)
		h.t.Logf("%s", buf[:runtime.Stack(buf, true)])
	}
	h.t.Fatalf("condition not reached within %v of the clock", limit)
}

// settle waits until every call's step due by now was handled: the
// timers the clock fired were read, the trunk's calls wait on the clock
// or the gateway, and the services handle none. A timer nobody reads
// any more (its select took another case) would hold it forever, so it
// gives up after a moment of real time; the test's conditions, not this
// wait, decide.
func (h *harness) settle(services ...*Service) {
	idle := func() bool {
		ok := h.clock.firedRead() && h.trunk.settled()
		for _, s := range services {
			ok = ok && s.handling.Load() == 0
		}
		return ok
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	for !idle() && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	// A timer's value is handed straight to a goroutine blocked on it,
	// which is then runnable but may not have run: the checks above
	// cannot see that, so calls in progress get a moment of real time.
	if h.trunk.live() {
		time.Sleep(200 * time.Microsecond)
		for !idle() && time.Now().Before(deadline) {
			runtime.Gosched()
		}
	}
}

func (h *harness) state(id string) State {
	c, err := h.store.Campaign(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return c.State
}

// callEvents returns the dialer's events on a customer's timeline.
func (h *harness) callEvents(customer string) []CallEvent {
	h.t.Helper()
	evs, err := h.sess.Timeline(h.ctx, customer, 0, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []CallEvent
	for _, ev := range evs {
		if ev.Kind != sessions.KindCall || ev.Author != AuthorDialer {
			continue
		}
		var ce CallEvent
		if err := json.Unmarshal(ev.Payload, &ce); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, ce)
	}
	return out
}

// dialsPerAttempt counts the trunk's dials by attempt id.
func (h *harness) dialsPerAttempt() map[string]int {
	n := map[string]int{}
	for _, d := range h.trunk.Dials() {
		n[d.AttemptID]++
	}
	return n
}

func phoneID(e164 string) sessions.Identity {
	return sessions.Identity{Kind: sessions.IdentityPhone, Value: e164}
}
