package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"

	"github.com/omnigate/omnigate/channels/voice"
	"github.com/omnigate/omnigate/dialer/sip"
)

// Voice is the `voice:` section: the one SIP user agent (dialer/sip
// Config: listen and trunks, inline) and inbound calls (channels/voice
// Config under inbound). The zero value is no SIP: no socket is opened
// and the dialer can only use the simulated trunk.
//
//	voice:
//	  listen: 192.0.2.10:5060
//	  trunks:
//	    carrier: {proxy: 198.51.100.7:5060, from_user: omnigate, trusted: true}
//	  inbound: {hold: /srv/hold.wav, max_wait: 2m}
//
// Inbound calls come from the trunks' proxies (any other source is
// refused 403) and are routed on the routing section's voice queue; the
// dialer places calls through a trunk with dialer.trunk "sip:<name>".
type Voice struct {
	sip.Config `yaml:",inline"`
	// Inbound is how calls from the trunks are put to reps.
	Inbound voice.Config `yaml:"inbound"`
}

// Enabled reports whether the section asks for a user agent.
func (v Voice) Enabled() bool { return v.Listen != "" || len(v.Trunks) > 0 }

// SIP is the user agent's configuration ready for sip.NewUA: defaults
// filled and each trunk's password read from its environment variable.
// It leaves v as the file said.
func (v Voice) SIP(getenv func(string) string) (sip.Config, error) {
	c := v.Config
	c.Trunks = maps.Clone(v.Trunks)
	return c, c.Prepare(getenv)
}

// validate checks the section, and that a dialer on "sip:<name>" names
// one of its trunks.
func (v Voice) validate(dialerTrunk string) []error {
	var errs []error
	if v.Enabled() {
		if _, err := v.SIP(os.Getenv); err != nil {
			errs = append(errs, prefixed("voice: ", err)...)
		}
		errs = append(errs, prefixed("voice.inbound: ", v.Inbound.Validate())...)
	} else if v.Inbound != (voice.Config{}) {
		errs = append(errs, errors.New("voice.inbound needs voice.listen and a trunk"))
	}
	if name, ok := strings.CutPrefix(dialerTrunk, TrunkSIPPrefix); ok {
		if _, found := v.Trunks[name]; !found {
			errs = append(errs, fmt.Errorf("dialer.trunk: %q names no trunk under voice.trunks", dialerTrunk))
		}
	}
	return errs
}

// TrunkSIPPrefix starts a dialer.trunk that names a SIP trunk of the
// voice section ("sip:carrier").
const TrunkSIPPrefix = "sip:"
