package sip

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are labelled by small fixed sets only (direction, the dialer's
// outcomes, SIP codes the screening sends): never a number or a call id.
type metrics struct {
	ends    *prometheus.CounterVec
	refused *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		ends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnigate", Subsystem: "sip", Name: "calls_ended_total",
			Help: "Calls ended, by direction (outbound, inbound) and outcome (answered, busy, declined, no_answer, unavailable, abandoned, failed).",
		}, []string{"direction", "outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnigate", Subsystem: "sip", Name: "invites_refused_total",
			Help: "INVITEs refused before becoming a call, by response code (403 unknown source, 503 over the trunk's limits, 400 malformed, 488 no usable audio, 482 a duplicate, 480 no inbound routing).",
		}, []string{"code"}),
	}
}

// RegisterMetrics adds the UA's metrics to reg: calls ended, INVITEs
// refused, and omnigate_sip_calls, the calls up now.
func (u *UA) RegisterMetrics(reg prometheus.Registerer) error {
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "omnigate", Subsystem: "sip", Name: "calls",
		Help: "Calls up now (ringing, answered or bridged), both directions.",
	}, func() float64 { return float64(u.Stats().Calls) })
	for _, c := range []prometheus.Collector{u.metrics.ends, u.metrics.refused, up} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) refuse(code int) { m.refused.WithLabelValues(strconv.Itoa(code)).Inc() }
