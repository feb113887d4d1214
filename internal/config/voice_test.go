package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/config"
)

func TestVoiceSection(t *testing.T) {
	t.Parallel()
	good := `
voice:
  listen: 127.0.0.1:5070
  trunks:
    carrier: {proxy: "198.51.100.7:5060", from_user: omnigate, trusted: true}
  inbound: {ring_time: 15s, max_wait: 2m, voicemail: "sip:vm@198.51.100.8"}
dialer:
  trunk: sip:carrier
`
	c, err := config.Parse([]byte(good), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Voice.Enabled() || c.Voice.Inbound.RingTime != 15*time.Second || !c.Voice.Trunks["carrier"].Trusted {
		t.Fatalf("voice section read as %+v", c.Voice)
	}
	sc, err := c.Voice.SIP(func(string) string { return "" })
	if err != nil || sc.Trunks["carrier"].MaxCalls != 100 || c.Voice.Trunks["carrier"].MaxCalls != 0 {
		t.Fatalf("SIP config %+v (%v): want defaults filled in a copy", sc.Trunks, err)
	}
	if c, err := config.Parse([]byte("listen: 127.0.0.1:0\n"), noEnv); err != nil || c.Voice.Enabled() {
		t.Fatalf("no voice section: %v, enabled %v; want no SIP", err, c.Voice.Enabled())
	}

	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":         {"voice:\n  listen: 127.0.0.1:5070\n  trunkz: {}\n", "field trunkz not found"},
		"unknown trunk key":   {"voice:\n  listen: 127.0.0.1:5070\n  trunks: {c: {proxy: \"1.2.3.4:5060\", from_user: o, tusted: true}}\n", "field tusted not found"},
		"inbound without sip": {"voice:\n  inbound: {max_wait: 1m}\n", "voice.inbound needs voice.listen"},
		"no trunks":           {"voice:\n  listen: 127.0.0.1:5070\n", "sip: no trunks"},
		"dialer names no trunk": {"voice:\n  listen: 127.0.0.1:5070\n  trunks: {c: {proxy: \"1.2.3.4:5060\", from_user: o}}\ndialer:\n  trunk: sip:other\n",
			`"sip:other" names no trunk under voice.trunks`},
		"dialer sip without voice": {"dialer:\n  trunk: sip:c\n", `"sip:c" names no trunk`},
		"negative ring":            {"voice:\n  listen: 127.0.0.1:5070\n  trunks: {c: {proxy: \"1.2.3.4:5060\", from_user: o}}\n  inbound: {ring_time: -1s}\n", "ring_time and max_wait may not be negative"},
	} {
		if _, err := config.Parse([]byte(tc.yaml), noEnv); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}
