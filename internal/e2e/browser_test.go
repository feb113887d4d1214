package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// stepTimeout bounds one step of a scenario: generous, because the test
// shares two cores with the rest of `go test -race ./...`. A step that
// waits ends as soon as its condition holds.
const stepTimeout = 30 * time.Second

// reconnectTimeout bounds waiting for a page to reconnect after the
// restart: both pages back off exponentially (the widget up to 30 s), so
// a slow restart can cost one long backoff on top.
const reconnectTimeout = 60 * time.Second

// TestBrowserChatSurvivesRestart is issue 3's browser scenario: a visitor
// on the demo page and a rep in the inbox, in two browser contexts of a
// real headless Chromium, talk through the real gateway binary, which is
// stopped and started again in the middle. Every message must show exactly
// once, in order, on both screens and in the stored timeline.
func TestBrowserChatSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway and drives a browser")
	}
	chromium := findChromium(t)
	gw := newGateway(t)
	gw.start()
	browser := newBrowser(t, chromium)

	// Two browser contexts: separate storage, as two people on two machines.
	visitor := newPage(t, browser, "visitor", 1100, 780)
	rep := newPage(t, browser, "rep", 1440, 900)

	// Nobody is online yet, so the widget offers the offline form; at a
	// common laptop size all of it, the submit button included, is on
	// screen inside the panel, without scrolling (issue 16).
	offline := newPage(t, browser, "offline visitor", 1280, 800)
	offline.do("open the demo page", chromedp.Navigate(gw.base+"/"))
	offline.waitFor("the widget", widgetJS(`!!r.querySelector('.og-launcher')`))
	offline.do("open the widget", chromedp.Click(widgetSel(".og-launcher")))
	offline.waitFor("the offline form", widgetJS(`!r.querySelector('.og-offline').hidden && r.querySelector('.og-status').hidden`))
	offline.waitFor("the form's submit button inside the panel", widgetJS(`(() => {
		const panel = r.querySelector('.og-panel').getBoundingClientRect();
		const button = r.querySelector('.og-offline button[type=submit]');
		const b = button.getBoundingClientRect();
		return b.height > 0 && b.top >= panel.top && b.bottom <= panel.bottom && b.bottom <= innerHeight &&
			r.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2) === button;
	})()`))

	// The rep signs in first, so the visitor's conversation reaches the
	// list live, over the rep socket.
	rep.do("open the inbox", chromedp.Navigate(gw.base+"/inbox"))
	rep.do("sign in as alice",
		chromedp.SendKeys(chromedp.ID("signin-token"), aliceToken),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#connection[data-state="online"]`)))

	const (
		v1 = "v1: Hello, where is my parcel?"
		r1 = "r1: Hi! Let me check that for you."
		v2 = "v2: 你好，我的快递到哪了？"
		v3 = "v3: sent while the gateway was down"
		r2 = "r2: It arrives tomorrow morning."
	)
	want := []string{v1, r1, v2, v3, r2}

	visitor.do("open the demo page", chromedp.Navigate(gw.base+"/"))
	visitor.waitFor("the widget", `!!document.querySelector('#omnigate-widget')?.shadowRoot?.querySelector('.og-launcher')`)
	visitor.do("open the widget", chromedp.Click(widgetSel(".og-launcher")))
	visitor.waitFor("the widget to connect", widgetJS(`r.querySelector('.og-status').hidden`))
	visitor.do("send v1", chromedp.SendKeys(widgetSel(".og-input"), v1+"\r"))
	visitor.waitFor("v1 acknowledged", widgetMessage("visitor", v1, "sent"))
	customerID := evalJS[string](visitor, "the customer id", `localStorage.getItem('omnigate:`+siteID+`:customer') || ''`)
	if !strings.HasPrefix(customerID, "cus_") {
		t.Fatalf("widget's customer id = %q, want cus_…", customerID)
	}

	conv := fmt.Sprintf(`#conversation-list > li.conv[data-customer-id=%q]`, customerID)
	rep.waitFor("the conversation in the list", fmt.Sprintf(`!!document.querySelector(%s)`, js(conv)))
	rep.do("open the conversation", chromedp.Click(chromedp.CSS(conv+" button.conv-open")))
	rep.waitFor("v1 in the timeline", inboxMessage("message_in", v1, ""))

	// Typing, both ways. The visitor types v2 without sending it yet.
	visitor.do("type v2", chromedp.SendKeys(widgetSel(".og-input"), v2))
	rep.waitFor("the visitor's typing indicator", `!!document.querySelector('#typing-indicator[data-on="true"]')`)
	rep.do("type r1", chromedp.SendKeys(chromedp.ID("reply-text"), r1))
	visitor.waitFor("the rep's typing indicator", widgetJS(`!r.querySelector('.og-typing').hidden && r.querySelector('.og-typing').textContent.includes('Alice')`))
	rep.do("send r1", chromedp.Click(chromedp.ID("send")))
	rep.waitFor("r1 sent", inboxMessage("message_out", r1, "sent"))
	visitor.waitFor("r1 in the widget", widgetMessage("rep", r1, ""))
	visitor.do("send v2", chromedp.SendKeys(widgetSel(".og-input"), "\r"))
	visitor.waitFor("v2 acknowledged", widgetMessage("visitor", v2, "sent"))
	rep.waitFor("v2 in the timeline", inboxMessage("message_in", v2, ""))

	// Restart the gateway. While it is down the visitor sends v3, which
	// the widget keeps as pending and resends after reconnecting.
	gw.stop()
	visitor.waitFor("the widget to notice the drop", widgetJS(`!r.querySelector('.og-status').hidden`))
	rep.waitFor("the inbox to notice the drop", `!!document.querySelector('#connection:not([data-state="online"])')`)
	visitor.do("send v3 while down", chromedp.SendKeys(widgetSel(".og-input"), v3+"\r"))
	visitor.waitFor("v3 pending", widgetMessage("visitor", v3, "sending"))
	gw.start()
	visitor.waitForWithin(reconnectTimeout, "the widget to reconnect", widgetJS(`r.querySelector('.og-status').hidden`))
	visitor.waitFor("v3 acknowledged after the restart", widgetMessage("visitor", v3, "sent"))
	rep.waitForWithin(reconnectTimeout, "the inbox to reconnect", `!!document.querySelector('#connection[data-state="online"]')`)
	rep.waitFor("v3 in the timeline", inboxMessage("message_in", v3, ""))
	rep.do("send r2",
		chromedp.SendKeys(chromedp.ID("reply-text"), r2),
		chromedp.Click(chromedp.ID("send")))
	rep.waitFor("r2 sent", inboxMessage("message_out", r2, "sent"))
	visitor.waitFor("r2 in the widget", widgetMessage("rep", r2, ""))
	visitor.waitFor("the chat composer, not the offline form, once the rep is back",
		widgetJS(`!r.querySelector('.og-composer').hidden && r.querySelector('.og-offline').hidden`))

	// Every message exactly once, in order: in the widget, in the inbox
	// (unique increasing seqs) and in the store.
	checkWidget(t, visitor, want)
	checkInbox(t, rep, want)
	var stored []string
	var last uint64
	clientIDs := map[string]bool{}
	for _, ev := range gw.timeline(customerID) {
		if ev.Seq <= last {
			t.Errorf("REST timeline: seq %d after %d", ev.Seq, last)
		}
		last = ev.Seq
		if ev.Kind != "message_in" && ev.Kind != "message_out" {
			continue
		}
		stored = append(stored, ev.Payload.Text)
		if id := ev.Payload.ClientID; id != "" {
			if clientIDs[id] {
				t.Errorf("REST timeline: client id %s stored twice", id)
			}
			clientIDs[id] = true
		}
	}
	if !slices.Equal(stored, want) {
		t.Errorf("REST timeline messages =\n  %q\nwant\n  %q", stored, want)
	}

	visitor.screenshot("widget.png")
	rep.screenshot("inbox.png")
}

// checkWidget asserts the widget shows each message once, in order, and
// nothing still sending or failed.
func checkWidget(t *testing.T, p *page, want []string) {
	t.Helper()
	type msg struct{ From, Text, State string }
	got := evalJS[[]msg](p, "the widget's messages", widgetJS(`Array.from(r.querySelectorAll('.og-list .og-msg')).map(li => ({
		From: li.classList.contains('og-msg--rep') ? 'rep' : li.classList.contains('og-msg--visitor') ? 'visitor' : 'other',
		Text: li.querySelector('.og-bubble').textContent,
		State: li.getAttribute('data-state') || ''}))`))
	var texts []string
	for _, m := range got {
		texts = append(texts, m.Text)
		if m.From == "visitor" && m.State != "sent" {
			t.Errorf("widget: %q is %q, want sent", m.Text, m.State)
		}
	}
	for _, w := range want {
		if n := count(texts, w); n != 1 {
			t.Errorf("widget shows %q %d times, want once", w, n)
		}
	}
	if !slices.Equal(texts, want) {
		t.Errorf("widget messages =\n  %q\nwant\n  %q", texts, want)
	}
}

// checkInbox asserts the rep's timeline has unique increasing seqs, each
// message once and in order, and no entry still pending.
func checkInbox(t *testing.T, p *page, want []string) {
	t.Helper()
	type ev struct {
		Seq   int
		Kind  string
		Text  string
		State string
	}
	got := evalJS[[]ev](p, "the inbox timeline", `Array.from(document.querySelectorAll('#timeline > li.ev')).map(li => ({
		Seq: li.dataset.seq ? +li.dataset.seq : -1,
		Kind: li.dataset.kind || '',
		Text: li.querySelector('.ev-text')?.textContent || '',
		State: li.dataset.state || ''}))`)
	var texts []string
	last := 0
	for _, e := range got {
		if e.Seq < 0 {
			t.Errorf("inbox: %s %q has no seq (still pending)", e.Kind, e.Text)
			continue
		}
		if e.Seq <= last {
			t.Errorf("inbox: seq %d shown after %d", e.Seq, last)
		}
		last = e.Seq
		if e.Kind == "message_in" || e.Kind == "message_out" {
			texts = append(texts, e.Text)
		}
		if e.Kind == "message_out" && e.State != "sent" {
			t.Errorf("inbox: reply %q is %q, want sent", e.Text, e.State)
		}
	}
	for _, w := range want {
		if n := count(texts, w); n != 1 {
			t.Errorf("inbox shows %q %d times, want once", w, n)
		}
	}
	if !slices.Equal(texts, want) {
		t.Errorf("inbox messages =\n  %q\nwant\n  %q", texts, want)
	}
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// findChromium returns Debian's chromium. Without it the test is skipped on
// a developer's machine and fails in CI, where scripts/test installs it.
func findChromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("chromium is not installed (scripts/test installs it): %v", err)
	}
	t.Skipf("chromium is not installed (apt-get install chromium, or run scripts/test): %v", err)
	return ""
}

// newBrowser starts one headless Chromium with a fresh profile; the test's
// cleanup closes it and waits for the process to exit.
func newBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// Registered after TempDir, so it runs first: the browser is gone
	// before its profile directory is removed.
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Do starts the browser for ctx's lifetime, so it gets ctx
	// itself: a derived context with a timeout would end the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// page is one tab in its own browser context.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu      sync.Mutex
	console []string
}

func newPage(t *testing.T, browser context.Context, name string, width, height int64) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	p := &page{t: t, name: name, ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m.String())
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s console:\n  %s", name, strings.Join(p.console, "\n  "))
			p.mu.Unlock()
		}
		cancel()
	})
	p.do("set the viewport", chromedp.EmulateViewport(width, height))
	return p
}

// do runs actions within stepTimeout.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

// waitFor polls a JavaScript expression until it is true.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	p.waitForWithin(stepTimeout, what, expr)
}

func (p *page) waitForWithin(timeout time.Duration, what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v\npage text:\n%s", p.name, what, err, p.text())
	}
}

// text is what the page shows, the widget's shadow root included, for
// failure messages.
func (p *page) text() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText + '\n' +
		(document.querySelector('#omnigate-widget')?.shadowRoot?.querySelector('.og')?.innerText || '')`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// screenshot writes the viewport as PNG into the test's directory and,
// with OMNIGATE_SCREENSHOTS=1, into docs/screenshots for the README.
func (p *page) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	dirs := []string{p.t.TempDir()}
	if os.Getenv("OMNIGATE_SCREENSHOTS") == "1" {
		dirs = append(dirs, filepath.Join(moduleRoot(p.t), "docs", "screenshots"))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			p.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
	p.t.Logf("%s: screenshot %s written to %s", p.name, name, strings.Join(dirs, ", "))
}

// moduleRoot is the directory of go.mod, from the test's working directory
// (the package's) upwards.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

func evalJS[T any](p *page, what, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: reading %s: %v", p.name, what, err)
	}
	return v
}

// The widget lives in an open shadow root on #omnigate-widget.
const widgetRoot = `document.querySelector('#omnigate-widget').shadowRoot`

func widgetSel(css string) chromedp.JSPath {
	return chromedp.JSPath(widgetRoot + `.querySelector(` + js(css) + `)`)
}

// widgetJS evaluates expr with r bound to the widget's shadow root, false
// while the widget is not there.
func widgetJS(expr string) string {
	return `(() => { const r = document.querySelector('#omnigate-widget')?.shadowRoot; if (!r) return false; return (` + expr + `); })()`
}

// widgetMessage is true when the widget shows a message from ("visitor" or
// "rep") with the text, in the state if one is given.
func widgetMessage(from, text, state string) string {
	return widgetJS(fmt.Sprintf(`Array.from(r.querySelectorAll('.og-list .og-msg--%s')).some(li =>
		li.querySelector('.og-bubble').textContent === %s && (%s === '' || li.getAttribute('data-state') === %s))`,
		from, js(text), js(state), js(state)))
}

// inboxMessage is true when the rep's timeline shows a stored event (one
// with a seq) of the kind with the text, in the state if one is given.
func inboxMessage(kind, text, state string) string {
	sel := `#timeline > li.ev[data-seq][data-kind="` + kind + `"]`
	if state != "" {
		sel += `[data-state="` + state + `"]`
	}
	return fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).some(li => li.querySelector('.ev-text')?.textContent === %s)`,
		js(sel), js(text))
}

// js quotes a Go string as a JavaScript string literal.
func js(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}
