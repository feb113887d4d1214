package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/channels/voice"
	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/dialer"
	"github.com/omnigate/omnigate/dialer/sip"
	"github.com/omnigate/omnigate/internal/config"
	"github.com/omnigate/omnigate/sessions"
)

// voiceParts is what buildVoice makes; all nil without a voice section.
type voiceParts struct {
	ua      *sip.UA
	fan     *sessions.Fanout
	inbound *voice.Adapter
	// sender books the callback of an inbound call that overflowed; set
	// once build made it (calls arrive only after Run starts).
	sender *channels.Sender
}

// buildVoice starts the SIP user agent on voice.listen, registers its
// metrics and takes its inbound calls with the voice adapter, which
// routes them through the routing service. Without a voice section it
// does nothing.
func (g *Gateway) buildVoice(reg prometheus.Registerer) error {
	if !g.cfg.Voice.Enabled() {
		return nil
	}
	cfg, err := g.cfg.Voice.SIP(os.Getenv)
	if err != nil {
		return err
	}
	if g.voice.fan, err = sessions.NewFanout(g.store); err != nil {
		return fmt.Errorf("gateway: voice: %w", err)
	}
	g.voice.inbound, err = voice.New(g.cfg.Voice.Inbound, voice.Options{
		Store: g.store, Watcher: g.voice.fan, Logger: g.log.With("channel", "voice"),
		RepURI: func(rep string) (string, error) {
			st, err := g.routing.Rep(rep)
			return st.SIPURI, err
		},
		Callback: g.voiceCallback,
	})
	if err != nil {
		return err
	}
	if g.voice.ua, err = sip.NewUA(cfg, g.log.With("part", "sip")); err != nil {
		return err
	}
	if err := g.voice.ua.RegisterMetrics(reg); err != nil {
		return err
	}
	g.voice.ua.HandleInbound(g.voice.inbound.Handle)
	g.log.Info("voice: SIP user agent listening", slog.String("addr", g.voice.ua.Addr()), slog.Int("trunks", len(cfg.Trunks)))
	if q := g.cfg.Routing.Router.QueueOf(sessions.ChannelVoice); q.Offer.AcceptTimeout == 0 {
		// Without offers a rep who does not pick up is not a miss and
		// no next rep is tried: the call overflows (channels/voice).
		g.log.Warn("voice: the voice queue assigns directly; give it offer.accept_timeout (the ring time) so an unanswered phone moves the call to the next rep",
			slog.String("queue", q.Name))
	}
	return nil
}

// dialerTrunk is the trunk dialer.trunk names: a SIP trunk of the voice
// section for "sip:<name>"; nil for the simulated one.
func (g *Gateway) dialerTrunk() (dialer.Trunk, error) {
	name, ok := strings.CutPrefix(g.cfg.Dialer.Trunk, config.TrunkSIPPrefix)
	if !ok {
		return nil, nil
	}
	if g.voice.ua == nil {
		return nil, fmt.Errorf("gateway: dialer.trunk %q needs the voice section", g.cfg.Dialer.Trunk)
	}
	return g.voice.ua.Trunk(name)
}

// voiceCallback asks for a rep to call back a caller whose call
// overflowed: a callback request on voice through the Sender (Reach),
// once per call.
func (g *Gateway) voiceCallback(ctx context.Context, customerID, callID string) error {
	if g.voice.sender == nil {
		return nil
	}
	_, err := g.voice.sender.Reach(ctx, g.store, channels.ReachRequest{
		CustomerID: customerID, Purpose: contact.PurposeService, Author: voice.AuthorVoice,
		Channels: []string{sessions.ChannelVoice},
		Message:  sessions.Message{Text: "Missed call: please call the customer back.", ClientID: "callback:" + callID},
	})
	return err
}

// closeVoice hangs up every call (BYE; each is recorded), waits for the
// adapter to record their ends, then stops following the store. Before
// the dialer stops and the store closes; safe to call twice.
func (g *Gateway) closeVoice() error {
	var err error
	if g.voice.ua != nil {
		err = g.voice.ua.Close()
		g.voice.ua = nil
	}
	if g.voice.inbound != nil {
		g.voice.inbound.Close()
		g.voice.inbound = nil
	}
	if g.voice.fan != nil {
		g.voice.fan.Close()
		g.voice.fan = nil
	}
	return err
}

// SIPAddr is the SIP user agent's address, host:port ("" without a voice
// section): where the trunks send inbound calls.
func (g *Gateway) SIPAddr() string {
	if g.voice.ua == nil {
		return ""
	}
	return g.voice.ua.Addr()
}
