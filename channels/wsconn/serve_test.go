package wsconn

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// echoServer upgrades through Serve and echoes text frames. returned is
// closed when the net/http handler has returned.
func echoServer(t *testing.T, up *websocket.Upgrader) (srv *httptest.Server, returned chan struct{}) {
	t.Helper()
	returned = make(chan struct{}, 16)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { returned <- struct{}{} }()
		Serve(w, r, func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return // answered by the upgrader
			}
			defer c.Close()
			for {
				mt, b, err := c.ReadMessage()
				if err != nil {
					return
				}
				if err := c.WriteMessage(mt, b); err != nil {
					return
				}
			}
		})
	}))
	t.Cleanup(srv.Close)
	return srv, returned
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") }

func TestUpgradeOutlivesHandler(t *testing.T) {
	srv, returned := echoServer(t, &websocket.Upgrader{})
	c, _, err := websocket.DefaultDialer.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("the HTTP handler is still running while the socket is open")
	}
	for _, msg := range []string{"one", "two"} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, b, err := c.ReadMessage()
		if err != nil || string(b) != msg {
			t.Fatalf("echo = %q, %v; want %q", b, err, msg)
		}
	}
}

// rawRequest sends a handshake by hand and returns the status line, the
// body and whether the server closed the connection afterwards.
func rawRequest(t *testing.T, srv *httptest.Server, req string) (status, body string, closed bool) {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	_, err = br.ReadByte()
	return resp.Status, string(b), err == io.EOF
}

const handshake = "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

func TestRefusedAfterDetachIsAnHTTPAnswer(t *testing.T) {
	srv, _ := echoServer(t, &websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return false }})
	status, body, closed := rawRequest(t, srv, handshake+"Sec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n\r\n")
	if status != "403 Forbidden" || !strings.Contains(body, "Forbidden") || !closed {
		t.Fatalf("refused Origin: %q %q closed=%v; want 403 with its text, then close", status, body, closed)
	}
	status, _, closed = rawRequest(t, srv, handshake+"Sec-WebSocket-Version: 8\r\n\r\n")
	if status != "400 Bad Request" || !closed {
		t.Fatalf("unsupported version: %q closed=%v; want 400 then close", status, closed)
	}
}

func TestNotAnUpgradeIsServedInPlace(t *testing.T) {
	srv, _ := echoServer(t, &websocket.Upgrader{})
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain GET: %d, want the upgrader's 400", resp.StatusCode)
	}
}

func TestDetachedWriter(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	d := &detached{conn: a, brw: bufio.NewReadWriter(bufio.NewReader(a), bufio.NewWriter(a)), header: http.Header{}}
	if _, err := d.Write(make([]byte, maxErrorBody+1)); err == nil {
		t.Fatal("an oversized answer was accepted")
	}
	if _, _, err := d.Hijack(); err == nil {
		t.Fatal("hijack after a response was started succeeded")
	}
	d = &detached{conn: a, brw: d.brw, header: http.Header{}}
	if _, _, err := d.Hijack(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Hijack(); err == nil {
		t.Fatal("a second hijack succeeded")
	}
	if _, err := d.Write([]byte("x")); err != http.ErrHijacked {
		t.Fatalf("write after hijack: %v, want ErrHijacked", err)
	}
}
