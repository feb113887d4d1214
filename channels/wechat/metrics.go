package wechat

import "github.com/prometheus/client_golang/prometheus"

// metrics are labelled by result only, a small fixed set: never an
// account's AppID, an OpenID or a customer id.
type metrics struct {
	callbacks *prometheus.CounterVec
	sends     *prometheus.CounterVec
	fetches   *prometheus.CounterVec
}

// Results counted.
const (
	resultStored    = "stored"    // a new message or event on the timeline
	resultDuplicate = "duplicate" // a retry of one already stored
	resultIgnored   = "ignored"   // an event this channel does not record
	resultRefused   = "refused"   // signature, freshness, replay, size or XML
	resultFailed    = "failed"    // the store failed; WeChat retries
	resultSent      = "sent"
	resultClosed    = "window_closed"
	resultUnsub     = "unsubscribed"
	resultTooMany   = "too_many"
	resultOK        = "ok"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnigate", Subsystem: "wechat", Name: "callbacks_total",
			Help: "WeChat message callbacks by result (stored, duplicate, ignored, refused, failed).",
		}, []string{"result"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnigate", Subsystem: "wechat", Name: "sends_total",
			Help: "Customer-service messages by result (sent, window_closed, unsubscribed, too_many, failed).",
		}, []string{"result"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnigate", Subsystem: "wechat", Name: "token_fetches_total",
			Help: "Access tokens fetched from WeChat by this node, by result (ok, failed). Across a cluster, about one per AppID per 2 hours.",
		}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.callbacks, m.sends, m.fetches} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
