package api_test

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/internal/auth"
)

// lookupServer is a server over f's store with cfg and a clock the test
// moves. Requests are served in the test's goroutine (ServeHTTP), so the
// clock and the log need no lock.
func lookupServer(t *testing.T, f *fixture, cfg api.Config) (srv *api.Server, reg *prometheus.Registry, logs *bytes.Buffer, advance func(time.Duration)) {
	t.Helper()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	reg, logs = prometheus.NewRegistry(), &bytes.Buffer{}
	srv, err := api.New(cfg, api.Options{Store: f.store, Auth: auth.New(authConfig), Metrics: reg,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Now:    func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return srv, reg, logs, func(d time.Duration) { now = now.Add(d) }
}

func lookup(t *testing.T, srv *api.Server, token string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", "/v1/customers?phone=%2B8613812345678", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestPhoneLookupIsNotForReps: by default an exact phone lookup, which
// confirms the number behind a mask, is for supervisors, admins and
// integrators only.
func TestPhoneLookupIsNotForReps(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	srv, _, _, _ := lookupServer(t, f, api.Config{})
	for _, tt := range []struct {
		token string
		want  int
	}{{aliceToken, 403}, {carolToken, 200}, {adminToken, 200}, {integratorToken, 200}} {
		status, body := lookup(t, srv, tt.token)
		if status != tt.want {
			t.Errorf("lookup with %s = %d %s, want %d", tt.token[:5], status, body, tt.want)
		}
		if status == 403 && !strings.Contains(body, `"forbidden"`) {
			t.Errorf("403 body %s", body)
		}
	}
	// Other searches stay open to reps.
	if r := f.do("GET", "/v1/customers?name=wang", aliceToken, ""); r.status != 200 {
		t.Errorf("name search as rep = %d", r.status)
	}
}

// TestPhoneLookupRateLimitedForReps: when the configuration lets reps look
// numbers up, each rep gets 10 a minute; the 11th is 429 rate_limited
// until the clock moves on. Every rep lookup is audited without the
// number, and counted. Supervisors see numbers in full anyway, so they are
// not limited.
func TestPhoneLookupRateLimitedForReps(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	srv, reg, logs, advance := lookupServer(t, f, api.Config{RepPhoneLookup: true})
	for i := range 10 {
		if status, body := lookup(t, srv, aliceToken); status != 200 || !strings.Contains(body, f.cust.ID) {
			t.Fatalf("lookup %d = %d %s", i+1, status, body)
		}
	}
	status, body := lookup(t, srv, aliceToken)
	if status != 429 || !strings.Contains(body, `"rate_limited"`) {
		t.Fatalf("11th lookup = %d %s, want 429 rate_limited", status, body)
	}
	if status, _ := lookup(t, srv, bobToken); status != 200 {
		t.Errorf("bob's first lookup = %d: the limit is per rep", status)
	}
	for i := range 50 {
		if status, _ := lookup(t, srv, carolToken); status != 200 {
			t.Fatalf("supervisor lookup %d = %d", i+1, status)
		}
	}
	advance(5 * time.Second)
	if status, _ := lookup(t, srv, aliceToken); status != 429 {
		t.Errorf("after 5s = %d, want still 429 (one lookup every 6s)", status)
	}
	advance(time.Second)
	if status, _ := lookup(t, srv, aliceToken); status != 200 {
		t.Errorf("after 6s = %d, want 200", status)
	}
	advance(time.Minute)
	for i := range 10 {
		if status, _ := lookup(t, srv, aliceToken); status != 200 {
			t.Fatalf("a minute later, lookup %d = %d", i+1, status)
		}
	}

	out := logs.String()
	if strings.Contains(out, "13812345678") {
		t.Errorf("the audit log holds the number:\n%s", out)
	}
	if n := strings.Count(out, `msg="api: phone lookup" role=rep rep=alice number=+86*********78 results=1`); n != 21 {
		t.Errorf("%d audit lines for alice's 21 lookups that ran:\n%s", n, out)
	}
	if n := strings.Count(out, `msg="api: phone lookup refused" role=rep rep=alice number=+86*********78 reason=rate_limited`); n != 2 {
		t.Errorf("%d audit lines for alice's 2 refused lookups:\n%s", n, out)
	}
	for _, tt := range []struct {
		role, result string
		want         float64
	}{{"rep", "found", 22}, {"rep", "rate_limited", 2}, {"supervisor", "found", 50}} {
		got := counter(t, reg, "omnigate_api_phone_lookups_total", map[string]string{"role": tt.role, "result": tt.result})
		if got != tt.want {
			t.Errorf("omnigate_api_phone_lookups_total{role=%q,result=%q} = %v, want %v", tt.role, tt.result, got, tt.want)
		}
	}
}

// counter is the value of the counter with exactly these labels; 0 when
// there is none.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestConfigValidateLookups(t *testing.T) {
	t.Parallel()
	if err := (api.Config{RepPhoneLookupsPerMinute: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "rep_phone_lookups_per_minute") {
		t.Errorf("Validate = %v", err)
	}
}
