package sip

import (
	"net"
	"testing"
	"time"
)

// BenchmarkRelayForward measures one call's relay alone: packets of a
// 20 ms G.711 frame from the customer's side forwarded to the rep's,
// as fast as a sender on loopback can push them. 300 bridged calls need
// 15,000 packets/s each way in all.
func BenchmarkRelayForward(b *testing.B) {
	lo := net.IPv4(127, 0, 0, 1)
	r, err := newRelay(lo)
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	if err := r.openRep(lo); err != nil {
		b.Fatal(err)
	}
	sink, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: lo})
	defer sink.Close()
	r.repDst.Store(sink.LocalAddr().(*net.UDPAddr))
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sink.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()
	phone, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: lo})
	defer phone.Close()
	to := r.cust.LocalAddr().(*net.UDPAddr)
	pkt := make([]byte, 12+samplesPerPacket)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		_, _ = phone.WriteToUDP(pkt, to)
	}
	// Wait for the relay to drain: until the count stops moving.
	for last := int64(-1); r.toRep.Load() != last; {
		last = r.toRep.Load()
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(r.toRep.Load())/time.Since(start).Seconds(), "forwarded/s")
	b.ReportMetric(100*(1-float64(r.toRep.Load())/float64(b.N)), "%lost")
}
