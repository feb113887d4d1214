// Command sipload measures the SIP trunk on loopback against SIPp: call
// setups per second (INVITE to 200/ACK, then BYE) and bridged calls with
// media (memory per call, the delay from the customer's answer to the
// rep's leg being up). It starts its SIPp processes and stops them by
// PID. Not part of CI; the README's "Voice over SIP" section quotes it.
//
//	go run ./dialer/sip/cmd/sipload -mode setup -rate 300 -seconds 10
//	go run ./dialer/sip/cmd/sipload -mode bridge -calls 300 -hold 4s
//	go run ./dialer/sip/cmd/sipload -mode inbound -rate 100 -calls 1000 -hold 2s
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnigate/omnigate/dialer"
	"github.com/omnigate/omnigate/dialer/sip"
)

func main() {
	mode := flag.String("mode", "setup", "setup (signalling rate), bridge (concurrent calls with media) or inbound (caller INVITE to rep INVITE delay)")
	rate := flag.Int("rate", 250, "setup, inbound: calls started per second")
	seconds := flag.Int("seconds", 10, "setup: how long to dial")
	calls := flag.Int("calls", 300, "bridge: concurrent bridged calls; inbound: calls in all")
	hold := flag.Duration("hold", 4*time.Second, "bridge, inbound: how long every call stays bridged")
	testdata := flag.String("testdata", "dialer/sip/testdata", "the SIPp scenarios")
	flag.Parse()

	switch *mode {
	case "setup":
		cust := startSIPp(*testdata+"/rep_answer.xml", false)
		defer stop(cust)
		runSetup(newUA(cust.addr, *rate*2, *rate**seconds), *rate, *seconds)
	case "bridge":
		cust := startSIPp(*testdata+"/customer_answer.xml", false)
		defer stop(cust)
		rep := startSIPp(*testdata+"/rep_answer.xml", true)
		defer stop(rep)
		runBridge(newUA(cust.addr, 1000, *calls), rep.addr, *calls, *hold)
	case "inbound":
		rep := startSIPp(*testdata+"/rep_answer.xml", true)
		defer stop(rep)
		runInbound(newUA("127.0.0.1:5060", *rate*2, *calls), rep.addr, *testdata+"/caller.xml", *rate, *calls, *hold)
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
}

func newUA(proxy string, cps, maxCalls int) *sip.UA {
	cfg := sip.Config{Listen: "127.0.0.1:0", Trunks: map[string]sip.TrunkConfig{"load": {
		Proxy: proxy, FromUser: "omnigate", CallsPerSecond: cps, MaxCalls: maxCalls}}}
	if err := cfg.Prepare(os.Getenv); err != nil {
		log.Fatal(err)
	}
	u, err := sip.NewUA(cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	return u
}

// runSetup starts rate calls a second; each is hung up as soon as it is
// answered. It reports the answered calls per second and the INVITE to
// answer latency.
func runSetup(u *sip.UA, rate, seconds int) {
	defer u.Close()
	tr, _ := u.Trunk("load")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []time.Duration
	var failed, busy atomic.Int64
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range rate * seconds {
		<-tick.C
		sent := time.Now()
		c, err := tr.Dial(context.Background(), dialer.Dial{AttemptID: "load-" + strconv.Itoa(i), To: "+15550100", RingTimeout: 10 * time.Second})
		if err != nil {
			busy.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range c.Events() {
				switch p.Kind {
				case dialer.ProgressAnswered:
					mu.Lock()
					lat = append(lat, p.At.Sub(sent))
					mu.Unlock()
					_ = c.Hangup(context.Background())
				case dialer.ProgressEnded:
					if p.Outcome != dialer.OutcomeAnswered {
						failed.Add(1)
					}
				}
			}
		}()
	}
	dialing := time.Since(start)
	wg.Wait()
	total := time.Since(start)
	fmt.Printf("setup: %d calls offered at %d/s over %v; %d answered and hung up in %v (%.0f setups/s); %d failed, %d refused busy\n",
		rate*seconds, rate, dialing.Round(time.Millisecond), len(lat), total.Round(time.Millisecond),
		float64(len(lat))/dialing.Seconds(), failed.Load(), busy.Load())
	fmt.Printf("INVITE to 200/ACK: %s\n", percentiles(lat))
}

// runBridge brings calls up to n concurrent bridged calls with RTP both
// ways (the customer SIPp plays a pcap, the rep SIPp echoes), holds
// them, and reports memory per call and the answer to rep-up delay.
func runBridge(u *sip.UA, repAddr string, n int, hold time.Duration) {
	defer u.Close()
	tr, _ := u.Trunk("load")
	runtime.GC()
	before := rss()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		delays  []time.Duration
		up      atomic.Int64
		callsUp []dialer.Call
	)
	for i := range n {
		c, err := tr.Dial(context.Background(), dialer.Dial{AttemptID: "bridge-" + strconv.Itoa(i), To: "+15550100", RingTimeout: 10 * time.Second})
		if err != nil {
			log.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range c.Events() {
				if p.Kind != dialer.ProgressAnswered {
					continue
				}
				if err := c.Bridge(context.Background(), dialer.RepLeg{ID: "rep", URI: "sip:rep@" + repAddr}); err != nil {
					log.Printf("bridge: %v", err)
					continue
				}
				mu.Lock()
				delays = append(delays, time.Since(p.At))
				callsUp = append(callsUp, c)
				mu.Unlock()
				up.Add(1)
			}
		}()
		time.Sleep(5 * time.Millisecond) // 200 calls/s ramp
	}
	for up.Load() < int64(n) {
		time.Sleep(50 * time.Millisecond)
	}
	s0, d0 := u.Stats(), ownUDPDrops()
	time.Sleep(hold)
	s1, d1 := u.Stats(), ownUDPDrops()
	runtime.ReadMemStats(&ms)
	during := rss()
	fmt.Printf("bridge: %d calls bridged, held %v; RTP relayed %.0f packets/s to reps, %.0f/s back to customers; goroutines %d\n",
		up.Load(), hold, float64(s1.ToRep-s0.ToRep)/hold.Seconds(), float64(s1.ToCustomer-s0.ToCustomer)/hold.Seconds(), runtime.NumGoroutine())
	fmt.Printf("kernel UDP drops on this process's sockets (the relay's) during the hold: %d\n", d1-d0)
	fmt.Printf("memory: RSS %d KiB -> %d KiB, %.1f KiB per call; heap in use %.1f KiB per call\n",
		before, during, float64(during-before)/float64(n), float64(ms.HeapInuse-heapBefore)/1024/float64(n))
	fmt.Printf("customer answered -> rep leg up (rep INVITE, its 200, ACK): %s\n", percentiles(delays))
	for _, c := range callsUp {
		_ = c.Hangup(context.Background())
	}
	wg.Wait()
}

// runInbound has SIPp call the UA at rate; each call rings and is
// connected to the rep SIPp at once. It reports the delay from the
// caller's INVITE arriving to the rep's INVITE leaving.
func runInbound(u *sip.UA, repAddr, scenario string, rate, n int, hold time.Duration) {
	defer u.Close()
	var mu sync.Mutex
	var delays []time.Duration
	var failed atomic.Int64
	u.HandleInbound(func(ctx context.Context, ic *sip.InboundCall) {
		_ = ic.Ring()
		if err := ic.Connect(ctx, dialer.RepLeg{ID: "rep", URI: "sip:rep@" + repAddr}, 5*time.Second); err != nil {
			failed.Add(1)
			return
		}
		mu.Lock()
		delays = append(delays, ic.SetupDelay())
		mu.Unlock()
	})
	port, mport := freePort(), freePort()
	cmd := exec.Command("/usr/bin/sipp", "-sf", scenario, u.Addr(), "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(mport), "-r", strconv.Itoa(rate), "-m", strconv.Itoa(n),
		"-d", strconv.FormatInt(hold.Milliseconds(), 10), "-nostdin", "-trace_err", "-error_file", os.DevNull, "-max_socket", "2000")
	start := time.Now()
	err := cmd.Run() // SIPp exits when its n calls are done; non-zero if any failed
	fmt.Printf("inbound: %d calls at %d/s, held %v, in %v; SIPp: %v; %d not connected\n", n, rate, hold, time.Since(start).Round(time.Millisecond), err, failed.Load())
	fmt.Printf("caller INVITE in -> rep INVITE out: %s\n", percentiles(delays))
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	slices.Sort(d)
	at := func(q float64) time.Duration {
		return d[min(len(d)-1, int(q*float64(len(d))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %v p90 %v p99 %v max %v (n=%d)", at(0.5), at(0.9), at(0.99), d[len(d)-1].Round(10*time.Microsecond), len(d))
}

// ownUDPDrops sums the kernel's drop counters (/proc/net/udp) of the UDP
// sockets this process holds: packets lost because the relay did not
// read them in time.
func ownUDPDrops() int64 {
	mine := map[string]bool{}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	b, _ := os.ReadFile("/proc/net/udp")
	var drops int64
	for _, l := range strings.Split(string(b), "\n")[1:] {
		// sl local rem st queues tr retrnsmt uid timeout inode ref pointer drops
		if f := strings.Fields(l); len(f) >= 13 && mine[f[9]] {
			n, _ := strconv.ParseInt(f[12], 10, 64)
			drops += n
		}
	}
	return drops
}

// rss is the process's resident set in KiB.
func rss() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

type sipp struct {
	cmd  *exec.Cmd
	addr string
}

// startSIPp runs a UAS scenario on a free loopback port until stopped.
func startSIPp(scenario string, echo bool) *sipp {
	port, mport := freePort(), freePort()
	args := []string{"-sf", scenario, "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-mi", "127.0.0.1",
		"-mp", strconv.Itoa(mport), "-nostdin", "-trace_err", "-error_file", os.DevNull, "-max_socket", "2000"}
	if echo {
		args = append(args, "-rtp_echo")
	}
	cmd := exec.Command("/usr/bin/sipp", args...)
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // SIPp binds before it reads its scenario's first message
	return &sipp{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port)}
}

func stop(s *sipp) {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

func freePort() int {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
