package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnigate/omnigate/dialer/sip/sipptest"
)

// TestBrowserIncomingCallCard drives the inbox's call card (call.js) in a
// real headless Chromium against the gateway binary with a voice
// section: SIPp calls in through the trunk, alice's SIPp phone rings for
// four seconds (the card shows the caller, masked, and the customer's
// timeline), answers (the card says on a call), the caller hangs up (the
// outcome form), alice saves the outcome and the conversation is
// resolved with her note on it.
func TestBrowserIncomingCallCard(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway and drives a browser")
	}
	chromium := findChromium(t)
	phone := sipptest.Start(t, ringingPhone(t), "-rtp_echo")
	sipPort := sipptest.FreeUDPPort(t)
	gw := newGatewayWith(t, "", fmt.Sprintf(`
routing:
  queues: [{name: calls, channels: [voice], offer: {accept_timeout: 10s}}]
  reps: [{id: alice, sip_uri: "sip:alice@%s"}]
voice:
  listen: 127.0.0.1:%d
  trunks:
    carrier: {proxy: "127.0.0.1:5060", from_user: omnigate, trusted: true}
`, phone.Addr, sipPort))
	gw.start()
	browser := newBrowser(t, chromium)
	rep := newPage(t, browser, "rep", 1280, 800)
	rep.do("open the inbox", chromedp.Navigate(gw.base+"/inbox"))
	rep.do("sign in as alice",
		chromedp.SendKeys(chromedp.ID("signin-token"), aliceToken),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#connection[data-state="online"]`)))

	caller := sipptest.StartUAC(t, "caller", fmt.Sprintf("127.0.0.1:%d", sipPort), 2*time.Second)
	rep.waitFor("the incoming call card", `document.querySelector('#call-card h2')?.textContent === 'Incoming call' &&
		document.querySelector('#call-card .call-history')?.textContent.includes('call in: incoming')`)
	if number := evalJS[string](rep, "the caller's number", `document.querySelector('#call-card .dialer-phone').textContent`); containsDigits(number, "4155550123") {
		t.Errorf("the card shows the number %q unmasked", number)
	}
	rep.screenshot("call-incoming.png")
	rep.waitFor("on a call", `document.querySelector('#call-card h2')?.textContent === 'On a call'`)
	caller.Wait()
	phone.Wait()
	rep.waitFor("the outcome form", `!!document.getElementById('call-outcome')`)
	rep.screenshot("call-outcome.png")
	evalJS[bool](rep, "save the outcome", `(() => {
		document.getElementById('call-outcome').value = 'follow_up';
		document.getElementById('call-note').value = 'wants a quote';
		document.querySelector('#call-card form').requestSubmit();
		return true;
	})()`)
	rep.waitFor("the card gone", `document.getElementById('call-card').hidden`)

	cust := customerOf(t, gw, "+14155550123")
	note := false
	for _, ev := range gw.timeline(cust) {
		note = note || ev.Kind == "note" && ev.Payload.Text == "Call outcome: follow up — wants a quote"
	}
	var convs struct {
		Data []struct {
			Status string `json:"status"`
		} `json:"data"`
	}
	adminGet(t, gw, "/v1/conversations?customer_id="+cust, &convs)
	if !note || len(convs.Data) != 1 || convs.Data[0].Status != "resolved" {
		t.Fatalf("outcome note %v, conversations %+v; want the note and the call's conversation resolved", note, convs.Data)
	}
}

// ringingPhone is dialer/sip's rep_answer scenario ringing for four
// seconds before it answers.
func ringingPhone(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(sipptest.Scenario("rep_answer"))
	if err != nil {
		t.Fatal(err)
	}
	ring := `<recv request="INVITE"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="4000"/>`
	p := filepath.Join(t.TempDir(), "rep_ring_answer.xml")
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), `<recv request="INVITE"/>`, ring, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// customerOf is the id of the customer with the phone number.
func customerOf(t *testing.T, g *gateway, phone string) string {
	t.Helper()
	var page struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	adminGet(t, g, "/v1/customers?phone="+strings.ReplaceAll(phone, "+", "%2B"), &page)
	if len(page.Data) == 0 {
		t.Fatalf("no customer has %s", phone)
	}
	return page.Data[0].ID
}

// adminGet decodes the API's answer to GET path with the admin key.
func adminGet(t *testing.T, g *gateway, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", g.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", path, resp.StatusCode, err)
	}
}
