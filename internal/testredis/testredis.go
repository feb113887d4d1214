// Package testredis gives tests a real Redis (Valkey-compatible) server:
// the one scripts/test started (OMNIGATE_VALKEY_ADDR), or a private
// redis-server on a free loopback port, killed by its PID when the test
// ends. It is for tests only.
//
// Without redis-server on PATH a test is skipped, except when CI=true,
// where a missing server is a broken machine and fails the test.
package testredis

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Addr returns OMNIGATE_VALKEY_ADDR when set, else Start(tb).
func Addr(tb testing.TB) string {
	tb.Helper()
	if addr := os.Getenv("OMNIGATE_VALKEY_ADDR"); addr != "" {
		return addr
	}
	return Start(tb)
}

// Start runs a private redis-server for tb (for tests that must own their
// server, e.g. to kill its connections) and returns its address.
func Start(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis-server is not on PATH: %v", err)
		}
		tb.Skip("redis-server is not on PATH and OMNIGATE_VALKEY_ADDR is unset")
	}
	// A port found free can be taken before the server binds it; the
	// server then exits at once and the next port is tried.
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--save", "", "--appendonly", "no", "--dir", tb.TempDir())
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if waitPong(addr, exited) {
			tb.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			return addr
		}
		_ = cmd.Process.Kill()
		<-exited
	}
	tb.Fatal("could not start redis-server")
	return ""
}

// waitPong waits until the server at addr answers PING, or exits.
func waitPong(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, err = c.Write([]byte("PING\r\n"))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && rerr == nil && line == "+PONG\r\n" {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
