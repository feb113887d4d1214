package gateway_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer/sip/sipptest"
)

// voiceConfig is a gateway with the voice section on loopback (SIPp's
// callers come from 127.0.0.1, the trunk's proxy), alice and bob on the
// voice queue with their phones at the given URIs, offers of 2 s and a
// rep away after one miss.
func voiceConfig(t *testing.T, aliceURI, bobURI, extra string) string {
	t.Helper()
	return fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 5s
auth:
  admin_keys: [{name: test, key: %s}]
  reps:
    - {id: alice, token: %s}
    - {id: bob, token: %s}
routing:
  queues:
    - {name: calls, channels: [voice], offer: {accept_timeout: 2s, max_misses: 1}}
    - {name: chat}
  reps:
    - {id: alice, sip_uri: "%s"}
    - {id: bob, sip_uri: "%s"}
voice:
  listen: 127.0.0.1:0
  trunks:
    carrier: {proxy: "127.0.0.1:5060", from_user: omnigate, trusted: true}
%s`, t.TempDir(), adminKey, aliceToken, bobToken, aliceURI, bobURI, extra)
}

// voiceCall is an inbound call event on a timeline (voice.CallEvent).
type voiceCall struct {
	Step      string `json:"step"`
	Direction string `json:"direction"`
	Number    string `json:"number"`
	Outcome   string `json:"outcome"`
	Rep       string `json:"rep"`
	HungUpBy  string `json:"hung_up_by"`
	TalkMS    int64  `json:"talk_ms"`
}

// voiceSteps waits for the customer of number to have an ended call and
// returns the call steps, "step/rep".
func voiceSteps(t *testing.T, base, number string) ([]string, []voiceCall) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var steps []string
		var evs []voiceCall
		ended := false
		if cust := customerByPhone(t, base, number); cust != "" {
			for _, ev := range timeline(t, base, cust) {
				var c voiceCall
				if ev.Kind != "call" || json.Unmarshal(ev.Payload, &c) != nil {
					continue
				}
				steps = append(steps, strings.TrimSuffix(c.Step+"/"+c.Rep, "/"))
				evs = append(evs, c)
				ended = ended || c.Step == "ended"
			}
		}
		if ended {
			return steps, evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ended call for %s after 20s: %v", number, steps)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An inbound call through the gateway: alice (idle longest) is offered
// it and her phone rings out, bob's answers, media flows both ways; the
// customer's timeline has the call in order, the number masked, and the
// conversation is bob's; alice's miss set her away.
func TestVoiceInboundThroughTheGateway(t *testing.T) {
	t.Parallel()
	alice := sipptest.Start(t, "customer_noanswer")
	bob := sipptest.Start(t, "rep_answer", "-rtp_echo")
	g, stop := runGateway(t, parseConfig(t, voiceConfig(t, "sip:alice@"+alice.Addr, "sip:bob@"+bob.Addr, ""), nil))
	base := g.BaseURL()
	setPresence(t, base, "alice", aliceToken, "available")
	time.Sleep(5 * time.Millisecond) // alice idle longer than bob
	setPresence(t, base, "bob", bobToken, "available")
	caller := sipptest.StartUAC(t, "caller", g.SIPAddr(), 2*time.Second)
	caller.Wait()
	alice.Wait()
	bob.Wait()
	steps, evs := voiceSteps(t, base, "+14155550123")
	if want := []string{"incoming", "ringing/alice", "missed/alice", "ringing/bob", "answered/bob", "ended/bob"}; !slices.Equal(steps, want) {
		t.Fatalf("call steps %v, want %v", steps, want)
	}
	for _, c := range evs {
		if c.Direction != "in" || c.Number == "+14155550123" || !strings.Contains(c.Number, "*") {
			t.Fatalf("call event %+v: want direction in and the number masked", c)
		}
	}
	if end := evs[len(evs)-1]; end.Outcome != "answered" || end.HungUpBy != "customer" || end.TalkMS < 1000 {
		t.Fatalf("ended %+v: want answered, hung up by the customer after about 2 s", end)
	}
	cust := customerByPhone(t, base, "+14155550123")
	waitFor(t, "the conversation assigned to bob", func() bool {
		cs := conversationsOf(t, base, cust)
		return len(cs) == 1 && cs[0].Assignee == "bob"
	})
	if r := reps(t, base)["alice"]; r.Presence != "away" {
		t.Errorf("alice is %s after missing the call, want away", r.Presence)
	}
	stop()
}
