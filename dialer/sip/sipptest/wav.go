package sipptest

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// WAV builds a 16-bit 8 kHz mono WAV file of samples, the format the
// gateway plays (abandon messages, hold music).
func WAV(samples []int16) []byte {
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

// WriteWAV writes a 440 Hz tone of length d to a file of the test's and
// returns its path.
func WriteWAV(t testing.TB, d time.Duration) string {
	t.Helper()
	s := make([]int16, int(d.Seconds()*8000))
	for i := range s {
		s[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	p := filepath.Join(t.TempDir(), "message.wav")
	if err := os.WriteFile(p, WAV(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
