package api

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/sessions/redact"
)

// phoneLookups guards exact phone lookups (GET /v1/customers?phone=). A
// rep sees numbers masked, but a lookup that finds a customer confirms the
// full number behind the mask, and a script can try many numbers a
// second. So reps may not look numbers up unless Config.RepPhoneLookup
// says so, and then only at RepPhoneLookupsPerMinute each; every lookup
// by a person is logged (with the number masked) and every one counted.
//
// The limit is per node: a rep spreading lookups over n nodes gets n
// times the limit, still far from enumerating numbers.
type phoneLookups struct {
	allowReps bool
	interval  time.Duration // between two lookups of one rep, sustained
	burst     time.Duration // how far ahead of now a rep's schedule may run
	now       func() time.Time
	log       *slog.Logger
	count     *prometheus.CounterVec

	mu   sync.Mutex
	next map[string]time.Time // by rep id: when the rep's next lookup is due (GCRA)
}

func newPhoneLookups(cfg Config, o Options) (*phoneLookups, error) {
	perMinute := cfg.RepPhoneLookupsPerMinute
	if perMinute == 0 {
		perMinute = 10
	}
	l := &phoneLookups{allowReps: cfg.RepPhoneLookup, interval: time.Minute / time.Duration(perMinute),
		now: o.Now, log: o.Logger, next: map[string]time.Time{},
		count: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnigate", Subsystem: "api", Name: "phone_lookups_total",
			Help: "Exact phone lookups (GET /v1/customers?phone=) by role and result: found, not_found, forbidden, rate_limited.",
		}, []string{"role", "result"}),
	}
	l.burst = l.interval * time.Duration(perMinute-1)
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics != nil {
		if err := o.Metrics.Register(l.count); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// admit says whether p may look number up now, and records a refusal.
func (l *phoneLookups) admit(ctx context.Context, p auth.Principal, number string) error {
	if p.Role != auth.RoleRep {
		return nil
	}
	if !l.allowReps {
		l.refused(ctx, p, number, CodeForbidden)
		return errorf(CodeForbidden, "looking customers up by exact phone number is for supervisors; search by name or email")
	}
	if !l.take(p.ID) {
		l.refused(ctx, p, number, CodeRateLimited)
		return errorf(CodeRateLimited, "too many phone lookups; wait %v between them", l.interval)
	}
	return nil
}

// take spends one of the rep's lookups, if one is left: the generic cell
// rate algorithm, which needs one time per rep rather than a queue.
func (l *phoneLookups) take(rep string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	next := l.next[rep]
	if next.Before(now) {
		next = now
	}
	if next.Sub(now) > l.burst {
		return false
	}
	l.next[rep] = next.Add(l.interval)
	return true
}

func (l *phoneLookups) refused(ctx context.Context, p auth.Principal, number string, code Code) {
	l.count.WithLabelValues(string(p.Role), string(code)).Inc()
	l.log.LogAttrs(ctx, slog.LevelInfo, "api: phone lookup refused", slog.String("role", string(p.Role)),
		slog.String("rep", p.ID), slog.String("number", redact.Phone(number)), slog.String("reason", string(code)))
}

// done records a lookup that ran and found results customers.
func (l *phoneLookups) done(ctx context.Context, p auth.Principal, number string, results int) {
	result := "found"
	if results == 0 {
		result = "not_found"
	}
	l.count.WithLabelValues(string(p.Role), result).Inc()
	if p.IsRep() {
		l.log.LogAttrs(ctx, slog.LevelInfo, "api: phone lookup", slog.String("role", string(p.Role)),
			slog.String("rep", p.ID), slog.String("number", redact.Phone(number)), slog.Int("results", results))
	}
}
