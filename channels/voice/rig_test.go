package voice

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer/sip"
	"github.com/omnigate/omnigate/dialer/sip/sipptest"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/router/routing"
	"github.com/omnigate/omnigate/sessions"
)

// caller is the number dialer/sip's caller scenarios assert
// (P-Asserted-Identity).
const caller = "+14155550123"

// rig is the inbound path with real parts: a memory store, the routing
// service with one voice queue, the SIP user agent on loopback with one
// trunk (SIPp's callers come from 127.0.0.1) and the adapter.
type rig struct {
	t     testing.TB
	store *sessions.MemoryStore
	svc   *routing.Service
	ua    *sip.UA
	a     *Adapter
}

type rigOptions struct {
	reps    map[string]string // rep id -> sip_uri, made available in map order of ids sorted
	order   []string          // the order reps become available (longest idle first)
	later   []string          // reps known to the router but offline at start
	queue   router.QueueConfig
	wrapUp  time.Duration // the router's wrap-up after a voice task
	cfg     Config
	trunk   func(*sip.TrunkConfig)
	prepare func(ctx context.Context, st sessions.Store) // before the call: customers, owners
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{t: t, store: sessions.NewMemoryStore()}
	t.Cleanup(func() { _ = r.store.Close() })
	if o.prepare != nil {
		o.prepare(ctx, r.store)
	}
	o.queue.Name, o.queue.Channels = "voice", []string{sessions.ChannelVoice}
	rc := router.Config{Queues: []router.QueueConfig{o.queue}, WrapUp: map[string]time.Duration{sessions.ChannelVoice: o.wrapUp}}
	for _, id := range append(o.order, o.later...) {
		rc.Reps = append(rc.Reps, router.Rep{ID: id, Name: id, SIPURI: o.reps[id]})
	}
	svc, err := routing.New(routing.Config{}, rc, routing.Options{Store: r.store})
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	for _, id := range o.order {
		if err := svc.SetPresence(ctx, id, router.PresenceAvailable); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct idle times: o.order is longest idle first
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	fan, err := sessions.NewFanout(r.store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fan.Close)
	tc := sip.TrunkConfig{Proxy: "127.0.0.1:5060", FromUser: "omnigate", Trusted: true, CallsPerSecond: 50, MaxCalls: 50}
	if o.trunk != nil {
		o.trunk(&tc)
	}
	cfg := sip.Config{Listen: "127.0.0.1:0", Trunks: map[string]sip.TrunkConfig{"t": tc}}
	if err := cfg.Prepare(func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	r.a, err = New(o.cfg, Options{Store: r.store, Watcher: fan, RepURI: func(rep string) (string, error) {
		st, err := svc.Rep(rep)
		return st.SIPURI, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.a.Close)
	r.ua, err = sip.NewUA(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.ua.Close() })
	r.ua.HandleInbound(r.a.Handle)
	return r
}

// customer is the caller's customer.
func (r *rig) customer() string {
	r.t.Helper()
	id, err := r.store.IdentityOwner(context.Background(), sessions.Identity{Kind: sessions.IdentityPhone, Value: caller})
	if err != nil {
		r.t.Fatalf("the caller's customer: %v", err)
	}
	return id
}

// step is a call event of the timeline, or a router event, in short.
type step struct {
	seq  uint64
	kind sessions.EventKind
	call CallEvent
	// router events: the decision's kind and rep
	decision, rep string
	away          bool
	conv          string
}

// waitEnded waits for the call's ended event and returns the customer's
// timeline in short.
func (r *rig) waitEnded() []step {
	r.t.Helper()
	cust := r.customer()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var steps []step
		evs, err := r.store.Timeline(context.Background(), cust, 0, 1000)
		if err != nil {
			r.t.Fatal(err)
		}
		ended := false
		for _, ev := range evs {
			s := step{seq: ev.Seq, kind: ev.Kind, conv: ev.ConversationID}
			switch ev.Kind {
			case sessions.KindCall:
				if err := json.Unmarshal(ev.Payload, &s.call); err != nil {
					r.t.Fatal(err)
				}
				ended = ended || s.call.Step == StepEnded
			case sessions.KindOffer, sessions.KindAssignment:
				var d struct {
					Kind    string `json:"kind"`
					Rep     string `json:"rep_id"`
					Away    bool   `json:"rep_away"`
					Respond string `json:"response"`
				}
				_ = json.Unmarshal(ev.Payload, &d)
				s.decision, s.rep, s.away = d.Kind, d.Rep, d.Away
				if d.Respond != "" {
					s.decision = "response:" + d.Respond
				}
			}
			steps = append(steps, s)
		}
		if ended {
			return steps
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no ended call event in 20s: %+v", steps)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answeredBy places a short call that the rep (whose phone is phone)
// answers first time, and returns the timeline once it ended.
func (r *rig) answeredBy(phone *sipptest.SIPp, rep string) []step {
	r.t.Helper()
	c := sipptest.StartUAC(r.t, "caller", r.ua.Addr(), 500*time.Millisecond)
	c.Wait()
	phone.Wait()
	steps := r.waitEnded()
	if got, want := calls(steps), []string{"incoming", "ringing/" + rep, "answered/" + rep, "ended/" + rep}; !slices.Equal(got, want) {
		r.t.Fatalf("call steps %v, want %v", got, want)
	}
	return steps
}

// calls is the call events' steps, "step/rep".
func calls(steps []step) []string {
	var out []string
	for _, s := range steps {
		if s.kind == sessions.KindCall {
			out = append(out, strings.TrimSuffix(s.call.Step+"/"+s.call.Rep, "/"))
		}
	}
	return out
}

func callStep(t *testing.T, steps []step, name string) CallEvent {
	t.Helper()
	for _, s := range steps {
		if s.kind == sessions.KindCall && s.call.Step == name {
			return s.call
		}
	}
	t.Fatalf("no %s call event in %+v", name, steps)
	return CallEvent{}
}

// refusingCaller writes a UAC scenario like dialer/sip's caller whose
// INVITE gets the final response code (and its ACK), nothing else.
func refusingCaller(t *testing.T, code string, pai bool) string {
	t.Helper()
	b, err := os.ReadFile(sipptest.Scenario("caller_abandon"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	head := s[:strings.Index(s, `<recv response="100"`)]
	user := caller
	if !pai {
		user = "anonymous"
		head = strings.Replace(head, "      P-Asserted-Identity: <sip:"+caller+"@trunk.test>\n", "", 1)
		head = strings.ReplaceAll(head, "sip:"+caller+"@", "sip:anonymous@")
	}
	s = head + `<recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="` + code + `"/>
  <send>
    <![CDATA[
      ACK sip:contact-centre@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-4]
      From: <sip:` + user + `@trunk.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:contact-centre@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
</scenario>
`
	p := filepath.Join(t.TempDir(), "caller_"+code+".xml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
