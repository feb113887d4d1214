package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// loadOrigin is the page origin the visitor sockets claim; the started
// gateway's site allows exactly this one.
const loadOrigin = "http://loadgen.localhost"

// child is a gateway that loadgen started and must stop. Its data
// directory and port stay across restarts (start after kill).
type child struct {
	dir     string
	bin     string
	cfgPath string
	base    string
	token   string
	cmd     *exec.Cmd
	log     *os.File
	exited  chan struct{}
	err     error // set before exited closes
	// finalLog is what logLines returned just before stop removed the log.
	finalLog string
}

// startGateway builds (unless bin is given) and starts a gateway on a free
// loopback port with a fresh data directory, and waits until it is ready.
// The caller must stop it.
// perMinute is each visitor's message rate: the site's rate limit is set
// to twice that (at least the default 120), so the limiter is exercised
// but never trips. Every visitor comes from loopback, so the new-visitor
// limit per address is raised to let all of them in.
func startGateway(ctx context.Context, bin, site string, perMinute, reps int) (*child, error) {
	dir, err := os.MkdirTemp("", "omnigate-loadgen-")
	if err != nil {
		return nil, err
	}
	c := &child{dir: dir, bin: bin, token: randomHex(24)}
	ok := false
	defer func() {
		if !ok {
			c.stop()
		}
	}()
	if c.bin == "" {
		c.bin = filepath.Join(dir, "gateway")
		fmt.Fprintln(os.Stderr, "loadgen: building ./cmd/gateway")
		build := exec.CommandContext(ctx, "go", "build", "-o", c.bin, "github.com/omnigate/omnigate/cmd/gateway")
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/gateway: %w\n%s", err, out)
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	// The rep is a supervisor so nothing in the feed is masked (no phone
	// numbers here, but masking is work the measurement need not include
	// either way). Logs at warn: ten thousand sockets' info lines would
	// measure the terminal.
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
data_dir: %s
shutdown_timeout: 10s
log: {format: text, level: warn}
store: {kind: bolt}
auth:
  reps:
    - {id: loadrep, name: Load Rep, role: supervisor, token: %s}
%swebchat:
  sites:
    - id: %s
      allowed_origins: [%q]
      rate_per_minute: %d
      new_visitors_burst: %d
`, port, filepath.Join(dir, "data"), c.token, repsYAML(c.token, reps), site, loadOrigin, max(120, 2*perMinute), maxConns)
	c.cfgPath = filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(c.cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	if c.log, err = os.Create(filepath.Join(dir, "gateway.log")); err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// command is the gateway's command line, output to the log. The raised
// descriptor limit is inherited; the death signal takes the gateway down
// if loadgen itself is killed.
func (c *child) command() *exec.Cmd {
	cmd := exec.Command(c.bin, "-config", c.cfgPath)
	cmd.Stdout, cmd.Stderr = c.log, c.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// start runs the gateway process and waits until it is ready.
func (c *child) start(ctx context.Context) error {
	c.cmd = c.command()
	if err := c.cmd.Start(); err != nil {
		c.cmd = nil
		return fmt.Errorf("starting the gateway: %w", err)
	}
	cmd, exited := c.cmd, make(chan struct{})
	c.exited = exited
	go func() {
		c.err = cmd.Wait()
		close(exited)
	}()
	if err := waitReady(ctx, c.base, c.exited); err != nil {
		return fmt.Errorf("%w\n%s", err, c.logTail())
	}
	return nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// kill sends SIGKILL to the gateway's PID and waits until it is gone; start
// runs it again on the same port and data directory.
func (c *child) kill() error {
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing gateway pid %d: %w", c.pid(), err)
	}
	<-c.exited
	c.cmd = nil
	return nil
}

// second runs another gateway process on the same configuration, data
// directory included, while this one serves, and returns how it ended
// and what it printed. It must be refused; it is killed by its PID after
// 30 seconds if it has not exited.
func (c *child) second(ctx context.Context) (exitErr error, output string, err error) {
	cmd := c.command()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting a second gateway: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case exitErr = <-done:
		return exitErr, out.String(), nil
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	return nil, out.String(), fmt.Errorf("a second gateway on the same data_dir (pid %d) still ran after 30s; killed", cmd.Process.Pid)
}

// stop sends SIGTERM to the gateway's PID, waits for it (killing it after
// 30 seconds) and removes the temporary directory.
func (c *child) stop() error {
	var err error
	if c.cmd != nil && c.exited != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
			err = c.err
		case <-time.After(30 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
			err = fmt.Errorf("gateway pid %d did not stop within 30s of SIGTERM; killed", c.pid())
		}
		c.cmd = nil
	}
	if c.log != nil {
		c.finalLog = c.logLines(3000)
		c.log.Close()
	}
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
	return err
}

// stopAfter stops the gateway at the end of a run: its last log lines go
// to *log, a failure to stop is joined to *err, and *clean says it
// stopped cleanly.
func (c *child) stopAfter(err *error, log *string, clean *bool) {
	serr := c.stop()
	*log = c.finalLog
	if serr != nil {
		*err = errors.Join(*err, fmt.Errorf("stopping the gateway: %w", serr))
		return
	}
	*clean = true
}

// logTail is the end of the gateway's output, for error messages.
func (c *child) logTail() string {
	if s := c.logLines(4000); s != "" {
		return "gateway output (end):\n" + s
	}
	return ""
}

// logLines is up to the last n bytes of the gateway's log lines (it logs
// at level warn), without its start-up banner.
func (c *child) logLines(n int) string {
	if c.log == nil {
		return ""
	}
	b, err := os.ReadFile(c.log.Name())
	if err != nil {
		return ""
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "time=") || strings.HasPrefix(l, "{") || strings.Contains(l, "panic") {
			keep = append(keep, l)
		}
	}
	s := strings.Join(keep, "\n")
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// waitReady polls /readyz until it answers 200.
func waitReady(ctx context.Context, base string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("the gateway exited at start")
		case <-ctx.Done():
			return fmt.Errorf("the gateway at %s was not ready: %w", base, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// goStats are a few of the gateway's own figures from /metrics; a
// missing one is -1.
type goStats struct {
	goroutines, heapInuse, stackInuse float64
	// Counters: garbage collections so far, bytes ever allocated.
	gcCycles, allocBytes float64
	// inboxDepth is omnigate_inbox_queue_depth_max of rep sockets.
	inboxDepth float64
}

func gatewayMetrics(ctx context.Context, base string) goStats {
	st := goStats{-1, -1, -1, -1, -1, -1}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			st.goroutines = v
		case "go_memstats_heap_inuse_bytes":
			st.heapInuse = v
		case "go_memstats_stack_inuse_bytes":
			st.stackInuse = v
		case "go_gc_duration_seconds_count":
			st.gcCycles = v
		case "go_memstats_alloc_bytes_total":
			st.allocBytes = v
		case `omnigate_inbox_queue_depth_max{role="rep"}`:
			st.inboxDepth = v
		}
	}
	return st
}
