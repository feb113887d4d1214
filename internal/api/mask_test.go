package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/sessions"
	"github.com/omnigate/omnigate/sessions/redact/redacttest"
)

// Numbers a customer or an integrator writes into free text, each with
// digits no id or timestamp is likely to hold by chance.
var (
	cnMobile = redacttest.Number{CC: "86", National: "13795468213"}
	usNumber = redacttest.Number{CC: "1", National: "4155550137"}
	ukNumber = redacttest.Number{CC: "44", National: "7911627384"}
)

// TestRepSeesNoPhoneInFreeText writes numbers, in the ways people write
// them, into every free-text field a rep can read (conversation topic,
// customer name, tags and attributes, message and note text, integrator
// event data) and reads everything back through every route a rep may
// call: no run of six digits of any number may reach the rep, while a
// supervisor sees them as written.
func TestRepSeesNoPhoneInFreeText(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	cn, us, uk := cnMobile.Formats(), usNumber.Formats(), ukNumber.Formats()

	c, _, err := f.store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "site1", Value: "v-free"},
		sessions.Customer{Name: "Li Lei " + cn[1], Tags: []string{"vip", us[13]},
			Attributes: map[string]string{"note": "call " + uk[6], "backup": cn[5]}})
	must(t, err)
	conv, _, err := f.store.OpenConversation(ctx, c.ID, "callback "+cn[19], sessions.ChannelWebchat)
	must(t, err)
	for _, text := range []string{"my number is " + cn[2] + ", or " + us[10], "电话" + cn[8] + "号", uk[14] + " anytime"} {
		payload, _ := json.Marshal(sessions.Message{Text: text})
		_, _, err = f.store.Append(ctx, sessions.Event{CustomerID: c.ID, ConversationID: conv.ID, Kind: sessions.KindMessageIn,
			Channel: sessions.ChannelWebchat, Author: "customer", Payload: payload})
		must(t, err)
	}
	_, _, err = f.store.Append(ctx, sessions.Event{CustomerID: c.ID, Kind: sessions.KindIntegrator, Channel: sessions.ChannelSystem,
		Author: "integrator:crm", Payload: json.RawMessage(`{"data":{"contact":"` + us[3] + `","mobile":` + usNumber.National + `,"lines":["` + uk[2] + `"]}}`)})
	must(t, err)

	r := f.do("POST", "/v1/conversations/"+conv.ID+"/notes", aliceToken, `{"text":"customer asked to be called on `+cn[11]+`"}`)
	if r.status != 201 {
		t.Fatalf("note = %d %s", r.status, r.body)
	}
	checkMasked(t, "POST note", r.body)
	r = f.do("PATCH", "/v1/customers/"+c.ID, aliceToken, `{"tags":["vip","`+us[12]+`"]}`)
	if r.status != 200 {
		t.Fatalf("PATCH = %d %s", r.status, r.body)
	}
	checkMasked(t, "PATCH customer", r.body)

	paths := []string{
		"/v1/customers/" + c.ID,
		"/v1/customers/" + c.ID + "/timeline",
		"/v1/customers?name=li",
		"/v1/conversations",
		"/v1/conversations?customer_id=" + c.ID,
		"/v1/conversations/" + conv.ID,
	}
	for _, path := range paths {
		r := f.do("GET", path, aliceToken, "")
		if r.status != 200 {
			t.Fatalf("GET %s = %d %s", path, r.status, r.body)
		}
		if !json.Valid(r.body) {
			t.Fatalf("GET %s: masked body is not JSON:\n%s", path, r.body)
		}
		checkMasked(t, "GET "+path, r.body)
		// Ids survive masking: the rep can follow them.
		if !strings.Contains(string(r.body), c.ID) {
			t.Errorf("GET %s lost the customer id %s:\n%s", path, c.ID, r.body)
		}
	}
	// A supervisor reads the numbers as written.
	r = f.do("GET", "/v1/customers/"+c.ID+"/timeline", carolToken, "")
	if !strings.Contains(string(r.body), cnMobile.National) || !strings.Contains(string(r.body), `"mobile":`+usNumber.National) {
		t.Errorf("supervisor's timeline lacks the numbers:\n%s", r.body)
	}
	// The old masking still holds: identities and attributes.
	r = f.do("GET", "/v1/customers/{cust}", aliceToken, "")
	if !strings.Contains(string(r.body), maskedPhone) || strings.Contains(string(r.body), phone) {
		t.Errorf("rep's customer:\n%s", r.body)
	}
}

func checkMasked(t *testing.T, what string, body []byte) {
	t.Helper()
	for _, n := range []redacttest.Number{cnMobile, usNumber, ukNumber} {
		if w := redacttest.Leaked(string(body), n, 6); w != "" {
			t.Errorf("%s shows a rep %q of %s:\n%s", what, w, n.E164(), body)
		}
	}
}

// TestRepErrorsAreMasked: an error message that echoes what the rep sent
// is masked like any other answer.
func TestRepErrorsAreMasked(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.do("PATCH", "/v1/customers/{cust}", aliceToken, `{"owner":"`+cnMobile.National+`"}`)
	if r.status != 403 {
		t.Fatalf("PATCH owner as rep = %d %s", r.status, r.body)
	}
	r = f.do("POST", "/v1/conversations/{conv}/assign", aliceToken, `{"assignee":"`+cnMobile.National+`"}`)
	if r.status != 400 || r.errorCode(t) != "invalid" {
		t.Fatalf("assign = %d %s", r.status, r.body)
	}
	checkMasked(t, "assign error", r.body)
}
