package inbox

import "github.com/prometheus/client_golang/prometheus"

// metrics are labelled by close reason only (the names in closecodes.go,
// a small fixed set), never by rep or customer.
type metrics struct {
	closes *prometheus.CounterVec
}

func (h *Hub) registerMetrics(reg prometheus.Registerer) error {
	m := &metrics{closes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "omnigate", Subsystem: "inbox", Name: "closes_total",
		Help: "Rep sockets closed by the server, by reason (slow, shutdown, unauthorized, ...).",
	}, []string{"reason"})}
	cs := []prometheus.Collector{
		m.closes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "omnigate", Subsystem: "inbox", Name: "connections",
			Help: "Authenticated rep sockets open on this node.",
		}, func() float64 { return float64(h.Connections()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "omnigate", Subsystem: "inbox", Name: "reps_online",
			Help: "Reps with at least one inbox socket open on this node.",
		}, func() float64 { return float64(len(h.Online())) }),
	}
	for _, sup := range []bool{false, true} {
		role := map[bool]string{false: "rep", true: "supervisor"}[sup]
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "omnigate", Subsystem: "inbox", Name: "queue_depth_max",
			Help:        "The most frames ever waiting at once for one socket on this node, by role (rep; supervisor counts admins): MessageBufferSize closes it as slow.",
			ConstLabels: prometheus.Labels{"role": role},
		}, func() float64 { return float64(h.MaxQueueDepth(sup)) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	h.metrics = m
	return nil
}

func (h *Hub) countClose(code int) {
	if h.metrics != nil {
		h.metrics.closes.WithLabelValues(CloseName(code)).Inc()
	}
}
