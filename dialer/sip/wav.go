package sip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// errWAV is a message file the gateway cannot play: it must be a WAV of
// 16-bit linear PCM, 8 kHz, mono (what a contact centre's recording tool
// exports for telephony).
var errWAV = errors.New("sip: message must be a WAV of 16-bit PCM, 8 kHz, mono")

// samplesPerPacket is 20 ms at 8 kHz, the ptime the gateway offers.
const samplesPerPacket = 160

// loadWAV reads a message file into 16-bit samples.
func loadWAV(path string) ([]int16, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sip: message: %w", err)
	}
	return parseWAV(b)
}

// parseWAV walks the RIFF chunks for fmt and data; other chunks (LIST,
// fact) are skipped.
func parseWAV(b []byte) ([]int16, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errWAV
	}
	var fmtOK bool
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		p += 8
		if size < 0 || size > len(b)-p {
			return nil, errWAV
		}
		chunk := b[p : p+size]
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, errWAV
			}
			format := binary.LittleEndian.Uint16(chunk[0:2])
			channels := binary.LittleEndian.Uint16(chunk[2:4])
			rate := binary.LittleEndian.Uint32(chunk[4:8])
			bits := binary.LittleEndian.Uint16(chunk[14:16])
			fmtOK = format == 1 && channels == 1 && rate == 8000 && bits == 16
		case "data":
			if !fmtOK {
				return nil, errWAV
			}
			s := make([]int16, size/2)
			for i := range s {
				s[i] = int16(binary.LittleEndian.Uint16(chunk[2*i:]))
			}
			return s, nil
		}
		p += size + size&1 // chunks are padded to even sizes
	}
	return nil, errWAV
}

// encodeG711 turns samples into payload bytes for pt (PCMU or PCMA).
func encodeG711(samples []int16, pt uint8) []byte {
	out := make([]byte, len(samples))
	for i, s := range samples {
		if pt == ptPCMA {
			out[i] = alaw(s)
		} else {
			out[i] = ulaw(s)
		}
	}
	return out
}

// ulaw is ITU-T G.711 mu-law encoding of one sample.
func ulaw(s int16) byte {
	const bias, clip = 0x84, 32635
	x := int(s)
	sign := 0
	if x < 0 {
		x, sign = -x, 0x80
	}
	if x > clip {
		x = clip
	}
	x += bias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (x >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// alaw is ITU-T G.711 A-law encoding of one sample.
func alaw(s int16) byte {
	x := int(s) >> 3 // A-law works on 13 bits
	sign := 0x80
	if x < 0 {
		x, sign = -x-1, 0
	}
	if x > 0xfff {
		x = 0xfff
	}
	var out int
	if x < 32 {
		out = x >> 1
	} else {
		exp := 1
		for v := x >> 5; v > 1; v >>= 1 {
			exp++
		}
		out = exp<<4 | (x>>exp)&0x0f
	}
	return byte((out | sign) ^ 0x55)
}
