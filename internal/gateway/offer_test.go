package gateway_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/omnigate/omnigate/router"
)

// offerGateway is routedGateway with a chat queue that offers, with an
// accept timeout, rather than assigning.
func offerGateway(t *testing.T, timeout string) string {
	t.Helper()
	y := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 5s
auth:
  admin_keys: [{name: test, key: %s}]
  reps:
    - {id: alice, token: %s}
    - {id: bob, token: %s}
webchat:
  sites: [{id: demo}]
  availability_interval: 50ms
routing:
  queues:
    - {name: chat, channels: [webchat], skills: {chat: 1}, offer: {accept_timeout: %s}}
  reps:
    - {id: alice, skills: {chat: 5}, languages: [en]}
    - {id: bob, skills: {chat: 5}, languages: [en]}
`, t.TempDir(), adminKey, aliceToken, bobToken, timeout)
	cfg := parseConfig(t, y, nil)
	g, _ := runGateway(t, cfg)
	return g.BaseURL()
}

// offerEvent is an offer event's payload, as the inbox reads it.
type offerEvent struct {
	Kind      string `json:"kind"`
	Rep       string `json:"rep"`
	ExpiresAt string `json:"expires_at"`
	Response  string `json:"response"`
	Why       string `json:"why"`
}

// offers lists the customer's offer events.
func offers(t *testing.T, base, customer string) []offerEvent {
	t.Helper()
	var out []offerEvent
	for _, ev := range timeline(t, base, customer) {
		if ev.Kind != "offer" {
			continue
		}
		var o offerEvent
		if err := json.Unmarshal(ev.Payload, &o); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// waitOffer waits for a standing offer to rep (the latest offer event)
// and returns the conversation id.
func waitOffer(t *testing.T, base, customer, rep string) string {
	t.Helper()
	waitFor(t, "an offer to "+rep, func() bool {
		evs := offers(t, base, customer)
		return len(evs) > 0 && evs[len(evs)-1].Kind == "offer" && evs[len(evs)-1].Rep == rep
	})
	o := offers(t, base, customer)
	if last := o[len(o)-1]; last.ExpiresAt == "" || last.Why == "" {
		t.Fatalf("offer event without deadline or why: %+v", last)
	}
	convs := conversationsOf(t, base, customer)
	if len(convs) != 1 || convs[0].Assignee != "" {
		t.Fatalf("conversation while offered: %+v", convs)
	}
	return convs[0].ID
}

// TestOfferAccept: in a queue with an accept timeout the rep is offered
// the chat, not given it; another rep cannot answer the offer; accepting
// through the API assigns it, with the decision on the timeline.
func TestOfferAccept(t *testing.T) {
	t.Parallel()
	base := offerGateway(t, "30s")
	setPresence(t, base, "alice", aliceToken, "available")
	v := newVisitor(t, base)
	v.say(t, "hello")
	conv := waitOffer(t, base, v.customer, "alice")

	call(t, base, "POST", "/v1/conversations/"+conv+"/accept", bobToken, "", 403, nil)
	call(t, base, "POST", "/v1/conversations/"+conv+"/decline", bobToken, "", 403, nil)
	call(t, base, "POST", "/v1/conversations/"+conv+"/accept", adminKey, "", 403, nil)

	call(t, base, "POST", "/v1/conversations/"+conv+"/accept", aliceToken, "", 202, nil)
	d := assignment(t, base, v.customer, 1)
	if d.Kind != router.KindAccepted || d.RepID != "alice" || d.Ring != router.RingExact || d.Why == "" {
		t.Fatalf("decision = %+v", d)
	}
	waitFor(t, "the conversation to be alice's", func() bool {
		return conversationsOf(t, base, v.customer)[0].Assignee == "alice"
	})
	if r := reps(t, base); r["alice"].Used != 25 {
		t.Fatalf("reps = %+v", r)
	}
	// The offer is answered: a second answer is refused.
	call(t, base, "POST", "/v1/conversations/"+conv+"/accept", aliceToken, "", 409, nil)
}

// TestOfferMovesOn: an offer not answered within the timeout goes to the
// next rep; a declined one too; with nobody left it waits.
func TestOfferMovesOn(t *testing.T) {
	t.Parallel()
	base := offerGateway(t, "300ms")
	setPresence(t, base, "alice", aliceToken, "available")
	setPresence(t, base, "bob", bobToken, "available")

	// No answer: the offer expires and moves on to the other rep.
	v := newVisitor(t, base)
	v.say(t, "hello")
	var first string
	waitFor(t, "an offer", func() bool {
		evs := offers(t, base, v.customer)
		if len(evs) > 0 {
			first = evs[0].Rep
		}
		return first != ""
	})
	second := map[string]string{"alice": "bob", "bob": "alice"}[first]
	waitOffer(t, base, v.customer, second)
	var expired bool
	for _, o := range offers(t, base, v.customer) {
		expired = expired || (o.Kind == string(router.KindOfferExpired) && o.Rep == first)
	}
	if !expired {
		t.Fatalf("no expiry of %s's offer: %+v", first, offers(t, base, v.customer))
	}

	// Decline: the next rep is offered at once.
	v2 := newVisitor(t, base)
	v2.say(t, "hi")
	var to string
	waitFor(t, "an offer", func() bool {
		evs := offers(t, base, v2.customer)
		if len(evs) > 0 {
			to = evs[0].Rep
		}
		return to != ""
	})
	tok := map[string]string{"alice": aliceToken, "bob": bobToken}
	conv := conversationsOf(t, base, v2.customer)[0].ID
	call(t, base, "POST", "/v1/conversations/"+conv+"/decline", tok[to], "", 202, nil)
	waitFor(t, "the decline to move the offer on", func() bool {
		var declined, next bool
		for _, o := range offers(t, base, v2.customer) {
			declined = declined || (o.Kind == string(router.KindOfferDeclined) && o.Rep == to)
			next = next || (o.Kind == "offer" && o.Rep != to)
		}
		return declined && next
	})
}
