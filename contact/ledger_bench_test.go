package contact

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/testredis"
	bolt "go.etcd.io/bbolt"
)

// The speed targets: with 100,000 customers in the ledger, at
// least 100,000 checks/s in process with p99 under 100µs, and at least
// 10,000 checks/s through Valkey. Run:
//
//	go test -run XXX -bench LedgerClaim -benchtime 2s ./contact/
//
// Each op is one Claim for a random customer under the limits a sales
// campaign would pass; p99-µs is the 99th percentile of one Claim's
// latency and recorded/op the share that passed (the rest found a limit
// reached, which Bolt answers without a write).

const benchCustomers = 100_000

// benchNow is when the benchmark's claims happen; the ledger holds a
// month of touches before it.
var benchNow = t0.Add(30 * day)

var benchLimits = []Limit{
	{Name: "frequency_cap", Purpose: "sales", Channel: "voice", Window: 7 * day, Max: 1},
	{Name: "frequency_cap", Purpose: "sales", Window: 30 * day, Max: 3},
	{Name: "abandoned_lockout", Outcome: "abandoned", Window: 72 * time.Hour},
}

// benchHistory is the month before benchNow for customer i: two touches.
func benchHistory(i int) []Touch {
	c := "cus_" + strconv.Itoa(i)
	r := rand.New(rand.NewPCG(uint64(i), 0))
	var h []Touch
	for j, ch := range []string{"voice", "sms"} {
		u := out(c+"-h"+strconv.Itoa(j), c, t0.Add(time.Duration(r.Int64N(int64(30*day)))))
		u.Channel = ch
		if r.IntN(20) == 0 {
			u.Outcome = "abandoned"
		}
		h = append(h, u)
	}
	return h
}

func BenchmarkLedgerClaim(b *testing.B) {
	ctx := context.Background()
	b.Run("memory", func(b *testing.B) {
		l := NewMemoryLedger(LedgerOptions{})
		for i := range benchCustomers {
			for _, u := range benchHistory(i) {
				if err := l.Record(ctx, u); err != nil {
					b.Fatal(err)
				}
			}
		}
		benchClaims(b, l, 0)
	})
	b.Run("bolt", func(b *testing.B) {
		l, err := OpenBoltLedger(filepath.Join(b.TempDir(), "contact.db"), LedgerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		// One transaction for the fill: a Record each would be 200,000
		// fsyncs.
		err = l.db.Update(func(tx *bolt.Tx) error {
			for i := range benchCustomers {
				for _, u := range benchHistory(i) {
					u, _ = normalizeTouch(u)
					if err := boltPut(tx, u.CustomerID, u, time.Time{}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		// Claims that record wait for an fsync; many in flight share
		// one (Batch), as a gateway's concurrent requests would.
		benchClaims(b, l, 32)
	})
	b.Run("valkey", func(b *testing.B) {
		l, err := NewValkeyLedger(valkeyClient(b, testredis.Addr(b)), testPrefix(), LedgerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Go(func() {
				for i := w; i < benchCustomers; i += 32 {
					for _, u := range benchHistory(i) {
						if err := l.Record(ctx, u); err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		// Many claims in flight, as many gateway requests would be:
		// valkey-go pipelines them on its connection.
		benchClaims(b, l, 16)
	})
}

// benchClaims runs b.N claims from parallel goroutines (parallelism per
// GOMAXPROCS, 0 for the default) and reports their p99 latency.
func benchClaims(b *testing.B, l Ledger, parallelism int) {
	ctx := context.Background()
	var seq, recorded atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	if parallelism > 0 {
		b.SetParallelism(parallelism)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(uint64(seq.Add(1)), 1))
		mine := make([]time.Duration, 0, 1024)
		for pb.Next() {
			n := seq.Add(1)
			c := "cus_" + strconv.Itoa(r.IntN(benchCustomers))
			u := out("b"+strconv.FormatInt(n, 10), c, benchNow.Add(time.Duration(n)*time.Millisecond))
			if r.IntN(2) == 0 {
				u.Channel = "voice"
			}
			start := time.Now()
			cl, err := l.Claim(ctx, u, benchLimits)
			mine = append(mine, time.Since(start))
			if err != nil {
				b.Error(err)
				return
			}
			if cl.Recorded {
				recorded.Add(1)
			}
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(recorded.Load())/float64(len(lat)), "recorded/op")
}
