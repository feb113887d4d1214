package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are labelled by route pattern and status class only: both small
// fixed sets. Never a path, an id or a query.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "omnigate", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by route pattern and status class.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "omnigate", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func metricsHandler(reg *prometheus.Registry) http.HandlerFunc {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}).ServeHTTP
}

// instrument names the request (X-Request-Id), counts and times requests
// to one route, and turns a panic into a logged 500 rather than a dropped
// connection.
func (s *Server) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r = withRequestID(w, r)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.LogAttrs(r.Context(), slog.LevelError, "api handler panicked",
					slog.String("route", route), slog.String("request_id", requestID(r.Context())), slog.Any("panic", v))
				if sw.status == 0 {
					s.writeError(sw, r, errorf(CodeInternal, "internal error"))
				}
			}
			if s.metrics != nil {
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				s.metrics.requests.WithLabelValues(route, strconv.Itoa(status/100)+"xx").Inc()
				s.metrics.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
			}
		}()
		h(sw, r)
	}
}

// statusWriter remembers the status; Unwrap lets http.ResponseController
// reach Flush and Hijack on the real writer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
