package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Hard caps. They keep a typo from turning a benchmark into an outage of
// the machine, which other people share: a visitor socket costs a file
// descriptor on each side, and the defaults already reach the issue's
// targets.
const (
	maxConns    = 20000
	maxRate     = 10000
	maxDuration = 2 * time.Minute
	maxWarmup   = time.Minute
	maxDialers  = 1000
	maxCrashes  = 10
	maxReps     = 500
	// connectTimeout bounds opening every socket.
	connectTimeout = 3 * time.Minute
	// drainTimeout bounds the wait for messages still in flight when
	// sending stops.
	drainTimeout = 15 * time.Second
)

type options struct {
	conns      int
	rate       int
	duration   time.Duration
	warmup     time.Duration
	dialers    int
	gatewayBin string
	target     string
	site       string
	origin     string
	repToken   string
	gatewayPID int
	perSecond  bool
	crash      int // SIGKILLs in a crash run; 0 is a load run
	inboxReps  int // rep sockets of the inbox feed run
}

func (o options) validate() error {
	var errs []error
	if o.conns < 1 || o.conns > maxConns {
		errs = append(errs, fmt.Errorf("-conns %d is not between 1 and %d", o.conns, maxConns))
	}
	if o.rate < 1 || o.rate > maxRate {
		errs = append(errs, fmt.Errorf("-rate %d is not between 1 and %d", o.rate, maxRate))
	}
	if o.duration <= 0 || o.duration > maxDuration {
		errs = append(errs, fmt.Errorf("-duration %v is not between 0 and %v", o.duration, maxDuration))
	}
	if o.warmup < 0 || o.warmup > maxWarmup {
		errs = append(errs, fmt.Errorf("-warmup %v is not between 0 and %v", o.warmup, maxWarmup))
	}
	if o.dialers < 1 || o.dialers > maxDialers {
		errs = append(errs, fmt.Errorf("-dial-concurrency %d is not between 1 and %d", o.dialers, maxDialers))
	}
	if o.crash < 0 || o.crash > maxCrashes {
		errs = append(errs, fmt.Errorf("-crash %d is not between 0 and %d", o.crash, maxCrashes))
	}
	if o.crash > 0 && o.target != "" {
		errs = append(errs, errors.New("-crash kills and restarts the gateway it starts: not with -target"))
	}
	if o.inboxReps < 0 || o.inboxReps > maxReps {
		errs = append(errs, fmt.Errorf("-inbox-reps %d is not between 0 and %d", o.inboxReps, maxReps))
	}
	if o.inboxReps > 0 && (o.target != "" || o.crash > 0) {
		errs = append(errs, errors.New("-inbox-reps needs the gateway loadgen starts, in a load run"))
	}
	if o.target != "" {
		if _, err := loopbackURL(o.target); err != nil {
			errs = append(errs, err)
		}
		if o.repToken == "" {
			errs = append(errs, errors.New("-target needs -rep-token"))
		}
		if o.gatewayBin != "" {
			errs = append(errs, errors.New("-target and -gateway-bin exclude each other"))
		}
	} else if o.repToken != "" || o.gatewayPID != 0 {
		errs = append(errs, errors.New("-rep-token and -gateway-pid are for -target"))
	}
	return errors.Join(errs...)
}

// deadline bounds the whole run; each restart of a crash run may take
// up to waitReady's 30 seconds.
func (o options) deadline() time.Duration {
	return time.Minute + connectTimeout + o.warmup + o.duration + drainTimeout + time.Minute + time.Duration(o.crash)*30*time.Second
}

// loopbackURL parses a gateway base URL and refuses anything but plain
// HTTP to a loopback address.
func loopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("-target %q is not http://host:port", raw)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		u.Host = net.JoinHostPort("127.0.0.1", u.Port())
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("-target %q is not a loopback address: loadgen only loads this machine", raw)
	}
	if u.Port() == "" {
		return nil, fmt.Errorf("-target %q has no port", raw)
	}
	u.Path = ""
	return u, nil
}
