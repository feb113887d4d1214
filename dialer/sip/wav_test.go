package sip

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// wavBytes builds a 16-bit 8 kHz mono WAV of samples.
func wavBytes(samples []int16) []byte {
	b := make([]byte, 44+2*len(samples))
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*len(samples)))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], 8000)
	binary.LittleEndian.PutUint32(b[28:], 16000)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*len(samples)))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	return b
}

// writeTestWAV writes a 440 Hz tone of length d and returns its path.
func writeTestWAV(t *testing.T, d time.Duration) string {
	t.Helper()
	n := int(d.Seconds() * 8000)
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	p := filepath.Join(t.TempDir(), "message.wav")
	if err := os.WriteFile(p, wavBytes(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

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
