package dialer

import "github.com/prometheus/client_golang/prometheus"

// metrics are the dialer's Prometheus metrics (Options.Metrics); nil
// without a registry. Labels come from small fixed sets: outcomes and
// the policy's three decisions, never a campaign or customer id.
type metrics struct {
	outcomes  *prometheus.CounterVec
	decisions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, s *Service) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "omnigate", Subsystem: "dialer",
			Name: "attempts_total", Help: "Call attempts this node concluded, by outcome (answered, abandoned, no_answer, interrupted, ...)."},
			[]string{"outcome"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "omnigate", Subsystem: "dialer",
			Name: "policy_decisions_total", Help: "Contact policy answers at dial time, by decision (allow, deny, defer)."},
			[]string{"decision"}),
	}
	lines := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "omnigate", Subsystem: "dialer",
		Name: "lines", Help: "Calls in progress that this node placed and follows."},
		func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return float64(len(s.calls))
		})
	for _, c := range []prometheus.Collector{m.outcomes, m.decisions, lines} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) outcome(o Outcome) {
	if m != nil {
		m.outcomes.WithLabelValues(string(o)).Inc()
	}
}

func (m *metrics) decision(d string) {
	if m != nil {
		m.decisions.WithLabelValues(d).Inc()
	}
}
