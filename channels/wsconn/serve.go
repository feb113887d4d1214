package wsconn

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Serve runs serve(w', r) on a new goroutine, where w' is a ResponseWriter
// over the connection Serve has already hijacked from w, and returns at
// once. serve is expected to upgrade the connection (melody's
// HandleRequest): its upgrader calls w'.Hijack and owns the connection
// from then on. If serve answers with an ordinary HTTP response instead (a
// refused Origin, say), that response is written when serve returns and
// the connection is closed.
//
// Requests that are not WebSocket upgrades, and connections net/http
// cannot hand over (HTTP/2), are served in place with w, so their errors
// are answered exactly as before. r's context ends when Serve returns:
// serve must not depend on it.
func Serve(w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter, *http.Request)) {
	if !isUpgrade(r) {
		serve(w, r)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		serve(w, r)
		return
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		serve(w, r)
		return
	}
	d := &detached{conn: nc, brw: brw, header: http.Header{}}
	go d.run(r, serve)
}

// isUpgrade is the part of the handshake checked before taking the
// connection: a GET asking to upgrade to websocket. The rest (version, key,
// Origin) is the upgrader's, answered through detached.
func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && r.ProtoMajor == 1 &&
		headerHas(r.Header, "Connection", "upgrade") && headerHas(r.Header, "Upgrade", "websocket")
}

func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// detached is the ResponseWriter serve sees: Hijack hands over the
// connection once; anything written before that is a plain HTTP/1.1
// response on it.
type detached struct {
	conn     net.Conn
	brw      *bufio.ReadWriter
	header   http.Header
	status   int
	body     []byte
	hijacked bool
}

var (
	_ http.ResponseWriter = (*detached)(nil)
	_ http.Hijacker       = (*detached)(nil)
)

func (d *detached) run(r *http.Request, serve func(http.ResponseWriter, *http.Request)) {
	defer func() {
		if !d.hijacked {
			d.respond()
		}
	}()
	serve(d, r)
}

// maxErrorBody caps what an unupgraded answer may write: these are short
// error texts, and the bytes sit in memory until serve returns.
const maxErrorBody = 4 << 10

func (d *detached) Header() http.Header { return d.header }

func (d *detached) WriteHeader(status int) {
	if d.status == 0 {
		d.status = status
	}
}

func (d *detached) Write(b []byte) (int, error) {
	if d.hijacked {
		return 0, http.ErrHijacked
	}
	d.WriteHeader(http.StatusOK)
	if len(d.body)+len(b) > maxErrorBody {
		return 0, errors.New("wsconn: response body too large for an unupgraded socket")
	}
	d.body = append(d.body, b...)
	return len(b), nil
}

func (d *detached) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if d.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if d.status != 0 {
		return nil, nil, errors.New("wsconn: hijack after a response was started")
	}
	d.hijacked = true
	// Forget the buffers: the caller keeps what it reuses, and this
	// writer lives as long as the socket (run's deferred check holds it).
	brw := d.brw
	d.brw = nil
	return d.conn, brw, nil
}

// respond writes what serve answered instead of upgrading and closes the
// connection: the client asked for a socket and will not reuse it.
func (d *detached) respond() {
	defer d.conn.Close()
	if d.status == 0 {
		d.status = http.StatusInternalServerError
	}
	w := d.brw.Writer
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\n", d.status, http.StatusText(d.status))
	d.header.Del("Content-Length")
	d.header.Del("Transfer-Encoding")
	d.header.Set("Connection", "close")
	d.header.Set("Content-Length", strconv.Itoa(len(d.body)))
	_ = d.header.Write(w)
	_, _ = w.WriteString("\r\n")
	_, _ = w.Write(d.body)
	_ = w.Flush()
}
