package sip

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// relay carries one call's RTP. It owns two UDP sockets, one facing the
// customer and one facing the rep, and forwards every packet from one to
// the other's remote address untouched (both legs use one codec, so no
// transcoding and no jitter buffer: the phones have their own).
//
// Why not diago's Bridge: it decodes each leg into audio readers and
// writers and re-packetises (its RTP pass-through is a TODO), and a diago
// dialog session per leg owns its own SIP dialog; a B2BUA that holds both
// legs in one call object and must scale to hundreds of bridged calls
// needs neither.
//
// Concurrency: one reader goroutine per socket; addresses are atomics so
// Bridge can point the relay at the rep while packets flow.
type relay struct {
	cust *net.UDPConn
	// rep is swapped by Bridge (a failed rep's socket is closed and a
	// later Bridge opens another) while the customer's reader uses it.
	rep     atomic.Pointer[net.UDPConn]
	custDst atomic.Pointer[net.UDPAddr]
	repDst  atomic.Pointer[net.UDPAddr]

	// Counters for tests and the benchmark: packets forwarded each way,
	// and packets the customer sent while no rep leg was up (an echo of
	// the played message in the tests).
	toRep, toCust, custUnrelayed atomic.Int64
	firstFromCust                atomic.Int64 // unix nanos

	wg sync.WaitGroup
}

// newRelay opens the customer socket on ip (port chosen by the kernel).
func newRelay(ip net.IP) (*relay, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
	if err != nil {
		return nil, err
	}
	r := &relay{cust: c}
	r.wg.Add(1)
	go r.pump(c, &r.repDst, &r.toRep, true)
	return r, nil
}

func (r *relay) custPort() int { return r.cust.LocalAddr().(*net.UDPAddr).Port }

// openRep opens the rep-facing socket and its reader; called once, by
// Bridge, before the rep's INVITE is sent.
func (r *relay) openRep(ip net.IP) error {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
	if err != nil {
		return err
	}
	r.rep.Store(c)
	r.wg.Add(1)
	go r.pump(c, &r.custDst, &r.toCust, false)
	return nil
}

func (r *relay) repPort() int { return r.rep.Load().LocalAddr().(*net.UDPAddr).Port }

// closeRep drops a rep leg that did not come up; its reader ends.
func (r *relay) closeRep() {
	r.repDst.Store(nil)
	if c := r.rep.Swap(nil); c != nil {
		c.Close()
	}
}

// pump forwards what arrives on in to dst through the opposite socket.
func (r *relay) pump(in *net.UDPConn, dst *atomic.Pointer[net.UDPAddr], n *atomic.Int64, fromCust bool) {
	defer r.wg.Done()
	buf := make([]byte, 1500)
	for {
		m, _, err := in.ReadFromUDP(buf)
		if err != nil {
			return // socket closed by close()
		}
		if fromCust {
			r.firstFromCust.CompareAndSwap(0, time.Now().UnixNano())
		}
		to := dst.Load()
		if to == nil {
			if fromCust {
				r.custUnrelayed.Add(1)
			}
			continue
		}
		out := r.cust
		if fromCust {
			if out = r.rep.Load(); out == nil {
				continue
			}
		}
		if _, err := out.WriteToUDP(buf[:m], to); err == nil {
			n.Add(1)
		}
	}
}

// play sends payload to the customer as RTP, 20 ms a packet at real-time
// pace, until it is all sent or ctx ends.
func (r *relay) play(ctx context.Context, payload []byte, pt uint8) error {
	to := r.custDst.Load()
	if to == nil {
		return nil
	}
	hdr := make([]byte, 12, 12+samplesPerPacket)
	hdr[0] = 0x80
	ssrc, seq, ts := rand.Uint32(), uint16(rand.Uint32()), rand.Uint32()
	binary.BigEndian.PutUint32(hdr[8:], ssrc)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(payload); i += samplesPerPacket {
		hdr[1] = pt
		if i == 0 {
			hdr[1] |= 0x80 // marker: start of a talkspurt
		}
		binary.BigEndian.PutUint16(hdr[2:], seq)
		binary.BigEndian.PutUint32(hdr[4:], ts)
		pkt := append(hdr[:12], payload[i:min(i+samplesPerPacket, len(payload))]...)
		if _, err := r.cust.WriteToUDP(pkt, to); err != nil {
			return err
		}
		seq++
		ts += samplesPerPacket
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// close stops both readers and waits for them.
func (r *relay) close() {
	r.cust.Close()
	r.closeRep()
	r.wg.Wait()
}
