package sip

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// G.711 static payload types: the only codecs the gateway offers, so the
// relay passes RTP through untouched (no transcoding) and a WAV message
// is encoded once per call.
const (
	ptPCMU uint8 = 0
	ptPCMA uint8 = 8
)

// errNoMedia is a remote SDP with no usable G.711 audio stream: the
// INVITE is answered 488, a 2xx answer is hung up.
var errNoMedia = errors.New("sip: sdp: no G.711 audio stream")

// media is where one leg's RTP goes and in which codec.
type media struct {
	addr *net.UDPAddr
	pt   uint8
}

// offerSDP describes a local RTP socket. pts lists the payload types in
// preference order: both G.711 laws to a customer, the customer's chosen
// one to a rep so the relay never transcodes.
func offerSDP(ip net.IP, port int, sessID int64, pts ...uint8) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "v=0\r\no=omnigate %d %d IN IP4 %s\r\ns=omnigate\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP", sessID, sessID, ip, ip, port)
	for _, pt := range pts {
		fmt.Fprintf(&b, " %d", pt)
	}
	b.WriteString("\r\n")
	for _, pt := range pts {
		name := "PCMU"
		if pt == ptPCMA {
			name = "PCMA"
		}
		fmt.Fprintf(&b, "a=rtpmap:%d %s/8000\r\n", pt, name)
	}
	b.WriteString("a=ptime:20\r\na=sendrecv\r\n")
	return b.Bytes()
}

// parseSDP reads the first audio stream of a remote SDP: its address (the
// media-level c= line over the session-level one) and the first G.711
// payload type it lists.
func parseSDP(body []byte) (media, error) {
	var (
		sessionIP, mediaIP string
		port               = -1
		pt                 = -1
		inAudio, seenAudio bool
	)
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "m="):
			inAudio = false
			if seenAudio {
				continue
			}
			f := strings.Fields(line[2:])
			if len(f) < 4 || f[0] != "audio" || !strings.HasPrefix(f[2], "RTP/AVP") {
				continue
			}
			p, err := strconv.Atoi(f[1])
			if err != nil || p <= 0 || p > 65535 {
				return media{}, fmt.Errorf("sip: sdp: audio port %q", f[1])
			}
			for _, s := range f[3:] {
				if s == "0" || s == "8" {
					pt, _ = strconv.Atoi(s)
					break
				}
			}
			port, inAudio, seenAudio = p, true, true
		case strings.HasPrefix(line, "c="):
			f := strings.Fields(line[2:])
			if len(f) != 3 || f[0] != "IN" || f[1] != "IP4" {
				return media{}, fmt.Errorf("sip: sdp: connection %q", line)
			}
			if inAudio {
				mediaIP = f[2]
			} else if !seenAudio {
				sessionIP = f[2]
			}
		}
	}
	if err := sc.Err(); err != nil {
		return media{}, fmt.Errorf("sip: sdp: %w", err)
	}
	if port < 0 || pt < 0 {
		return media{}, errNoMedia
	}
	if mediaIP == "" {
		mediaIP = sessionIP
	}
	ip := net.ParseIP(mediaIP).To4()
	if ip == nil {
		return media{}, fmt.Errorf("sip: sdp: connection address %q", mediaIP)
	}
	return media{addr: &net.UDPAddr{IP: ip, Port: port}, pt: uint8(pt)}, nil
}
