package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// daveToken is the wallboard test's second rep (carolToken, the
// supervisor's, is in inbox_tools_test.go).
const daveToken = "e2e-dave-token-0123456789abcdef"

// wallboardConfig is the wallboard test's configuration: alice takes
// chats; dave, available without the chat skill, keeps the widget
// offering chat while alice is on break, and is never given one; carol
// supervises. Chats should be answered within 2s; a wait over 3s alerts.
func wallboardConfig(t *testing.T, g *gateway) {
	t.Helper()
	dir := filepath.Dir(g.config)
	cfg := fmt.Sprintf(`listen: %s
data_dir: %s
shutdown_timeout: 3s
log: {format: text, level: info}
store: {kind: bolt}
auth:
  admin_keys:
    - {name: e2e-admin, key: %s}
  reps:
    - {id: alice, name: Alice, role: rep, token: %s}
    - {id: dave, name: Dave, role: rep, token: %s}
    - {id: carol, name: Carol, role: supervisor, token: %s}
webchat:
  availability_interval: 1s
  sites:
    - id: %s
      secret: e2e-site-secret-0123456789
routing:
  queues:
    - {name: chat, channels: [webchat], skills: {chat: 1}, service_level_target: 2s}
  reps:
    - {id: alice, skills: {chat: 5}}
    - {id: dave}
reports:
  alert_wait: 3s
`, strings.TrimPrefix(g.base, "http://"), filepath.Join(dir, "data"), adminKey, aliceToken, daveToken, carolToken, siteID)
	if err := os.WriteFile(g.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// call makes an API request with token and returns the status and body.
func call(t *testing.T, g *gateway, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, g.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func setState(t *testing.T, g *gateway, rep, token, body string) {
	t.Helper()
	if code, out := call(t, g, "POST", "/v1/reps/"+rep+"/presence", token, body); code != 200 {
		t.Fatalf("presence of %s %s: %d %s", rep, body, code, out)
	}
}

// queueCell is a JavaScript expression reading the chat queue's cell of
// the wallboard.
func queueCell(class string) string {
	return `(document.querySelector('#queues tr[data-queue="chat"] td.` + class + `')?.textContent || '')`
}

// longestSeconds reads the longest wait ("m:ss") as seconds.
const longestSeconds = `(() => { const m = ` + "`${" + `(document.querySelector('#queues tr[data-queue="chat"] td.longest')?.textContent || '')` + "}`" + `.match(/^(\d+):(\d\d)$/); return m ? +m[1] * 60 + +m[2] : -1; })()`

// TestBrowserWallboard is issue 15's wallboard scenario: carol, a
// supervisor, watches the wallboard while alice is on break. A visitor's
// chat waits (alice on break gets nothing, dave lacks the skill): the
// board shows it waiting, the longest wait growing and the long-wait
// alert; alice comes back, takes it, and the board shows nobody waiting
// and the service level (0%: it waited past the 2s target); a second
// visitor answered at once moves it to 50%.
func TestBrowserWallboard(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway and drives a browser")
	}
	chromium := findChromium(t)
	gw := newGateway(t)
	wallboardConfig(t, gw)
	gw.start()
	browser := newBrowser(t, chromium)

	setState(t, gw, "dave", adminKey, `{"status":"available"}`)
	setState(t, gw, "alice", aliceToken, `{"status":"break","reason":"lunch"}`)

	board := newPage(t, browser, "wallboard", 1440, 900)
	board.do("open the wallboard", chromedp.Navigate(gw.base+"/wallboard"))
	board.do("sign in as carol",
		chromedp.SendKeys(chromedp.ID("signin-token"), carolToken),
		chromedp.Click(chromedp.ID("signin-submit")))
	board.waitFor("the live board", `document.querySelector('#conn').textContent === 'Live'`)
	board.waitFor("the chat queue, nobody waiting", queueCell("waiting")+` === '0'`)
	board.waitFor("alice on break", `(document.querySelector('#reps tr[data-rep="alice"] .state')?.textContent || '') === 'break · lunch'`)

	visitor := newPage(t, browser, "visitor", 1100, 780)
	visitor.do("open the demo page", chromedp.Navigate(gw.base+"/"))
	visitor.waitFor("the widget", widgetJS(`!!r.querySelector('.og-launcher')`))
	visitor.do("open the widget", chromedp.Click(widgetSel(".og-launcher")))
	visitor.waitFor("the chat composer", widgetJS(`r.querySelector('.og-status').hidden && !r.querySelector('.og-composer').hidden`))
	visitor.do("say hello", chromedp.SendKeys(widgetSel(".og-input"), "Hello, anyone there?\r"))
	visitor.waitFor("hello acknowledged", widgetMessage("visitor", "Hello, anyone there?", "sent"))
	customerID := evalJS[string](visitor, "the customer id", `localStorage.getItem('omnigate:`+siteID+`:customer') || ''`)

	board.waitFor("one visitor waiting", queueCell("waiting")+` === '1'`)
	board.waitFor("a wait of a second", longestSeconds+` >= 1`)
	first := evalJS[int](board, "the longest wait", longestSeconds)
	board.waitFor("the longest wait growing", fmt.Sprintf(`%s >= %d`, longestSeconds, first+2))
	board.waitFor("the long-wait alert", `!!document.querySelector('#alerts .alert[data-kind="long_wait"]')`)

	// The router holds the chat waiting (its gauge says so: proof the
	// message was routed), and nobody has it: alice on break got nothing.
	waitMetric(t, gw, "omnigate_routing_waiting 1")
	if a := assignee(t, gw, customerID); a != "" {
		t.Fatalf("the chat went to %q while alice was on break and dave lacks the skill", a)
	}
	if ev := offersTo(t, gw, customerID, "alice"); ev != "" {
		t.Fatalf("alice on break was offered or assigned the chat: %s", ev)
	}

	answered := time.Now()
	setState(t, gw, "alice", aliceToken, `{"status":"available"}`)
	board.waitFor("nobody waiting once alice answers", queueCell("waiting")+` === '0'`)
	t.Logf("the wallboard showed the answer %v after alice became available", time.Since(answered).Round(10*time.Millisecond))
	board.waitFor("the service level: 0% (answered past the 2s target)", queueCell("sl")+` === '0%'`)
	board.waitFor("the service-level alert", `!!document.querySelector('#alerts .alert[data-kind="service_level"]')`)
	if a := assignee(t, gw, customerID); a != "alice" {
		t.Fatalf("the chat is with %q, want alice", a)
	}

	second := newPage(t, browser, "second visitor", 1100, 780)
	second.do("open the demo page", chromedp.Navigate(gw.base+"/"))
	second.waitFor("the widget", widgetJS(`!!r.querySelector('.og-launcher')`))
	second.do("open the widget", chromedp.Click(widgetSel(".og-launcher")))
	second.waitFor("the chat composer", widgetJS(`r.querySelector('.og-status').hidden && !r.querySelector('.og-composer').hidden`))
	second.do("say hello", chromedp.SendKeys(widgetSel(".og-input"), "Hi!\r"))
	board.waitFor("the service level moving to 50%", queueCell("sl")+` === '50%'`)
	board.waitFor("two answered", queueCell("answered")+` === '2'`)
	board.waitFor("the day's chart", `document.querySelectorAll('#chart-contacts rect').length >= 3 && !!document.querySelector('#chart-sl circle')`)
	board.screenshot("wallboard.png")
}

// waitMetric polls /metrics until a line equals want.
func waitMetric(t *testing.T, g *gateway, want string) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		resp, err := client.Get(g.base + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(b), "\n") {
				if line == want {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never said %q", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assignee is who holds the customer's open conversation.
func assignee(t *testing.T, g *gateway, customerID string) string {
	t.Helper()
	code, body := call(t, g, "GET", "/v1/conversations?customer_id="+customerID, adminKey, "")
	var page struct {
		Data []struct{ Assignee string } `json:"data"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &page) != nil || len(page.Data) != 1 {
		t.Fatalf("conversations of %s: %d %s", customerID, code, body)
	}
	return page.Data[0].Assignee
}

// offersTo is the first offer or assignment event naming rep on the
// customer's timeline, "" if none.
func offersTo(t *testing.T, g *gateway, customerID, rep string) string {
	t.Helper()
	code, body := call(t, g, "GET", "/v1/customers/"+customerID+"/timeline?limit=1000", adminKey, "")
	var page struct {
		Data []json.RawMessage `json:"data"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &page) != nil {
		t.Fatalf("timeline of %s: %d %s", customerID, code, body)
	}
	for _, raw := range page.Data {
		var ev struct{ Kind string }
		_ = json.Unmarshal(raw, &ev)
		if (ev.Kind == "offer" || ev.Kind == "assignment") && strings.Contains(string(raw), `"`+rep+`"`) {
			return string(raw)
		}
	}
	return ""
}
