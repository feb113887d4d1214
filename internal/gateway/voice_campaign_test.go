package gateway_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer/sip/sipptest"
)

// A 20-number campaign through the SIP trunk: SIPp is the trunk and
// answers by the number's last digit (trunk_by_number.xml), four SIPp
// phones are the reps, auto-answering. Every number ends with the
// outcome its digit asks for, on its customer's timeline, and the retry
// rules are applied: busy tried again after 1m, unavailable after 2h,
// the others never.
func TestVoiceCampaignThroughSIPTrunk(t *testing.T) {
	t.Parallel()
	const nReps = 4
	trunk := sipptest.Start(t, "trunk_by_number", "-m", "100", "-timeout", "120s")
	var authReps, routed strings.Builder
	var repIDs []string
	for i := 1; i <= nReps; i++ {
		phone := sipptest.Start(t, "rep_answer", "-m", "100", "-timeout", "120s")
		id := fmt.Sprintf("rep%02d", i)
		repIDs = append(repIDs, id)
		fmt.Fprintf(&authReps, "    - {id: %s, token: test-%s-token-0123456789}\n", id, id)
		fmt.Fprintf(&routed, "    - {id: %s, sip_uri: \"sip:%s@%s\"}\n", id, id, phone.Addr)
	}
	y := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 5s
auth:
  admin_keys: [{name: test, key: %s}]
  reps:
    - {id: carol, role: supervisor, token: %s}
%srouting:
  reps:
%scontact_policy:
  purposes:
    sales:
      quiet_hours: {allowed: [%s]}
      open_work: {action: ignore}
voice:
  listen: 127.0.0.1:0
  trunks:
    carrier: {proxy: "%s", from_user: omnigate, calls_per_second: 50, max_calls: 50}
dialer:
  trunk: sip:carrier
`, t.TempDir(), adminKey, carolToken, authReps.String(), routed.String(), salesHours(time.Now()), trunk.Addr)
	g, _ := runGateway(t, parseConfig(t, y, nil))
	base := g.BaseURL()

	// The outcome each last digit asks of the trunk.
	want := map[byte]string{'0': "answered", '1': "answered", '2': "answered", '3': "declined", '4': "busy",
		'5': "unavailable", '6': "failed", '7': "no_answer", '8': "no_answer", '9': "no_answer"}
	digits := "01201234564564567890" // 20 numbers: 7 answered, 2 declined, 3 busy, 3 unavailable, 2 failed, 3 no answer
	var csv []string
	for i := range len(digits) {
		csv = append(csv, fmt.Sprintf("+861390000%03d%c,Customer %d", i, digits[i], i))
	}
	spec := map[string]any{"id": "sipcamp", "purpose": "sales", "caller_id": "+8657112345678", "ring_timeout": "15s",
		"attempts": 2, "reps": repIDs, "retry": map[string]string{"busy": "1m", "no_answer": "never", "unavailable": "2h", "failed": "never"},
		"audience": map[string]any{"csv": "phone,name\n" + strings.Join(csv, "\n")}}
	call(t, base, "POST", "/v1/campaigns", carolToken, asJSON(spec), 201, nil)
	for _, id := range repIDs {
		setPresence(t, base, id, adminKey, "available")
	}
	started := time.Now()
	call(t, base, "POST", "/v1/campaigns/sipcamp/start", carolToken, "", 200, nil)

	type outcome struct {
		Step    string    `json:"step"`
		Outcome string    `json:"outcome"`
		SIPCode int       `json:"sip_code"`
		TalkMS  int64     `json:"talk_ms"`
		Rep     string    `json:"rep"`
		NextTry time.Time `json:"next_try"`
	}
	got := map[int]outcome{}
	deadline := time.Now().Add(90 * time.Second)
	for len(got) < len(digits) {
		if time.Now().After(deadline) {
			t.Fatalf("after 90s %d of %d numbers have an outcome: %+v", len(got), len(digits), got)
		}
		time.Sleep(200 * time.Millisecond)
		for i := range len(digits) {
			if _, ok := got[i]; ok {
				continue
			}
			cust := customerByPhone(t, base, strings.Split(csv[i], ",")[0])
			if cust == "" {
				continue
			}
			for _, ev := range timeline(t, base, cust) {
				var o outcome
				if ev.Kind == "call" && json.Unmarshal(ev.Payload, &o) == nil && o.Step == "outcome" {
					got[i] = o
				}
			}
		}
	}
	codes := map[string]int{"answered": 200, "declined": 603, "busy": 486, "unavailable": 480, "failed": 500, "no_answer": 487}
	for i, o := range got {
		w := want[digits[i]]
		if o.Outcome != w || o.SIPCode != codes[w] {
			t.Errorf("number %d (digit %c): %s %d, want %s %d", i, digits[i], o.Outcome, o.SIPCode, w, codes[w])
		}
		if w == "answered" && (o.Rep == "" || o.TalkMS < 500) {
			t.Errorf("number %d answered: rep %q talk %dms, want a rep and about 1 s of talk", i, o.Rep, o.TalkMS)
		}
		retry := map[string]time.Duration{"busy": time.Minute, "unavailable": 2 * time.Hour}[w]
		switch {
		case retry == 0 && !o.NextTry.IsZero():
			t.Errorf("number %d (%s) is tried again at %v; its rule is never", i, w, o.NextTry)
		case retry != 0 && (o.NextTry.Before(started.Add(retry)) || o.NextTry.After(time.Now().Add(retry))):
			t.Errorf("number %d (%s) is tried again at %v, want %v after its call", i, w, o.NextTry, retry)
		}
	}
}
