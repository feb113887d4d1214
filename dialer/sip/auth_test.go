package sip

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer"
)

// A trunk that challenges with 407 (SIPp's verifyauth reads only the
// Authorization header, so this trunk is a few lines of Go): the second
// INVITE must carry a Proxy-Authorization whose digest is right for the
// configured user and the password from the environment.
func TestProxyAuth407(t *testing.T) {
	trunk, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer trunk.Close()
	u := newTestUA(t, trunk.LocalAddr().String(), func(tc *TrunkConfig) { tc.AuthUser, tc.AuthPasswordEnv = "omnigate", "TRUNK_PASSWORD" })
	verdict := make(chan error, 1)
	go func() { verdict <- challengeOnce(trunk, "secret") }()
	c := dial(t, u, 10*time.Second)
	if err := <-verdict; err != nil {
		t.Fatal(err)
	}
	if p := untilEnded(t, c); p.Outcome != dialer.OutcomeBusy {
		t.Fatalf("ended %+v, want busy (the trunk's answer to the authorised INVITE)", p)
	}
}

// challengeOnce answers an INVITE 407, checks the retried INVITE's
// digest, and answers it 486.
func challengeOnce(conn *net.UDPConn, password string) error {
	const realm, nonce = "trunk.test", "a1b2c3"
	read := func(method string) (string, *net.UDPAddr, error) {
		buf := make([]byte, 4096)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return "", nil, err
			}
			if msg := string(buf[:n]); strings.HasPrefix(msg, method+" ") {
				return msg, from, nil
			}
		}
	}
	reply := func(inv string, to *net.UDPAddr, status, extra string) {
		var b strings.Builder
		b.WriteString("SIP/2.0 " + status + "\r\n")
		for _, l := range strings.Split(inv, "\r\n") {
			for _, h := range []string{"Via:", "From:", "Call-ID:", "CSeq:"} {
				if strings.HasPrefix(l, h) {
					b.WriteString(l + "\r\n")
				}
			}
			if strings.HasPrefix(l, "To:") {
				b.WriteString(l + ";tag=trunk\r\n")
			}
		}
		b.WriteString(extra + "Content-Length: 0\r\n\r\n")
		_, _ = conn.WriteToUDP([]byte(b.String()), to)
	}
	inv, from, err := read("INVITE")
	if err != nil {
		return err
	}
	reply(inv, from, "407 Proxy Authentication Required", fmt.Sprintf("Proxy-Authenticate: Digest realm=%q, nonce=%q, algorithm=MD5\r\n", realm, nonce))
	if _, _, err := read("ACK"); err != nil {
		return err
	}
	inv, from, err = read("INVITE")
	if err != nil {
		return err
	}
	defer reply(inv, from, "486 Busy Here", "")
	m := regexp.MustCompile(`(?m)^Proxy-Authorization: Digest .*username="([^"]*)".*uri="([^"]*)".*response="([^"]*)"`).FindStringSubmatch(inv)
	if m == nil {
		return fmt.Errorf("retried INVITE without Proxy-Authorization:\n%s", inv)
	}
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	if want := h(h(m[1]+":"+realm+":"+password) + ":" + nonce + ":" + h("INVITE:"+m[2])); m[1] != "omnigate" || m[3] != want {
		return fmt.Errorf("digest user %q response %s, want omnigate %s", m[1], m[3], want)
	}
	return nil
}
