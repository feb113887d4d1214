package gateway

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// limitListener caps the connections open at once (config
// http.max_connections). One past the cap is closed as soon as it is
// accepted: refused, not queued, because slots held by WebSockets may not
// free for hours, so a queued client could wait without bound while a
// refused one fails at once and can retry or go to another node.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	open    prometheus.Gauge
	refused prometheus.Counter
}

func newLimitListener(ln net.Listener, max int, reg prometheus.Registerer) (*limitListener, error) {
	l := &limitListener{
		Listener: ln,
		slots:    make(chan struct{}, max),
		open: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "omnigate", Subsystem: "http",
			Name: "connections_open", Help: "HTTP connections open now, WebSockets included."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "omnigate", Subsystem: "http",
			Name: "connections_refused_total", Help: "Connections closed unanswered because http.max_connections were open."}),
	}
	for _, c := range []prometheus.Collector{l.open, l.refused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			l.open.Inc()
			return &limitedConn{Conn: c, l: l}, nil
		default:
			l.refused.Inc()
			if tc, ok := c.(*net.TCPConn); ok {
				// A reset, not a FIN: the client learns at once, and no
				// TIME_WAIT is left here per refusal.
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
		}
	}
}

// limitedConn gives its slot back when closed, by the server or, for a
// hijacked WebSocket, by its handler.
type limitedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		<-c.l.slots
		c.l.open.Dec()
	})
	return err
}

// CloseWrite lets the server half-close before closing, as it does on a
// bare *net.TCPConn, so a client reads the last answer before the close.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// bodyDeadline gives a request's body d to arrive (config
// http.body_timeout), counted from when the handler starts, just after
// the headers are read. A read past it fails (package api answers 408) and
// the server closes the connection. Requests without a body are left
// alone: WebSocket upgrades among them, whose connections are hijacked
// and would keep the deadline. Once the body has been read to its end the
// deadline is lifted, because net/http then watches the connection for
// the client going away, and a deadline passing during a long handler
// would look like that and cancel the request's context.
func bodyDeadline(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline when the body ends.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
