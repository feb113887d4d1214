package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// child is the gateway binary running as a child, stopped by its PID.
type child struct {
	cmd    *exec.Cmd
	base   string
	exited chan struct{}
}

// startGateway runs the gateway binary on gatewayConfig and waits until
// /readyz answers.
func startGateway(ctx context.Context, bin, dir string, disabled bool, o options) (*child, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cfg, err := gatewayConfig(port, dir, disabled, o)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-config", path)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	g := &child{cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port), exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = log.Close()
		close(g.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-g.exited:
			return nil, fmt.Errorf("the gateway exited at start (log in %s)", dir)
		case <-ctx.Done():
			g.stop()
			return nil, ctx.Err()
		default:
		}
		if resp, err := http.Get(g.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g, loopback(g.base)
			}
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("the gateway was not ready in 30s (log in %s)", dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gatewayConfig is the run's configuration on port (0: any): no routing
// reps, so chats wait and the wallboard has a queue to show; a supervisor
// for loadgen's rep socket and the wallboard.
func gatewayConfig(port int, dir string, disabled bool, o options) ([]byte, error) {
	perMinute := (o.rate*60 + o.conns - 1) / o.conns
	return fmt.Appendf(nil, `listen: 127.0.0.1:%d
data_dir: %s
shutdown_timeout: 10s
log: {format: text, level: warn}
store: {kind: bolt}
auth:
  reps:
    - {id: loadrep, name: Load Rep, role: supervisor, token: %s}
webchat:
  sites:
    - id: %s
      allowed_origins: [%q]
      rate_per_minute: %d
      new_visitors_burst: %d
http:
  max_connections: %d
routing:
  queues:
    - {name: chat, channels: [webchat]}
reports:
  disabled: %t
`, port, filepath.Join(dir, "data"), token, site, origin, max(120, 2*perMinute), maxConns+100, maxConns+1000, disabled), nil
}

// stop sends SIGTERM to the gateway's PID, and SIGKILL after 20s.
func (g *child) stop() {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(20 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
}
