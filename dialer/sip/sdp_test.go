package sip

import (
	"net"
	"testing"
)

const sippSDP = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\n"

func TestParseSDP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		want       string
		pt         uint8
		bad        bool
	}{
		{name: "sipp", body: sippSDP, want: "127.0.0.1:6000", pt: ptPCMA},
		{name: "ours", body: string(offerSDP(net.IPv4(10, 0, 0, 1), 4000, 1, ptPCMU, ptPCMA)), want: "10.0.0.1:4000", pt: ptPCMU},
		{name: "media-level c", body: "v=0\nc=IN IP4 1.1.1.1\nm=video 5 RTP/AVP 96\nm=audio 7000 RTP/AVP 18 0\nc=IN IP4 2.2.2.2\n", want: "2.2.2.2:7000", pt: ptPCMU},
		{name: "no g711", body: "v=0\nc=IN IP4 1.1.1.1\nm=audio 7000 RTP/AVP 18\n", bad: true},
		{name: "no audio", body: "v=0\nc=IN IP4 1.1.1.1\n", bad: true},
		{name: "ipv6", body: "v=0\nc=IN IP6 ::1\nm=audio 7000 RTP/AVP 0\n", bad: true},
		{name: "bad port", body: "v=0\nc=IN IP4 1.1.1.1\nm=audio 99999 RTP/AVP 0\n", bad: true},
		{name: "no address", body: "v=0\nm=audio 7000 RTP/AVP 0\n", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseSDP([]byte(tc.body))
			if tc.bad {
				if err == nil {
					t.Fatalf("parseSDP = %v, want an error", m.addr)
				}
				return
			}
			if err != nil || m.addr.String() != tc.want || m.pt != tc.pt {
				t.Fatalf("parseSDP = %v pt %d, %v; want %s pt %d", m.addr, m.pt, err, tc.want, tc.pt)
			}
		})
	}
}

func FuzzParseSDP(f *testing.F) {
	f.Add([]byte(sippSDP))
	f.Add(offerSDP(net.IPv4(127, 0, 0, 1), 4000, 1, ptPCMU, ptPCMA))
	f.Add([]byte("m=audio 1 RTP/AVP 0\nc=IN IP4 1.2.3.4"))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseSDP(body)
		if err == nil && (m.addr == nil || m.addr.Port <= 0 || (m.pt != ptPCMU && m.pt != ptPCMA)) {
			t.Fatalf("parseSDP accepted %q as %+v", body, m)
		}
	})
}
