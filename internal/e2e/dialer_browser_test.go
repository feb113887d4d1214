package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserCampaignAndPreviewCard drives the dialer's inbox pages in a
// real headless Chromium against the gateway binary on the simulated
// trunk: a supervisor creates a preview campaign from a CSV on the
// Campaigns page (a bad line refused, then fixed) and starts it; the rep
// gets the card (name, masked number), calls, marks the outcome and gets
// the next card; the supervisor's page shows the call in the progress.
func TestBrowserCampaignAndPreviewCard(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway and drives a browser")
	}
	chromium := findChromium(t)
	gw := newGatewayWith(t, "    - {id: carol, name: Carol, role: supervisor, token: "+carolToken+"}\n", `
routing:
  reps: [{id: alice, skills: {sales: 1}}]
contact_policy:
  purposes:
    sales: {quiet_hours: {allowed: "00:00-24:00"}, open_work: {action: ignore}}
dialer:
  trunk: sim
  sim:
    rules: [{digits: "0123456789", outcome: answered, ring: 200ms, talk: 300ms}]
`)
	gw.start()
	browser := newBrowser(t, chromium)
	sup := newPage(t, browser, "supervisor", 1440, 900)
	rep := newPage(t, browser, "rep", 1280, 800)

	sup.do("open the inbox", chromedp.Navigate(gw.base+"/inbox"))
	sup.do("sign in as carol",
		chromedp.SendKeys(chromedp.ID("signin-token"), carolToken),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("campaigns-toggle")))
	sup.do("open a new campaign's form",
		chromedp.Click(chromedp.ID("campaigns-toggle")),
		chromedp.Click(chromedp.ID("campaign-new")),
		chromedp.WaitVisible(chromedp.ID("cf-id")))
	fill := func(csv string) string {
		return `(() => {
			const set = (id, v) => { const e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event('change')); };
			set('cf-id', 'spring'); set('cf-name', 'Spring renewals'); set('cf-mode', 'preview'); set('cf-reps', 'alice');
			set('cf-trial', '0'); set('cf-callerid', '+8657112345678'); set('cf-source', 'csv'); set('cf-csv', ` + js(csv) + `);
			document.querySelector('.campaign-form button[type=submit]').click();
			return true;
		})()`
	}
	evalJS[bool](sup, "the form filled with a bad line", fill("phone,name\n+8613900000001,Wang Wei\nnot a number,X\n+8613900000002,Li Na\n"))
	sup.waitFor("the refusal naming line 3", `document.querySelector('.campaign-form .error').textContent.includes('csv line 3:')`)
	evalJS[bool](sup, "the form fixed", fill("phone,name\n+8613900000001,Wang Wei\n+8613900000002,Li Na\n"))
	sup.waitFor("the created campaign", `document.querySelector('#campaign-detail h3')?.textContent === 'Spring renewals' &&
		Array.from(document.querySelectorAll('#campaign-detail .actions button')).some(b => b.textContent === 'start')`)
	evalJS[bool](sup, "start", `(() => { Array.from(document.querySelectorAll('#campaign-detail .actions button')).find(b => b.textContent === 'start').click(); return true; })()`)
	sup.waitFor("the running campaign", `document.querySelector('#campaign-detail .fields dd')?.textContent === 'running'`)

	rep.do("open the inbox", chromedp.Navigate(gw.base+"/inbox"))
	rep.do("sign in as alice",
		chromedp.SendKeys(chromedp.ID("signin-token"), aliceToken),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#connection[data-state="online"]`)))
	rep.waitFor("the preview card", `document.querySelector('#dialer-card .dialer-who strong')?.textContent === 'Wang Wei'`)
	if number := evalJS[string](rep, "the card's number", `document.querySelector('#dialer-card .dialer-phone').textContent`); number == "" ||
		len(number) < 4 || number[len(number)-2:] != "01" || containsDigits(number, "13900000001") {
		t.Errorf("the card shows the number %q, want it masked with its last digits", number)
	}
	rep.screenshot("dialer-preview-card.png")
	evalJS[bool](rep, "call", `(() => { Array.from(document.querySelectorAll('#dialer-card button')).find(b => b.textContent === 'Call').click(); return true; })()`)
	rep.waitFor("the outcome form", `!!document.getElementById('dialer-outcome')`)
	// The outcome is taken once the call has ended; until then the form
	// says so and stays.
	rep.waitFor("the outcome saved", `(() => {
		const card = document.getElementById('dialer-card');
		if (card.querySelector('.dialer-who strong')?.textContent === 'Li Na') return true;
		const form = card.querySelector('form.dialer-outcome');
		if (form && !form.dataset.tried) { form.dataset.tried = '1'; document.getElementById('dialer-outcome').value = 'not_interested';
			form.requestSubmit(); setTimeout(() => { delete form.dataset.tried; }, 300); }
		return false;
	})()`)

	sup.waitFor("the call in the progress", `(() => {
		const dts = Array.from(document.querySelectorAll('#campaign-progress dt'));
		const dd = name => dts.find(d => d.textContent === name)?.nextElementSibling?.textContent;
		return dd('Dialed') === '1' && dd('Answered') === '1';
	})()`)
	sup.screenshot("dialer-campaigns.png")
}

// containsDigits reports whether s, its non-digits dropped, contains want.
func containsDigits(s, want string) bool {
	return strings.Contains(strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s), want)
}
