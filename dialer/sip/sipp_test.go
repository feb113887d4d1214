package sip

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer"
)

const sippBin = "/usr/bin/sipp"

// sipp is one SIPp process playing a customer's phone (the trunk) or a
// rep's phone, on loopback.
type sipp struct {
	t     *testing.T
	cmd   *exec.Cmd
	addr  string
	out   bytes.Buffer
	done  chan struct{}
	err   error
	trace string
}

// startSIPpUAC runs scenario testdata/<name>.xml as a UAC placing one
// call to target.
func startSIPpUAC(t *testing.T, name, target string, dFlag string, d int64, extra ...string) *sipp {
	t.Helper()
	return startSIPp(t, name, append([]string{dFlag, strconv.FormatInt(d, 10), target}, extra...)...)
}

// startSIPp runs scenario testdata/<name>.xml (or the file name) as a UAS for one call on a
// free loopback port; extra args are SIPp flags (-key, -d, -rtp_echo).
// The process is stopped by its PID when the test ends.
func startSIPp(t *testing.T, name string, extra ...string) *sipp {
	t.Helper()
	if _, err := os.Stat(sippBin); err != nil {
		t.Skip("SIPp is not installed at /usr/bin/sipp (Debian package sip-tester; scripts/test installs it)")
	}
	port, mport := freeUDPPort(t), freeUDPPort(t)
	dir := t.TempDir()
	scenario := filepath.Join("testdata", name+".xml")
	if strings.HasSuffix(name, ".xml") {
		scenario = name
	}
	args := append([]string{"-sf", scenario,
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-mi", "127.0.0.1", "-mp", strconv.Itoa(mport),
		"-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "err.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "msg.log"),
	}, extra...)
	s := &sipp{t: t, addr: "127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{}), trace: dir}
	s.cmd = exec.Command(sippBin, args...)
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

// wait asserts the scenario ran to its end (SIPp exits 0 only when every
// message it expected came, in order).
func (s *sipp) wait() {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		s.t.Fatalf("sipp %s did not finish", s.addr)
	}
	if s.err != nil {
		msgs, _ := os.ReadFile(filepath.Join(s.trace, "msg.log"))
		errs, _ := os.ReadFile(filepath.Join(s.trace, "err.log"))
		s.t.Fatalf("sipp %s: %v\nerrors:\n%s\nmessages:\n%s", s.addr, s.err, errs, msgs)
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	for {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		// SIPp's rtp_echo also binds port+2 for video, and with -t t1
		// it listens on TCP: keep both free too.
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
// or TCP table), so the first INVITE is not lost to a retransmission
// timer or a refused connection.
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

// newTestUA starts a UA on a free loopback port with one trunk, "t", to
// the given proxy, and closes it when the test ends.
func newTestUA(t *testing.T, proxy string, mod func(*TrunkConfig)) *UA {
	t.Helper()
	tc := testTrunk(proxy)
	if mod != nil {
		mod(&tc)
	}
	return newTestUAWith(t, map[string]TrunkConfig{"t": tc})
}

func testTrunk(proxy string) TrunkConfig {
	return TrunkConfig{Proxy: proxy, FromUser: "omnigate", CallerID: "+4420700000", CallsPerSecond: 50, MaxCalls: 50}
}

func newTestUAWith(t *testing.T, trunks map[string]TrunkConfig) *UA {
	t.Helper()
	cfg := Config{Listen: "127.0.0.1:0", Trunks: trunks}
	if err := cfg.Prepare(func(string) string { return "secret" }); err != nil {
		t.Fatal(err)
	}
	u, err := NewUA(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	return u
}

var attempts int

func dial(t *testing.T, u *UA, ring time.Duration) *call {
	t.Helper()
	return dialOn(t, u, "t", ring)
}

func dialOn(t *testing.T, u *UA, trunk string, ring time.Duration) *call {
	t.Helper()
	tr, err := u.Trunk(trunk)
	if err != nil {
		t.Fatal(err)
	}
	attempts++
	c, err := tr.Dial(context.Background(), dialer.Dial{
		AttemptID: fmt.Sprintf("att-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), attempts),
		To:        "+15550100", RingTimeout: ring,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.(*call)
}

// next reads the call's next Progress.
func next(t *testing.T, c *call) dialer.Progress {
	t.Helper()
	select {
	case p, ok := <-c.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return p
	case <-time.After(20 * time.Second):
		t.Fatal("no progress in 20s")
	}
	return dialer.Progress{}
}

// untilAnswered reads progress up to the answer.
func untilAnswered(t *testing.T, c *call) {
	t.Helper()
	for {
		p := next(t, c)
		switch p.Kind {
		case dialer.ProgressAnswered:
			return
		case dialer.ProgressEnded:
			t.Fatalf("call ended before the answer: %+v", p)
		}
	}
}

func untilEnded(t *testing.T, c *call) dialer.Progress {
	t.Helper()
	for {
		if p := next(t, c); p.Kind == dialer.ProgressEnded {
			if _, open := <-c.Events(); open {
				t.Fatal("events not closed after ended")
			}
			return p
		}
	}
}

// waitFor polls cond (a counter reaching a watermark) up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
