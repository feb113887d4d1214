package kpi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/kpi"
	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/router/routing"
	"github.com/omnigate/omnigate/sessions"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	adminToken = "kpi-admin-token-0123456789"
	aliceToken = "kpi-alice-token-0123456789"
	carolToken = "kpi-carol-token-0123456789"
	crmToken   = "kpi-crm-token-0123456789ab"
)

// hotline is a queue whose name holds a phone number, so the tests see
// what a rep's CSV export does with one.
const hotline = "+8613800138000"

// server serves the report routes over an engine that counted one chat
// answered by alice and one by bob, in the hotline queue.
func server(t testing.TB, cfg kpi.Config) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	day := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	feed := sessions.NewMemoryStore()
	t.Cleanup(func() { _ = feed.Close() })
	rc := router.Config{Queues: []router.QueueConfig{{Name: hotline, Channels: []string{"webchat"}}}}
	e, err := kpi.New(cfg, kpi.Options{Store: kpi.NewMemoryStore(), Feed: feed, Router: rc,
		Now: func() time.Time { return day.Add(time.Hour) }})
	must(t, err)
	must(t, e.Start())
	t.Cleanup(e.Close)
	for i, rep := range []string{"alice", "bob"} {
		c, _, err := feed.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "demo", Value: rep}, sessions.Customer{})
		must(t, err)
		cv, _, _, err := feed.Intake(ctx, "", sessions.Event{CustomerID: c.ID, Kind: sessions.KindMessageIn, Channel: "webchat",
			Author: "customer", Time: day, Payload: json.RawMessage(`{"text":"hi"}`)})
		must(t, err)
		d, _ := json.Marshal(router.Decision{Kind: router.KindAssign, Queue: hotline, RepID: rep, WaitedMS: int64(i) * 5000})
		to := rep
		_, ev, err := feed.UpdateConversation(ctx, cv.ID, sessions.ConversationUpdate{Assignee: &to, Event: sessions.Event{
			Kind: sessions.KindAssignment, Author: sessions.AuthorRouter, Payload: d, Time: day.Add(time.Duration(i) * 5 * time.Second)}})
		must(t, err)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		must(t, e.WaitHandled(wctx, c.ID, ev.Seq))
		cancel()
	}
	srv, err := api.New(api.Config{}, api.Options{Store: feed, Routes: e.Routes(), Auth: auth.New(auth.Config{
		AdminKeys:      []auth.Key{{Name: "ops", Key: adminToken}},
		IntegratorKeys: []auth.Key{{Name: "crm", Key: crmToken}},
		Reps: []auth.Rep{{ID: "alice", Role: auth.RoleRep, Token: aliceToken},
			{ID: "carol", Role: auth.RoleSupervisor, Token: carolToken}},
	})})
	must(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs
}

func get(t *testing.T, hs *httptest.Server, token, path, accept string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", hs.URL+path, nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReportAPI: bad input is 400 with the catalogue's error; roles:
// a rep reads their own rows only, and the team's only when
// reports.rep_team_view allows; CSV is masked for reps alone.
func TestReportAPI(t *testing.T) {
	t.Parallel()
	hs := server(t, kpi.Config{})
	const base = "/v1/reports/kpis?from=2026-12-03T09:00:00Z&to=2026-12-03T10:00:00Z"
	for _, tt := range []struct {
		name, token, path string
		want              int
	}{
		{"bad interval", carolToken, base + "&interval=week", 400},
		{"from after to", carolToken, "/v1/reports/kpis?from=2026-12-03T10:00:00Z&to=2026-12-03T09:00:00Z", 400},
		{"from equals to", carolToken, "/v1/reports/kpis?from=2026-12-03T10:00:00Z&to=2026-12-03T10:00:00Z", 400},
		{"from not a time", carolToken, "/v1/reports/kpis?from=yesterday", 400},
		{"bad by", carolToken, base + "&by=site", 400},
		{"unknown parameter", carolToken, base + "&color=red", 400},
		{"bad format", carolToken, base + "&format=xml", 400},
		{"too many rows", carolToken, "/v1/reports/kpis?interval=15m&from=2000-01-01T00:00:00Z&to=2026-12-03T10:00:00Z", 400},
		{"integrator", crmToken, base, 403},
		{"no token", "", base, 401},
		{"rep, the team", aliceToken, base + "&by=queue", 403},
		{"rep, all", aliceToken, base, 403},
		{"rep, own", aliceToken, base + "&by=rep", 200},
		{"supervisor", carolToken, base + "&by=rep", 200},
		{"admin", adminToken, base + "&by=channel&interval=day", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, hs, tt.token, tt.path, "")
			if code != tt.want {
				t.Fatalf("%d %s, want %d", code, body, tt.want)
			}
			if code == 400 && !strings.Contains(body, `"code":"invalid"`) && !strings.Contains(body, `"code":"`) {
				t.Errorf("400 without the catalogue's error: %s", body)
			}
		})
	}

	var rep struct{ Rows []kpi.Row }
	_, body := get(t, hs, aliceToken, base+"&by=rep", "")
	must(t, json.Unmarshal([]byte(body), &rep))
	if len(rep.Rows) != 1 || rep.Rows[0].Key != "alice" || rep.Rows[0].Answered != 1 {
		t.Fatalf("alice sees %s, want her own row only", body)
	}
	_, body = get(t, hs, carolToken, base+"&by=rep", "")
	must(t, json.Unmarshal([]byte(body), &rep))
	if len(rep.Rows) != 2 {
		t.Fatalf("the supervisor sees %s, want alice's and bob's rows", body)
	}

	// CSV: the supervisor sees the queue's name; with the team view a
	// rep sees it masked.
	code, csv := get(t, hs, carolToken, base+"&by=queue", "text/csv")
	if code != 200 || !strings.HasPrefix(csv, "by,start,end,key,offered,answered") || !strings.Contains(csv, hotline) {
		t.Fatalf("supervisor's CSV: %d\n%s", code, csv)
	}
	if lines := strings.Split(strings.TrimSpace(csv), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "queue,2026-12-03T09:00:00Z,2026-12-03T10:00:00Z,"+hotline+",2,2,") {
		t.Fatalf("supervisor's CSV rows:\n%s", csv)
	}
	team := server(t, kpi.Config{RepTeamView: true})
	code, csv = get(t, team, aliceToken, base+"&by=queue&format=csv", "")
	if code != 200 || strings.Contains(csv, "13800138000") || !strings.Contains(csv, "queue,2026-12-03T09:00:00Z") {
		t.Fatalf("rep's CSV with the team view: %d\n%s", code, csv)
	}
	if code, _ := get(t, team, aliceToken, base+"&by=all", ""); code != 200 {
		t.Fatalf("rep with the team view, all: %d", code)
	}
}

// FuzzReportQuery: whatever the query string, the report route answers
// 200, 400 or 403 (never a 500 or a panic) and changes nothing.
func FuzzReportQuery(f *testing.F) {
	for _, s := range []string{"", "interval=15m&by=rep", "interval=day&from=2026-12-03T00:00:00Z&to=2026-12-04T00:00:00Z",
		"from=2026-12-03T10:00:00Z&to=2026-12-03T09:00:00Z", "format=csv&by=queue", "interval=%zz", "by=all&by=rep", "to=9999-12-31T23:59:59Z"} {
		f.Add(s)
	}
	hs := server(f, kpi.Config{RepTeamView: true})
	f.Fuzz(func(t *testing.T, q string) {
		for _, token := range []string{carolToken, aliceToken} {
			code, body := get(t, hs, token, "/v1/reports/kpis?"+q, "")
			if code != 200 && code != 400 && code != 403 {
				t.Fatalf("?%s: %d %s", q, code, body)
			}
		}
	})
}

// TestGauges: the live view is served as omnigate_kpi_* gauges.
func TestGauges(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	feed := sessions.NewMemoryStore()
	t.Cleanup(func() { _ = feed.Close() })
	day := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	e, err := kpi.New(kpi.Config{}, kpi.Options{Store: kpi.NewMemoryStore(), Feed: feed, Metrics: reg,
		Router: dayRouter, Now: func() time.Time { return day.Add(42 * time.Second) }})
	must(t, err)
	must(t, e.Start())
	t.Cleanup(e.Close)
	ctx := context.Background()
	c, _, err := feed.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "demo", Value: "v"}, sessions.Customer{})
	must(t, err)
	_, ev, _, err := feed.Intake(ctx, "", sessions.Event{CustomerID: c.ID, Kind: sessions.KindMessageIn, Channel: "webchat",
		Author: "customer", Time: day, Payload: json.RawMessage(`{"text":"hi"}`)})
	must(t, err)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	must(t, e.WaitHandled(wctx, c.ID, ev.Seq))
	e.RepState(routing.RepState{Rep: "alice", Presence: router.PresenceBreak, Reason: "lunch", Since: day})
	mfs, err := reg.Gather()
	must(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetValue()
			}
			got[name] = m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{"omnigate_kpi_waiting,chat": 1, "omnigate_kpi_longest_wait_seconds,chat": 42,
		"omnigate_kpi_reps,break": 1} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], want, got)
		}
	}
}
