package sip

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// rawPhone sends hand-written SIP over UDP and reads status codes: the
// malformed and hostile requests a real phone or SIPp will not send.
type rawPhone struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func newRawPhone(t *testing.T, ua *UA) *rawPhone {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	to, _ := net.ResolveUDPAddr("udp4", ua.Addr())
	return &rawPhone{t: t, conn: c, to: to}
}

// invite is a well-formed inbound INVITE; edit tweaks its text.
func (p *rawPhone) invite(n int, edit func(string) string) string {
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	port := p.conn.LocalAddr().(*net.UDPAddr).Port
	msg := fmt.Sprintf("INVITE sip:omnigate@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-raw-%d\r\n"+
		"From: <sip:+15550100@trunk.test>;tag=t%d\r\n"+
		"To: <sip:omnigate@trunk.test>\r\n"+
		"Call-ID: raw-%d\r\n"+
		"CSeq: 1 INVITE\r\n"+
		"Contact: <sip:+15550100@127.0.0.1:%d>\r\n"+
		"Max-Forwards: 70\r\n"+
		"Content-Type: application/sdp\r\n"+
		"Content-Length: %d\r\n\r\n%s", p.to, port, n, n, n, port, len(sdp), sdp)
	if edit != nil {
		msg = edit(msg)
	}
	return msg
}

func (p *rawPhone) send(msg string) {
	if _, err := p.conn.WriteToUDP([]byte(msg), p.to); err != nil {
		p.t.Fatal(err)
	}
}

// final reads responses until a final one and returns its code.
func (p *rawPhone) final() int {
	p.t.Helper()
	buf := make([]byte, 4096)
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			p.t.Fatalf("no response: %v", err)
		}
		f := strings.Fields(string(buf[:n]))
		if len(f) < 2 || f[0] != "SIP/2.0" {
			continue
		}
		if code, _ := strconv.Atoi(f[1]); code >= 200 {
			return code
		}
	}
}

func TestInboundScreening(t *testing.T) {
	u := newTestUA(t, "127.0.0.1:5060", nil)
	stranger := newTestUA(t, "127.0.0.2:5060", nil) // its only trunk is elsewhere
	for i, tc := range []struct {
		name string
		ua   *UA
		edit func(string) string
		want int
	}{
		{"valid, inbound not routed yet", u, nil, 480},
		{"unknown source", stranger, nil, 403},
		{"no Contact", u, func(s string) string { return cut(s, "Contact:") }, 400},
		{"no CSeq", u, func(s string) string { return cut(s, "CSeq:") }, 400},
		{"no G.711", u, func(s string) string {
			return strings.Replace(strings.Replace(s, "RTP/AVP 0", "RTP/AVP 18", 1), "Content-Length: 75", "Content-Length: 76", 1)
		}, 488},
		{"no SDP", u, func(s string) string { return s[:strings.Index(s, "Content-Length")] + "Content-Length: 0\r\n\r\n" }, 488},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newRawPhone(t, tc.ua)
			p.send(p.invite(i, tc.edit))
			if got := p.final(); got != tc.want {
				t.Fatalf("answered %d, want %d", got, tc.want)
			}
		})
	}
}

// cut removes the header line starting with name.
func cut(msg, name string) string {
	i := strings.Index(msg, name)
	j := strings.Index(msg[i:], "\r\n")
	return msg[:i] + msg[i+j+2:]
}

// Garbage is dropped without a crash: the INVITE sent after it is still
// answered, which proves the garbage was read and handled first.
func TestInboundGarbageSurvived(t *testing.T) {
	u := newTestUA(t, "127.0.0.1:5060", nil)
	p := newRawPhone(t, u)
	for _, g := range []string{"", "\x00\xff\xfe", "INVITE\r\n\r\n", "SIP/2.0 200 OK\r\n\r\n", "INVITE sip:x SIP/2.0\r\nContent-Length: 99999\r\n\r\nv=0",
		"INVITE sip:x SIP/2.0\r\nVia: garbage\r\nCSeq: x\r\n\r\n"} {
		p.send(g)
	}
	p.send(p.invite(1, nil))
	if got := p.final(); got != 480 {
		t.Fatalf("after garbage, the INVITE got %d, want 480", got)
	}
}

// A flood beyond calls_per_second gets 503 and leaves nothing behind;
// retransmissions of one INVITE are one request (the transaction layer
// answers them), so they do not use up the trunk's rate.
func TestInboundFloodAndRetransmissions(t *testing.T) {
	u := newTestUA(t, "127.0.0.1:5060", func(tc *TrunkConfig) { tc.CallsPerSecond = 3 })
	p := newRawPhone(t, u)
	first := p.invite(0, nil)
	for range 3 {
		p.send(first)
		if got := p.final(); got != 480 {
			t.Fatalf("INVITE or its retransmission got %d, want 480", got)
		}
	}
	codes := map[int]int{}
	for i := 1; i <= 20; i++ {
		p.send(p.invite(i, nil))
		codes[p.final()]++
	}
	// Two tokens were left after the first INVITE; a few more may refill
	// while the flood is sent (3 a second), so count loosely.
	if codes[503] < 15 || codes[480]+codes[503] != 20 {
		t.Fatalf("flood answered %v, want mostly 503", codes)
	}
	if got := testutil.ToFloat64(u.metrics.refused.WithLabelValues("503")); int(got) != codes[503] {
		t.Errorf("refused{code=503} = %v, want %d", got, codes[503])
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.legs) != 0 {
		t.Fatalf("%d dialogs stored for refused calls", len(u.legs))
	}
}

// A second INVITE of a call being set up (same Call-ID, new transaction:
// a forked or resent request) is one call: it gets 482 and the handler
// sees the call once.
func TestSIPpInboundDuplicateInviteIsOneCall(t *testing.T) {
	u, rep, handled := queueToRingingRep(t, "")
	p := newRawPhone(t, u)
	first := p.invite(1, nil)
	p.send(first)
	ic := <-handled
	p.send(strings.Replace(first, "z9hG4bK-raw-1", "z9hG4bK-raw-1b", 1))
	if got := p.final(); got != 482 {
		t.Fatalf("the duplicate got %d, want 482", got)
	}
	// The caller gives up: CANCEL the first INVITE.
	p.send(cancelOf(first))
	if e := <-ic.Events(); e.Outcome != dialer.OutcomeAbandoned {
		t.Fatalf("%+v, want abandoned", e)
	}
	rep.wait()
	select {
	case <-handled:
		t.Fatal("the duplicate INVITE reached the handler")
	default:
	}
}

// cancelOf is the CANCEL of a raw INVITE: its request URI, Via, From, To,
// Call-ID and CSeq number, no body (RFC 3261 9.1).
func cancelOf(invite string) string {
	var b strings.Builder
	for i, line := range strings.Split(invite, "\r\n") {
		switch {
		case i == 0, strings.HasPrefix(line, "CSeq:"):
			b.WriteString(strings.Replace(line, "INVITE", "CANCEL", 1) + "\r\n")
		case strings.HasPrefix(line, "Via:"), strings.HasPrefix(line, "From:"), strings.HasPrefix(line, "To:"),
			strings.HasPrefix(line, "Call-ID:"), strings.HasPrefix(line, "Max-Forwards:"):
			b.WriteString(line + "\r\n")
		}
	}
	return b.String() + "Content-Length: 0\r\n\r\n"
}
