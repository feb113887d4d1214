package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Credentials of the test configuration. They exist only in the temporary
// config file of one test run.
const (
	adminKey   = "e2e-admin-key-0123456789abcdef"
	aliceToken = "e2e-alice-token-0123456789abcdef"
	siteID     = "demo"
)

// gateway is the real gateway binary running as a child process, so a test
// can stop it with SIGTERM and start it again on the same port and data.
type gateway struct {
	t      *testing.T
	bin    string
	config string
	base   string // http://127.0.0.1:port
	out    *lockedBuffer

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error // set before exited is closed
}

// http is a client without keep-alive: connections must not outlive a
// gateway restart.
var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// newGateway builds ./cmd/gateway and writes a configuration for a free
// loopback port and a fresh data directory. Nothing runs until start.
func newGateway(t *testing.T) *gateway { return newGatewayWith(t, "", "") }

// newGatewayWith is newGateway with more reps (YAML lines of auth.reps)
// and more top-level configuration (YAML appended at the end).
func newGatewayWith(t *testing.T, reps, extra string) *gateway {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "gateway")
	build := exec.Command("go", "build", "-o", bin, "github.com/omnigate/omnigate/cmd/gateway")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/gateway: %v\n%s", err, out)
	}
	port := freePort(t)
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
data_dir: %s
shutdown_timeout: 3s
log: {format: text, level: info}
store: {kind: bolt}
auth:
  admin_keys:
    - {name: e2e-admin, key: %s}
  reps:
    - {id: alice, name: Alice, role: rep, token: %s}
%swebchat:
  # After the restart the widget may reconnect before the rep's inbox, be
  # told no rep is available and show its offline form until the next
  # check; checking every second keeps the test short.
  availability_interval: 1s
  sites:
    - id: %s
      secret: e2e-site-secret-0123456789
%s`, port, filepath.Join(dir, "data"), adminKey, aliceToken, reps, siteID, extra)
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, bin: bin, config: path, base: fmt.Sprintf("http://127.0.0.1:%d", port), out: &lockedBuffer{}}
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			t.Logf("gateway output:\n%s", g.out.String())
		}
	})
	return g
}

// freePort asks the kernel for a free loopback port. The listener is closed
// at once; the gateway binds the port a moment later.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs the binary and returns once /readyz answers 200.
func (g *gateway) start() {
	g.t.Helper()
	fmt.Fprintf(g.out, "--- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(g.bin, "-config", g.config)
	cmd.Stdout, cmd.Stderr = g.out, g.out
	if err := cmd.Start(); err != nil {
		g.t.Fatalf("starting the gateway: %v", err)
	}
	exited := make(chan struct{})
	g.cmd, g.exited = cmd, exited
	go func() {
		g.waitErr = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			g.cmd = nil
			g.t.Fatalf("the gateway exited at start: %v\n%s", g.waitErr, g.out.String())
		default:
		}
		resp, err := client.Get(g.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("the gateway was not ready within 30s (last error %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM to the gateway's PID and waits for a clean exit; it
// kills the process if it takes longer than 20 seconds.
func (g *gateway) stop() {
	g.t.Helper()
	if g.cmd == nil {
		return
	}
	cmd := g.cmd
	g.cmd = nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-g.exited
		g.t.Errorf("the gateway (pid %d) did not stop within 20s of SIGTERM; killed", cmd.Process.Pid)
		return
	}
	if g.waitErr != nil {
		g.t.Errorf("the gateway (pid %d) exited with %v after SIGTERM", cmd.Process.Pid, g.waitErr)
	}
}

// apiEvent is the part of the API's Event that the tests read.
type apiEvent struct {
	Seq        uint64 `json:"seq"`
	Kind       string `json:"kind"`
	Channel    string `json:"channel"`
	ExternalID string `json:"external_id"`
	Author     string `json:"author"`
	Payload    struct {
		Text     string `json:"text"`
		ClientID string `json:"client_id"`
	} `json:"payload"`
}

// timeline reads a customer's whole timeline through the REST API with the
// admin key.
func (g *gateway) timeline(customerID string) []apiEvent {
	g.t.Helper()
	var all []apiEvent
	after := "0"
	for {
		req, err := http.NewRequest("GET", g.base+"/v1/customers/"+customerID+"/timeline?limit=1000&after="+after, nil)
		if err != nil {
			g.t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := client.Do(req)
		if err != nil {
			g.t.Fatalf("GET timeline: %v", err)
		}
		var page struct {
			Data       []apiEvent `json:"data"`
			NextCursor string     `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			g.t.Fatalf("GET timeline: status %d, %v", resp.StatusCode, err)
		}
		all = append(all, page.Data...)
		if page.NextCursor == "" {
			return all
		}
		after = page.NextCursor
	}
}

// lockedBuffer collects a child's output from two pipes at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Clone(l.b.String())
}
