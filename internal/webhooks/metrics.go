package webhooks

import "github.com/prometheus/client_golang/prometheus"

// metrics use small fixed label sets only: never an endpoint or customer.
type metrics struct {
	eventsIn *prometheus.CounterVec
	enqueued prometheus.Counter
	attempts *prometheus.CounterVec
	disabled prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		eventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnigate", Subsystem: "webhooks", Name: "events_in_total",
			Help: "Integrator events posted to /v1/events, by result (appended, duplicate, refused).",
		}, []string{"result"}),
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "omnigate", Subsystem: "webhooks", Name: "deliveries_enqueued_total",
			Help: "Deliveries written to the outbox.",
		}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnigate", Subsystem: "webhooks", Name: "delivery_attempts_total",
			Help: "Delivery attempts by result (delivered, failed: will retry, dead: dead-lettered).",
		}, []string{"result"}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "omnigate", Subsystem: "webhooks", Name: "endpoints_disabled_total",
			Help: "Endpoints disabled after failing continuously. Alert on any increase.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.eventsIn, m.enqueued, m.attempts, m.disabled} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
