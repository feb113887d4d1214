package sip

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/omnigate/omnigate/dialer/sip/sipptest"
)

// wavBytes and writeTestWAV are sipptest's, shared with channels/voice.
var (
	wavBytes     = sipptest.WAV
	writeTestWAV = func(t *testing.T, d time.Duration) string { return sipptest.WriteWAV(t, d) }
)

func TestParseWAV(t *testing.T) {
	t.Parallel()
	s, err := parseWAV(wavBytes([]int16{0, 1000, -1000, 32767, -32768}))
	if err != nil || len(s) != 5 || s[3] != 32767 {
		t.Fatalf("parseWAV = %v, %v", s, err)
	}
	stereo := wavBytes([]int16{1, 2})
	binary.LittleEndian.PutUint16(stereo[22:], 2)
	for name, b := range map[string][]byte{"stereo": stereo, "short": []byte("RIFF"), "truncated": wavBytes(make([]int16, 10))[:50]} {
		if _, err := parseWAV(b); err == nil {
			t.Errorf("%s: parseWAV accepted it", name)
		}
	}
}

func TestG711(t *testing.T) {
	t.Parallel()
	// Reference values from ITU-T G.711 (silence and full scale).
	for _, tc := range []struct {
		s    int16
		u, a byte
	}{{0, 0xff, 0xd5}, {-1, 0x7f, 0x55}, {32767, 0x80, 0xaa}, {-32768, 0x00, 0x2a}} {
		if got := ulaw(tc.s); got != tc.u {
			t.Errorf("ulaw(%d) = %#x, want %#x", tc.s, got, tc.u)
		}
		if got := alaw(tc.s); got != tc.a {
			t.Errorf("alaw(%d) = %#x, want %#x", tc.s, got, tc.a)
		}
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(wavBytes([]int16{0, 1, 2, 3}))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\x7f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseWAV(b)
		if err == nil && 2*len(s) > len(b) {
			t.Fatalf("more samples than bytes")
		}
	})
}
