package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/omnigate/omnigate/dialer"
)

// ErrClosed is returned by Dial after Close.
var ErrClosed = errors.New("sip: user agent closed")

// UA is the process's one SIP user agent: a sipgo transport, server and
// client on Config.Listen, and the calls it holds. It is a back-to-back
// user agent: the customer's and the rep's legs are both its own dialogs,
// so every state change of a call passes through it.
type UA struct {
	cfg    Config
	log    *slog.Logger
	ip     net.IP
	port   int
	sua    *sipgo.UserAgent
	srv    *sipgo.Server
	dua    *sipgo.DialogUA
	udp    net.PacketConn
	tcp    net.Listener
	trunks map[string]*trunk
	// bySource finds the trunk an inbound request comes from (its proxy's
	// IP); anything else is refused 403.
	bySource map[string]*trunk
	serveWG  sync.WaitGroup

	// mu guards legs and closed. Lock order: UA.mu before call.mu; a call
	// never takes UA.mu while holding its own.
	mu      sync.Mutex
	metrics *metrics

	legs    map[string]*leg // by SIP Call-ID, both legs of every call
	closed  bool
	inbound InboundHandler
	callWG  sync.WaitGroup
}

// NewUA listens on cfg.Listen and returns the running user agent. cfg
// must have been through LoadConfig or Prepare. A nil log discards.
func NewUA(cfg Config, log *slog.Logger) (*UA, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &UA{cfg: cfg, log: log, trunks: map[string]*trunk{}, bySource: map[string]*trunk{}, legs: map[string]*leg{}, metrics: newMetrics()}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	u.ip = net.ParseIP(host).To4()
	if u.ip == nil {
		return nil, fmt.Errorf("sip: listen %q: want an IPv4 address", cfg.Listen)
	}
	needTCP := false
	for name, tc := range cfg.Trunks {
		h, p, _ := net.SplitHostPort(tc.Proxy)
		port, _ := strconv.Atoi(p)
		t := &trunk{name: name, ua: u, cfg: tc, host: h, port: port,
			lim: newLimiter(tc.CallsPerSecond, tc.MaxCalls, time.Now)}
		u.trunks[name] = t
		ips, err := net.LookupIP(h)
		if err != nil {
			log.Warn("sip: trunk proxy does not resolve; its inbound calls will be refused 403", "trunk", name, "error", err)
		}
		for _, ip := range ips {
			u.bySource[ip.String()] = t
		}
		needTCP = needTCP || tc.Transport == "tcp"
	}
	var err error
	if u.udp, u.tcp, err = listen(cfg.Listen, needTCP); err != nil {
		return nil, err
	}
	u.port = u.udp.LocalAddr().(*net.UDPAddr).Port
	if u.sua, err = sipgo.NewUA(sipgo.WithUserAgent("omnigate"), sipgo.WithUserAgentHostname(host),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(log)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(log))); err != nil {
		return nil, u.closeSockets(err)
	}
	if u.srv, err = sipgo.NewServer(u.sua, sipgo.WithServerLogger(log)); err != nil {
		return nil, u.closeSockets(err)
	}
	cli, err := sipgo.NewClient(u.sua, sipgo.WithClientHostname(host), sipgo.WithClientPort(u.port), sipgo.WithClientLogger(log))
	if err != nil {
		return nil, u.closeSockets(err)
	}
	u.dua = &sipgo.DialogUA{Client: cli, ContactHDR: sip.ContactHeader{
		Address: sip.Uri{Scheme: "sip", User: "omnigate", Host: host, Port: u.port},
	}}
	u.srv.OnInvite(u.onInvite)
	u.srv.OnBye(u.onBye)
	u.srv.OnAck(u.onAck)
	u.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	u.serveWG.Add(1)
	go func() { defer u.serveWG.Done(); _ = u.srv.ServeUDP(u.udp) }()
	if u.tcp != nil {
		u.serveWG.Add(1)
		go func() { defer u.serveWG.Done(); _ = u.srv.ServeTCP(u.tcp) }()
	}
	// Requests are bound to the listening socket (bindUDP), which sipgo
	// only knows once its reader has registered it: wait for that, so the
	// first Dial does not try to bind the port a second time.
	for i := 0; ; i++ {
		if c, _ := u.sua.TransportLayer().GetConnection("udp", u.Addr()); c != nil {
			break
		}
		if i == 1000 {
			_ = u.Close()
			return nil, errors.New("sip: user agent: transport did not start")
		}
		time.Sleep(time.Millisecond)
	}
	return u, nil
}

// listen opens the UDP socket and, when a trunk needs it, TCP on the same
// port. With port 0 the kernel picks a free UDP port that may be taken
// for TCP: then another is tried.
func listen(addr string, withTCP bool) (net.PacketConn, net.Listener, error) {
	host, port, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		udp, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("sip: listen: %w", err)
		}
		if !withTCP {
			return udp, nil, nil
		}
		p := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
		tcp, err := net.Listen("tcp4", net.JoinHostPort(host, p))
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if port != "0" || try == 10 {
			return nil, nil, fmt.Errorf("sip: listen tcp: %w", err)
		}
	}
}

func (u *UA) closeSockets(err error) error {
	u.udp.Close()
	if u.tcp != nil {
		u.tcp.Close()
	}
	return fmt.Errorf("sip: user agent: %w", err)
}

// bindUDP makes a UDP request leave from the listening socket, the port
// in its Via and Contact, so replies and NAT bindings meet one socket
// (sipgo would otherwise open an ephemeral one per destination).
func (u *UA) bindUDP(req *sip.Request) {
	if req.Transport() == "UDP" {
		req.Laddr = sip.Addr{IP: u.ip, Port: u.port}
	}
}

// Addr is the UA's SIP address, host:port (the chosen port when Listen
// said 0).
func (u *UA) Addr() string { return net.JoinHostPort(u.ip.String(), strconv.Itoa(u.port)) }

// Trunk returns the named trunk as the dialer's Trunk.
func (u *UA) Trunk(name string) (dialer.Trunk, error) {
	t, ok := u.trunks[name]
	if !ok {
		return nil, fmt.Errorf("sip: no trunk %q", name)
	}
	return t, nil
}

// Close hangs up every call (BYE when up, CANCEL while ringing; each
// call's Progress ends with HungUpBy "gateway", which is how the dialer
// records it), waits for the calls to finish, then stops the transport.
// No call goroutine, socket or dialog is left when it returns.
func (u *UA) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	calls := map[*call]bool{}
	for _, l := range u.legs {
		calls[l.call] = true
	}
	u.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for c := range calls {
		u.log.Info("sip: closing with call up", "call_id", c.id)
		_ = c.Hangup(ctx)
	}
	u.callWG.Wait()
	err := u.sua.Close()
	u.udp.Close()
	if u.tcp != nil {
		u.tcp.Close()
	}
	u.serveWG.Wait()
	return err
}

// addLeg registers a leg's Call-ID so in-dialog requests find it; false
// when the UA is closed or the id is taken (a duplicate attempt id).
func (u *UA) addLeg(l *leg) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return ErrClosed
	}
	if _, dup := u.legs[l.callID]; dup {
		return fmt.Errorf("sip: call %s already up", l.callID)
	}
	u.legs[l.callID] = l
	return nil
}

func (u *UA) removeLeg(l *leg) {
	u.mu.Lock()
	if u.legs[l.callID] == l {
		delete(u.legs, l.callID)
	}
	u.mu.Unlock()
}

func (u *UA) leg(callID string) *leg {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.legs[callID]
}

// onBye ends the call whose leg the BYE is for: the other leg is hung up
// and the call's Progress says who hung up.
func (u *UA) onBye(req *sip.Request, tx sip.ServerTransaction) {
	l := u.leg(req.CallID().Value())
	if l == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	l.call.remoteBye(l, req, tx)
}

// Stats is a snapshot of the calls up, for metrics and load tests.
type Stats struct {
	// Calls is the number of calls up (ringing, answered or bridged).
	Calls int
	// ToRep and ToCustomer count the RTP packets relayed so far by the
	// calls up, each way.
	ToRep, ToCustomer int64
}

// Stats sums the calls up.
func (u *UA) Stats() Stats {
	u.mu.Lock()
	defer u.mu.Unlock()
	var s Stats
	for _, l := range u.legs {
		if l.role != byCustomer {
			continue
		}
		s.Calls++
		s.ToRep += l.call.relay.toRep.Load()
		s.ToCustomer += l.call.relay.toCust.Load()
	}
	return s
}
