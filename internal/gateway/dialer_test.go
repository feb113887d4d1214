package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/testredis"
)

// The dialer through the HTTP API of an in-process gateway on the
// simulated trunk: a campaign from CSV with a trial, the policy's
// refusals on the timeline, the rep's preview card, roles and bad input.

const (
	carolToken = "test-carol-token-0123456789" // a supervisor
	dialerCRM  = "test-crm-key-0123456789"
	dialerReps = 20
)

// dialerConfig is a gateway with a sim trunk whose calls end within a
// fraction of a second (last digit 0-6 answered, 7 busy, 8 machine, 9
// failed), dialerReps reps with skill sales (rep01...), alice and bob
// with skill care, carol a supervisor, and sales calls allowed from an
// hour before to two hours after now in China (every CSV number is
// +86), so a customer elsewhere is in quiet hours.
func dialerConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	var reps, attrs strings.Builder
	for i := 1; i <= dialerReps; i++ {
		fmt.Fprintf(&reps, "    - {id: rep%02d, token: test-rep%02d-token-0123456789}\n", i, i)
		fmt.Fprintf(&attrs, "    - {id: rep%02d, skills: {sales: 1}}\n", i)
	}
	return fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 5s
auth:
  admin_keys: [{name: test, key: %s}]
  integrator_keys: [{name: crm, key: %s}]
  reps:
    - {id: alice, token: %s}
    - {id: bob, token: %s}
    - {id: carol, role: supervisor, token: %s}
%srouting:
  reps:
    - {id: alice, skills: {care: 1}}
    - {id: bob, skills: {care: 1}}
%scontact_policy:
  purposes:
    sales:
      quiet_hours: {allowed: [%s]}
      open_work: {action: ignore}
dialer:
  trunk: sim
  dial_log: %s
  sim:
    rules:
      - {digits: "0123456", outcome: answered, ring: 50ms, talk: 150ms}
      - {digits: "7", outcome: busy, ring: 20ms}
      - {digits: "8", outcome: machine, ring: 20ms}
      - {digits: "9", outcome: failed}
%s`, dir, adminKey, dialerCRM, aliceToken, bobToken, carolToken, reps.String(), attrs.String(),
		salesHours(time.Now()), filepath.Join(dir, "dials.log"), extra)
}

// salesHours are windows from an hour before to two hours after now in
// Asia/Shanghai, split at midnight.
func salesHours(now time.Time) string {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	local := now.In(loc)
	m := local.Hour()*60 + local.Minute()
	from, to := m-60, m+120
	hm := func(x int) string { return fmt.Sprintf("%02d:%02d", x/60, x%60) }
	switch {
	case from < 0:
		return fmt.Sprintf(`"%s-24:00", "00:00-%s"`, hm(from+1440), hm(to))
	case to > 1440:
		return fmt.Sprintf(`"%s-24:00", "00:00-%s"`, hm(from), hm(to-1440))
	case to == 1440:
		return fmt.Sprintf(`"%s-24:00"`, hm(from))
	}
	return fmt.Sprintf(`"%s-%s"`, hm(from), hm(to))
}

// numbers are n CSV lines of +86 mobile numbers, from first on.
func numbers(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("+8613900%06d,Customer %d", first+i, first+i)
	}
	return out
}

// asJSON is v as a request body.
func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

type campaignView struct {
	Spec struct {
		ID string `json:"id"`
	} `json:"spec"`
	State     string `json:"state"`
	Audience  int    `json:"audience"`
	TrialSize int    `json:"trial_size"`
}

type progressView struct {
	State     string `json:"state"`
	Customers int    `json:"customers"`
	Remaining int    `json:"remaining"`
	Dialed    int    `json:"dialed"`
	Answered  int    `json:"answered"`
	Abandoned int    `json:"abandoned"`
	Skipped   int    `json:"skipped"`
}

// callEvent is a dialer event on a timeline (dialer.CallEvent).
type callEvent struct {
	Step    string `json:"step"`
	Attempt string `json:"attempt"`
	Outcome string `json:"outcome"`
	Policy  string `json:"policy"`
	Reasons []struct {
		Code string `json:"code"`
	} `json:"reasons"`
}

func callEvents(t *testing.T, base, customer string) []callEvent {
	t.Helper()
	var out []callEvent
	for _, ev := range timeline(t, base, customer) {
		if ev.Kind != "call" {
			continue
		}
		var c callEvent
		if err := json.Unmarshal(ev.Payload, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// customerByPhone is the id of the customer with the number, "" if none.
func customerByPhone(t *testing.T, base, phone string) string {
	t.Helper()
	var page struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	call(t, base, "GET", "/v1/customers?phone="+strings.ReplaceAll(phone, "+", "%2B"), adminKey, "", 200, &page)
	if len(page.Data) == 0 {
		return ""
	}
	return page.Data[0].ID
}

// waitCampaign polls the campaign's progress until ok, for up to 30 s.
func waitCampaign(t *testing.T, base, id, what string, ok func(progressView) bool) progressView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var p progressView
		call(t, base, "GET", "/v1/campaigns/"+id+"/progress", carolToken, "", 200, &p)
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign %s: timed out waiting for %s; progress %+v", id, what, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dialLog reads the sim trunk's log of attempts dialed, failing on an
// attempt dialed twice.
func dialLog(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	lines = lines[:len(lines)-1] // the last is empty, or cut short by a crash
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Errorf("attempt %s was dialed twice", l)
		}
		seen[l] = true
	}
	return lines
}

func availableReps(t *testing.T, base string) {
	t.Helper()
	for i := 1; i <= dialerReps; i++ {
		setPresence(t, base, fmt.Sprintf("rep%02d", i), adminKey, "available")
	}
}

func TestDialerTrialFlowThroughTheAPI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g, _ := runGateway(t, parseConfig(t, dialerConfig(t, dir, ""), nil))
	base := g.BaseURL()

	// A bad campaign: three bad CSV lines among 100, a ring timeout
	// under 15 s, an abandonment target over 3 %, an unknown skill. Every
	// problem is listed and nothing is created, not even customers.
	lines := numbers(0, 100)
	lines[6], lines[22], lines[57] = "not a number,X", "+86123,Short", "12345,No country"
	bad := map[string]any{"id": "spring", "purpose": "sales", "caller_id": "+8657112345678",
		"ring_timeout": "10s", "abandon_target": 0.05, "skills": map[string]int{"sales": 1, "klingon": 1},
		"trial": map[string]any{"sample": 0.04}, "audience": map[string]any{"csv": "phone,name\n" + strings.Join(lines, "\n")}}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	call(t, base, "POST", "/v1/campaigns", carolToken, asJSON(bad), 400, &e)
	for _, want := range []string{"csv line 8:", "csv line 24:", "csv line 59:", "ring_timeout 10s", "abandon_target 0.05", `"klingon"`} {
		if e.Error.Code != "invalid" || !strings.Contains(e.Error.Message, want) {
			t.Errorf("the 400 does not say %q: %+v", want, e.Error)
		}
	}
	if strings.Contains(e.Error.Message, "+86139") {
		t.Errorf("the 400 repeats a number: %s", e.Error.Message)
	}
	var list struct{ Data []campaignView }
	call(t, base, "GET", "/v1/campaigns", carolToken, "", 200, &list)
	if len(list.Data) != 0 || customerByPhone(t, base, "+8613900000000") != "" {
		t.Fatalf("a refused campaign left %d campaigns or its customers behind", len(list.Data))
	}

	// The good list: 100 numbers, a 4 % trial.
	good := bad
	good["ring_timeout"], good["abandon_target"], good["skills"] = "20s", 0.03, map[string]int{"sales": 1}
	good["attempts"] = 1
	good["audience"] = map[string]any{"csv": "phone,name\n" + strings.Join(numbers(0, 100), "\n")}
	var c campaignView
	call(t, base, "POST", "/v1/campaigns", carolToken, asJSON(good), 201, &c)
	if c.State != "created" || c.Audience != 100 || c.TrialSize != 4 {
		t.Fatalf("created campaign: %+v", c)
	}
	availableReps(t, base)
	call(t, base, "POST", "/v1/campaigns/spring/start", carolToken, "", 200, &c)
	if c.State != "trial" {
		t.Fatalf("started campaign is %s, want trial", c.State)
	}
	waitCampaign(t, base, "spring", "the trial to end", func(p progressView) bool { return p.State == "trial_done" })
	var trial struct {
		Sample, Concluded, Dialed, Answered int
		ConnectRate                         float64 `json:"connect_rate"`
		AverageTalk                         int64   `json:"average_talk_ns"`
	}
	call(t, base, "GET", "/v1/campaigns/spring/trial", carolToken, "", 200, &trial)
	if trial.Sample != 4 || trial.Concluded != 4 || trial.Dialed != 4 || len(dialLog(t, filepath.Join(dir, "dials.log"))) != 4 {
		t.Fatalf("trial report %+v, want 4 of 4 dialed and concluded", trial)
	}
	if trial.Answered == 0 || trial.ConnectRate <= 0 || trial.AverageTalk <= 0 {
		t.Fatalf("trial report %+v: want answered calls, a connect rate and talk time", trial)
	}
	// The reps who took the trial's calls mark them; the report counts
	// what they marked.
	marked := 0
	for i := 1; i <= dialerReps; i++ {
		token := fmt.Sprintf("test-rep%02d-token-0123456789", i)
		var p repPreview
		call(t, base, "GET", "/v1/dialer/preview", token, "", 200, &p)
		for _, a := range p.AwaitingOutcome {
			call(t, base, "POST", "/v1/dialer/attempts/"+a.AttemptID+"/outcome", token, `{"outcome":"interested"}`, 200, nil)
			marked++
		}
	}
	var report struct {
		RepOutcomes map[string]int `json:"rep_outcomes"`
	}
	call(t, base, "GET", "/v1/campaigns/spring/trial", carolToken, "", 200, &report)
	if marked != trial.Answered || report.RepOutcomes["interested"] != marked {
		t.Errorf("%d of %d answered trial calls marked, the report counts %v", marked, trial.Answered, report.RepOutcomes)
	}

	// Two customers not in the trial become ones the policy refuses: one
	// is on the do-not-contact list, one lives where it is the middle of
	// the night.
	var refused []string
	for i := 0; len(refused) < 2; i++ {
		id := customerByPhone(t, base, fmt.Sprintf("+8613900%06d", i))
		if len(callEvents(t, base, id)) == 0 {
			refused = append(refused, id)
		}
	}
	call(t, base, "POST", "/v1/suppressions", carolToken, `{"kind":"customer","value":"`+refused[0]+`","reason":"asked on the phone"}`, 201, nil)
	call(t, base, "PATCH", "/v1/customers/"+refused[1], carolToken, `{"time_zone":"America/New_York"}`, 200, nil)

	call(t, base, "POST", "/v1/campaigns/spring/approve", carolToken, "", 200, &c)
	p := waitCampaign(t, base, "spring", "the rest to be dialed", func(p progressView) bool { return p.Remaining == 1 && p.Dialed == 98 })
	if p.Skipped != 1 || p.State != "running" {
		t.Errorf("progress %+v: want the do-not-contact customer skipped and the deferred one remaining", p)
	}
	if dialed := dialLog(t, filepath.Join(dir, "dials.log")); len(dialed) != 98 {
		t.Errorf("the trunk dialed %d attempts, want 98", len(dialed))
	}
	for i, want := range []struct{ step, policy, reason string }{{"skipped", "deny", "do_not_contact"}, {"deferred", "defer", "quiet_hours"}} {
		evs := callEvents(t, base, refused[i])
		if len(evs) == 0 || evs[0].Step != want.step || evs[0].Policy != want.policy ||
			!slices.ContainsFunc(evs[0].Reasons, func(r struct {
				Code string `json:"code"`
			}) bool {
				return r.Code == want.reason
			}) {
			t.Errorf("customer %s: timeline %+v, want %s by the policy (%s)", refused[i], evs, want.step, want.reason)
		}
	}
}

// repCard is GET /v1/dialer/preview's answer.
type repPreview struct {
	Preview *struct {
		AttemptID  string `json:"attempt_id"`
		CustomerID string `json:"customer_id"`
		Name       string `json:"name"`
		Number     string `json:"number"`
	} `json:"preview"`
	AwaitingOutcome []struct {
		AttemptID string `json:"attempt_id"`
		Name      string `json:"name"`
	} `json:"awaiting_outcome"`
}

func TestDialerPreviewCardsAndRoles(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"bolt", "valkey"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			store := ""
			if kind == "valkey" {
				// The campaigns, attempts and leases in Valkey, as in a cluster.
				store = fmt.Sprintf("store: {kind: valkey, valkey: {addrs: [%s], key_prefix: dialgw%d}}\n",
					testredis.Addr(t), time.Now().UnixNano())
			}
			previewCardsAndRoles(t, dialerConfig(t, t.TempDir(), store))
		})
	}
}

func previewCardsAndRoles(t *testing.T, y string) {
	g, _ := runGateway(t, parseConfig(t, y, nil))
	base := g.BaseURL()
	spec := `{"id":"pre","mode":"preview","purpose":"sales","caller_id":"+8657112345678","reps":["alice"],
		"audience":{"csv":"+8613900000010,Wang Wei\n+8613900000020,Li Na\n+8613900000030,Zhang Min"}}`
	call(t, base, "POST", "/v1/campaigns", adminKey, spec, 201, nil)
	call(t, base, "POST", "/v1/campaigns/pre/start", carolToken, "", 200, nil)
	setPresence(t, base, "alice", aliceToken, "available")

	var card repPreview
	call(t, base, "GET", "/v1/dialer/preview", aliceToken, "", 200, &card)
	if card.Preview == nil || card.Preview.Name != "Wang Wei" || strings.ContainsAny(card.Preview.AttemptID, "0123456789.") {
		t.Fatalf("alice's card: %+v", card.Preview)
	}
	raw, _ := json.Marshal(card)
	if strings.Contains(string(raw), "13900000010") || !strings.Contains(card.Preview.Number, "10") {
		t.Errorf("a rep's card shows %s, want the number masked (its last digits kept)", raw)
	}
	var other repPreview
	call(t, base, "GET", "/v1/dialer/preview", bobToken, "", 200, &other)
	if other.Preview != nil {
		t.Errorf("bob, not in the campaign, got a card: %+v", other.Preview)
	}
	// Only the rep holding a card may act on it.
	call(t, base, "POST", "/v1/dialer/attempts/"+card.Preview.AttemptID+"/skip", bobToken, "", 409, nil)

	var a struct {
		State, Outcome, Policy string
		RepOutcome             string `json:"rep_outcome"`
	}
	call(t, base, "POST", "/v1/dialer/attempts/"+card.Preview.AttemptID+"/dial", aliceToken, "", 200, &a)
	if a.State != "dialing" || a.Policy != "allow" {
		t.Fatalf("dialed attempt: %+v", a)
	}
	waitFor(t, "the call to wait for alice's outcome", func() bool {
		var p repPreview
		call(t, base, "GET", "/v1/dialer/preview", aliceToken, "", 200, &p)
		return len(p.AwaitingOutcome) == 1 && p.AwaitingOutcome[0].AttemptID == card.Preview.AttemptID &&
			p.AwaitingOutcome[0].Name == "Wang Wei"
	})
	call(t, base, "POST", "/v1/dialer/attempts/"+card.Preview.AttemptID+"/outcome", aliceToken,
		`{"outcome":"interested","note":"call back with a quote"}`, 200, &a)
	if a.RepOutcome != "interested" || a.Outcome != "answered" {
		t.Errorf("marked attempt: %+v", a)
	}

	var next repPreview
	call(t, base, "GET", "/v1/dialer/preview", aliceToken, "", 200, &next)
	if next.Preview == nil || next.Preview.Name != "Li Na" || len(next.AwaitingOutcome) != 0 {
		t.Fatalf("alice's next card: %+v", next)
	}
	call(t, base, "POST", "/v1/dialer/attempts/"+next.Preview.AttemptID+"/skip", aliceToken, `{"reason":"owes a complaint reply"}`, 200, &a)
	evs := callEvents(t, base, next.Preview.CustomerID)
	if a.Outcome != "skipped" || len(evs) != 1 || evs[0].Step != "skipped" || len(evs[0].Reasons) != 1 || evs[0].Reasons[0].Code != "rep_skipped" {
		t.Errorf("skipped attempt %+v, timeline %+v", a, evs)
	}

	for _, tt := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/v1/campaigns", aliceToken, "", 403},
		{"POST", "/v1/campaigns", aliceToken, spec, 403},
		{"GET", "/v1/campaigns/pre/progress", dialerCRM, "", 403},
		{"GET", "/v1/dialer/preview", adminKey, "", 403},
		{"GET", "/v1/dialer/preview", dialerCRM, "", 403},
		{"GET", "/v1/campaigns/nope", carolToken, "", 404},
		{"POST", "/v1/campaigns/nope/start", carolToken, "", 404},
		{"POST", "/v1/campaigns/pre/approve", carolToken, "", 409},
		{"POST", "/v1/campaigns/pre/start", carolToken, "", 409},
		{"POST", "/v1/campaigns/pre/reject", carolToken, `{"reason":" "}`, 400},
		{"POST", "/v1/campaigns", carolToken, `{"id":"x","colour":"red"}`, 400},
		{"POST", "/v1/campaigns", carolToken, spec, 400}, // the id is taken
		{"POST", "/v1/dialer/attempts/nope/dial", aliceToken, "", 404},
		{"POST", "/v1/dialer/attempts/" + card.Preview.AttemptID + "/outcome", aliceToken, `{"outcome":""}`, 400},
	} {
		call(t, base, tt.method, tt.path, tt.token, tt.body, tt.want, nil)
	}
	var list struct{ Data []campaignView }
	call(t, base, "GET", "/v1/campaigns", carolToken, "", 200, &list)
	if len(list.Data) != 1 {
		t.Errorf("%d campaigns after the refused ones, want 1", len(list.Data))
	}

	// A segment: the customers of tier A with tag renewal, among those
	// with a conversation (the two the preview called or skipped).
	call(t, base, "PATCH", "/v1/customers/"+next.Preview.CustomerID, carolToken, `{"tier":"A","tags":["renewal"]}`, 200, nil)
	var seg campaignView
	call(t, base, "POST", "/v1/campaigns", carolToken, `{"id":"seg","purpose":"sales","caller_id":"+8657112345678",
		"reps":["alice"],"audience":{"segment":{"tiers":["A"],"tags":["renewal"]}}}`, 201, &seg)
	if seg.Audience != 1 {
		t.Errorf("segment campaign: %d customers, want 1", seg.Audience)
	}

	// The dialer's metrics are the gateway's.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `omnigate_dialer_attempts_total{outcome="answered"} 1`) {
		t.Error("/metrics lacks the dialer's answered attempt")
	}

	// A gateway without a dialer answers its routes 404.
	plain, _ := runGateway(t, testConfig(t, "bolt"))
	call(t, plain.BaseURL(), "GET", "/v1/campaigns", adminKey, "", 404, nil)
}

// TestDialerPredictiveCampaign runs a predictive campaign (package
// pacing's pacer, built from the campaign) to its end: every customer
// tried once, none dialed twice.
func TestDialerPredictiveCampaign(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g, _ := runGateway(t, parseConfig(t, dialerConfig(t, dir, ""), nil))
	base := g.BaseURL()
	spec := map[string]any{"id": "pred", "mode": "predictive", "purpose": "sales", "caller_id": "+8657112345678",
		"skills": map[string]int{"sales": 1}, "attempts": 1,
		"audience": map[string]any{"csv": strings.Join(numbers(0, 60), "\n")}}
	call(t, base, "POST", "/v1/campaigns", carolToken, asJSON(spec), 201, nil)
	availableReps(t, base)
	call(t, base, "POST", "/v1/campaigns/pred/start", carolToken, "", 200, nil)
	p := waitCampaign(t, base, "pred", "the campaign to finish", func(p progressView) bool { return p.State == "done" })
	if dialed := dialLog(t, filepath.Join(dir, "dials.log")); p.Remaining != 0 || p.Dialed != 60 || len(dialed) != 60 {
		t.Errorf("progress %+v, %d in the dial log; want all 60 dialed once", p, len(dialed))
	}
}
