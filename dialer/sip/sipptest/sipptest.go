// Package sipptest runs SIPp (Debian package sip-tester) in tests as the
// customers, the trunk and the reps' phones, on loopback: one process per
// scenario and call, stopped by its PID when the test ends. The
// scenarios are dialer/sip's testdata (Scenario names them); a test
// skips when SIPp is not installed.
package sipptest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Bin is where scripts/test installs SIPp.
const Bin = "/usr/bin/sipp"

// SIPp is one SIPp process playing one side of a call.
type SIPp struct {
	// Addr is its SIP address, 127.0.0.1:port.
	Addr  string
	t     testing.TB
	cmd   *exec.Cmd
	out   bytes.Buffer
	done  chan struct{}
	err   error
	trace string
}

// Scenario is the path of dialer/sip's scenario testdata/<name>.xml, or
// name itself when it ends in .xml.
func Scenario(name string) string {
	if strings.HasSuffix(name, ".xml") {
		return name
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", name+".xml")
}

// StartUAC runs scenario name as a UAC placing one call to target, with
// -d d (its pause, in milliseconds) and extra flags.
func StartUAC(t testing.TB, name, target string, d time.Duration, extra ...string) *SIPp {
	t.Helper()
	return Start(t, name, append([]string{"-d", strconv.FormatInt(d.Milliseconds(), 10), target}, extra...)...)
}

// Start runs scenario name (see Scenario) for one call on a free
// loopback port; extra are SIPp flags (-key, -d, -rtp_echo, a UAC's
// target). It returns once SIPp's socket is bound, so the first INVITE
// is not lost to a retransmission timer.
func Start(t testing.TB, name string, extra ...string) *SIPp {
	t.Helper()
	if _, err := os.Stat(Bin); err != nil {
		t.Skip("SIPp is not installed at /usr/bin/sipp (Debian package sip-tester; scripts/test installs it)")
	}
	port, mport := FreeUDPPort(t), FreeUDPPort(t)
	dir := t.TempDir()
	args := append([]string{"-sf", Scenario(name),
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-mi", "127.0.0.1", "-mp", strconv.Itoa(mport),
		"-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "err.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "msg.log"),
	}, extra...)
	s := &SIPp{t: t, Addr: "127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{}), trace: dir}
	s.cmd = exec.Command(Bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sipp: %v", err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	table := "/proc/net/udp"
	if slices.Contains(extra, "t1") { // -t t1: SIPp on one TCP socket
		table = "/proc/net/tcp"
	}
	if !waitBound(table, port, s.done) {
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Fatalf("sipp did not start on port %d: %v\n%s", port, s.err, s.out.String())
	}
	return s
}

// Wait asserts the scenario ran to its end (SIPp exits 0 only when every
// message it expected came, in order).
func (s *SIPp) Wait() {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		s.t.Fatalf("sipp %s did not finish", s.Addr)
	}
	if s.err != nil {
		msgs, _ := os.ReadFile(filepath.Join(s.trace, "msg.log"))
		errs, _ := os.ReadFile(filepath.Join(s.trace, "err.log"))
		s.t.Fatalf("sipp %s: %v\nerrors:\n%s\nmessages:\n%s", s.Addr, s.err, errs, msgs)
	}
}

// FreeUDPPort returns a loopback port free for UDP (and port+2, which
// SIPp's rtp_echo binds for video) and for TCP (SIPp's -t t1).
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	for {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		c2, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(p+2))
		if err != nil {
			continue
		}
		c2.Close()
		if l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			l.Close()
			return p
		}
	}
}

// waitBound waits until a socket is bound to port (in the kernel's UDP
// or TCP table).
func waitBound(table string, port int, exited <-chan struct{}) bool {
	want := fmt.Sprintf(":%04X ", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(table)
		if bytes.Contains(b, []byte(want)) {
			return true
		}
		select {
		case <-exited:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return false
}
