package sessions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/internal/testredis"
)

// testPrefix keeps each store's keys and feed apart on a shared server.
func testPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "ogtest" + hex.EncodeToString(b[:])
}

// openValkey opens a store under prefix (a fresh one when empty); its keys
// are deleted when the test ends.
func openValkey(tb testing.TB, addr, prefix string) *ValkeyStore {
	tb.Helper()
	if prefix == "" {
		prefix = testPrefix()
		tb.Cleanup(func() { dropPrefix(tb, addr, prefix) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := OpenValkey(ctx, ValkeyOptions{Addrs: []string{addr}, KeyPrefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// rawValkey is a plain client for poking at the server behind a store.
func rawValkey(tb testing.TB, addr string) valkey.Client {
	tb.Helper()
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

func dropPrefix(tb testing.TB, addr, prefix string) {
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		tb.Logf("cleaning up %s: %v", prefix, err)
		return
	}
	defer c.Close()
	ctx := context.Background()
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(prefix+":*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			tb.Logf("cleaning up %s: %v", prefix, err)
			return
		}
		if len(e.Elements) > 0 {
			c.Do(ctx, c.B().Unlink().Key(e.Elements...).Build())
		}
		if cursor = e.Cursor; cursor == 0 {
			return
		}
	}
}

func TestValkeyConformance(t *testing.T) {
	addr := testredis.Addr(t)
	runConformance(t, func(t *testing.T) Store {
		prefix := testPrefix()
		t.Cleanup(func() { dropPrefix(t, addr, prefix) })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := OpenValkey(ctx, ValkeyOptions{Addrs: []string{addr}, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s // runConformance closes it
	})
}

func TestValkeyOptions(t *testing.T) {
	ctx := context.Background()
	for _, opts := range []ValkeyOptions{
		{KeyPrefix: "og{x}"},
		{KeyPrefix: "og x"},
		{DB: -1},
	} {
		if _, err := OpenValkey(ctx, opts); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", opts, err)
		}
	}
	// Nothing listens on port 1.
	if _, err := OpenValkey(ctx, ValkeyOptions{Addrs: []string{"127.0.0.1:1"}}); err == nil {
		t.Error("opened a store on a closed port")
	}
}

// Two stores on one prefix are two gateway nodes: each sees what the other
// appends, in order.
func TestValkeyFeedAcrossNodes(t *testing.T) {
	addr := testredis.Addr(t)
	prefix := testPrefix()
	t.Cleanup(func() { dropPrefix(t, addr, prefix) })
	a, b := openValkey(t, addr, prefix), openValkey(t, addr, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	c := newCustomer(t, a)
	for i := range 50 {
		mustAppend(t, a, msg(c.ID, strconv.Itoa(i)))
	}
	for want := uint64(1); want <= 50; want++ {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
			if ev.Seq != want || ev.CustomerID != c.ID {
				t.Fatalf("node b got %s/%d, want %s/%d", ev.CustomerID, ev.Seq, c.ID, want)
			}
		case <-ctx.Done():
			t.Fatalf("waiting for seq %d on node b", want)
		}
	}
	if got, err := b.Customer(ctx, c.ID); err != nil || got.ID != c.ID {
		t.Fatalf("node b reads the customer: %+v %v", got, err)
	}
}

// Losing the pub/sub connection cuts subscribers off with ErrSlow, and the
// feed comes back by itself. It kills connections server-wide, so it runs
// on a server of its own.
func TestValkeyFeedReconnect(t *testing.T) {
	addr := testredis.Start(t)
	s := openValkey(t, addr, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := s.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawValkey(t, addr)
	if err := raw.Do(ctx, raw.B().ClientKill().TypePubsub().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-sub.Events():
		if ok {
			t.Fatal("an event arrived; want the subscription cut off")
		}
	case <-ctx.Done():
		t.Fatal("subscription not cut off after its connection was killed")
	}
	if !errors.Is(sub.Err(), ErrSlow) {
		t.Fatalf("Err = %v, want ErrSlow", sub.Err())
	}

	// A subscriber that joins while the feed is down is cut off when it
	// comes back, so retry until one lasts, as Follow does.
	c := newCustomer(t, s)
	for i := 0; ; i++ {
		sub, err := s.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ev := mustAppend(t, s, msg(c.ID, "after-"+strconv.Itoa(i)))
		select {
		case got, ok := <-sub.Events():
			if ok && got.Seq == ev.Seq {
				sub.Close()
				return
			}
			if ok {
				t.Fatalf("got seq %d, want %d", got.Seq, ev.Seq)
			}
		case <-ctx.Done():
			t.Fatal("feed did not come back")
		}
		sub.Close()
	}
}

// A merge stopped after its first step (from frozen, nothing copied) is
// finished by calling Merge again; from refuses writes meanwhile.
func TestValkeyMergeResumes(t *testing.T) {
	s := openValkey(t, testredis.Addr(t), "")
	ctx := context.Background()
	into := newCustomer(t, s)
	fromPhone := nextPhone()
	from, _, err := s.ResolveCustomer(ctx, fromPhone, Customer{Name: "Chen Jing"})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, msg(from.ID, "a"))
	cv, _, err := s.OpenConversation(ctx, from.ID, "refund", ChannelSMS)
	if err != nil {
		t.Fatal(err)
	}
	status, _, err := s.run(ctx, valkeyMergeFreeze, []string{s.keys(from.ID).cus}, []string{into.ID, formatTime(time.Now())})
	if err != nil || status != "ok" {
		t.Fatalf("freeze: %q %v", status, err)
	}
	if _, _, err := s.Append(ctx, msg(from.ID, "b")); !errors.Is(err, ErrMerged) {
		t.Fatalf("append to a customer being merged: %v", err)
	}
	// from's identities still point at it; readers follow the merge.
	if c, created, err := s.ResolveCustomer(ctx, fromPhone, Customer{}); err != nil || created || c.ID != into.ID {
		t.Fatalf("resolve during the merge = %s created=%v %v, want %s", c.ID, created, err, into.ID)
	}
	ev, err := s.Merge(ctx, into.ID, from.ID, "phone_proven", "system")
	if err != nil {
		t.Fatalf("resumed merge: %v", err)
	}
	if ev.Seq != 1 || ev.Kind != KindMerged {
		t.Fatalf("merge event %+v", ev)
	}
	tl := timeline(t, s, into.ID)
	checkGapFree(t, tl)
	if len(tl) != 3 || tl[1].Origin != from.ID+"/1" || tl[2].Origin != from.ID+"/2" {
		t.Fatalf("into's timeline = %+v", tl)
	}
	got, err := s.Conversation(ctx, cv.ID)
	if err != nil || got.CustomerID != into.ID || got.LastSeq != 3 {
		t.Fatalf("moved conversation = %+v %v", got, err)
	}
	ids, err := s.Identities(ctx, from.ID)
	if err != nil || len(ids) != 0 {
		t.Fatalf("from still has identities %+v %v", ids, err)
	}
	if _, err := s.Merge(ctx, into.ID, from.ID, "phone_proven", "system"); !errors.Is(err, ErrMerged) {
		t.Fatalf("merge after it finished: %v", err)
	}
}

// A customer with nothing on its timeline merges with no copies and no
// first_seq.
func TestValkeyMergeEmptyTimeline(t *testing.T) {
	s := openValkey(t, testredis.Addr(t), "")
	ctx := context.Background()
	into, from := newCustomer(t, s), newCustomer(t, s)
	ev, err := s.Merge(ctx, into.ID, from.ID, "admin:root", "rep:admin")
	if err != nil {
		t.Fatal(err)
	}
	var m Merge
	if err := json.Unmarshal(ev.Payload, &m); err != nil || m.Copied != 0 || m.FirstSeq != 0 || ev.Seq != 1 || ev.Author != "rep:admin" {
		t.Fatalf("merge event %+v payload %s %v", ev, ev.Payload, err)
	}
	if tl := timeline(t, s, into.ID); len(tl) != 1 || tl[0].ID != ev.ID {
		t.Fatalf("into's timeline = %+v", tl)
	}
	ids, err := s.Identities(ctx, into.ID)
	if err != nil || len(ids) != 2 {
		t.Fatalf("into's identities = %+v %v", ids, err)
	}
	if found, err := s.FindCustomers(ctx, CustomerQuery{Name: "wang fang", Limit: 500}); err != nil || slices.ContainsFunc(found, func(c Customer) bool { return c.ID == from.ID }) {
		t.Fatalf("name search still finds the merged customer: %v", err)
	}
}

// Listing reads the conversations themselves, so an index entry left
// behind (a crash between steps) is filtered out, not listed.
func TestValkeyListingSkipsStaleEntries(t *testing.T) {
	addr := testredis.Addr(t)
	s := openValkey(t, addr, "")
	ctx := context.Background()
	c := newCustomer(t, s)
	cv, _, err := s.OpenConversation(ctx, c.ID, "", ChannelWeChat)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawValkey(t, addr)
	open := s.prefix + "cvx:st:open"
	for _, id := range []string{"cnv_ZZZZZZZZZZZZZZZZZZZZZZZZZZ", NewID("cnv")} {
		if err := raw.Do(ctx, raw.B().Zadd().Key(open).ScoreMember().ScoreMember(0, id).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	resolved := StatusResolved
	if _, _, err := s.UpdateConversation(ctx, cv.ID, ConversationUpdate{Status: &resolved}); err != nil {
		t.Fatal(err)
	}
	if err := raw.Do(ctx, raw.B().Zadd().Key(open).ScoreMember().ScoreMember(0, cv.ID).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	page, next, err := s.Conversations(ctx, ConversationQuery{Status: StatusOpen, Limit: 1})
	if err != nil || len(page) != 0 || next != "" {
		t.Fatalf("open conversations = %+v next %q %v", page, next, err)
	}
	page, _, err = s.Conversations(ctx, ConversationQuery{Status: StatusResolved})
	if err != nil || len(page) != 1 || page[0].ID != cv.ID {
		t.Fatalf("resolved conversations = %+v %v", page, err)
	}
}

// Concurrent assignments of one conversation leave it listed under its
// final assignee only.
func TestValkeyListingConvergesUnderConcurrentUpdates(t *testing.T) {
	s := openValkey(t, testredis.Addr(t), "")
	ctx := context.Background()
	c := newCustomer(t, s)
	cv, _, err := s.OpenConversation(ctx, c.ID, "", ChannelWebchat)
	if err != nil {
		t.Fatal(err)
	}
	reps := []string{"alice", "bob", "carol", "dave"}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			rep := reps[i%len(reps)]
			if _, _, err := s.UpdateConversation(ctx, cv.ID, ConversationUpdate{Assignee: &rep}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	final, err := s.Conversation(ctx, cv.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, rep := range reps {
		page, _, err := s.Conversations(ctx, ConversationQuery{Assignee: rep})
		if err != nil {
			t.Fatal(err)
		}
		if want := rep == final.Assignee; (len(page) == 1) != want {
			t.Errorf("assignee %s lists %d conversations; final assignee is %s", rep, len(page), final.Assignee)
		}
	}
	n, err := s.client.Do(ctx, s.client.B().Zcard().Key(s.prefix+"cvx:as:"+final.Assignee).Build()).AsInt64()
	if err != nil || n != 1 {
		t.Fatalf("index of the final assignee has %d entries, %v", n, err)
	}
	if evs := timeline(t, s, c.ID); len(evs) != 41 {
		t.Fatalf("timeline has %d events, want the opening and 40 assignments", len(evs))
	}
}

func BenchmarkValkeyAppend(b *testing.B) {
	s := openValkey(b, testredis.Addr(b), "")
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			// One customer per writer, as in a contact centre where many
			// customers write at once.
			customers := make([]string, writers)
			for i := range customers {
				customers[i] = benchCustomer(b, s)
			}
			payload := msg("", "").Payload
			var n atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				wg.Go(func() {
					ev := Event{CustomerID: customers[w], Kind: KindMessageIn, Channel: ChannelWeChat, Author: "customer", Payload: payload}
					for i := n.Add(1); i <= int64(b.N); i = n.Add(1) {
						ev.ExternalID = strconv.FormatInt(i, 10)
						if _, _, err := s.Append(context.Background(), ev); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
		})
	}
}

func BenchmarkValkeyTimelineRead1000(b *testing.B) {
	s := openValkey(b, testredis.Addr(b), "")
	c := benchCustomer(b, s)
	for i := range 1000 {
		if _, _, err := s.Append(context.Background(), msg(c, strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("events=1000", func(b *testing.B) {
		for b.Loop() {
			evs, err := s.Timeline(context.Background(), c, 0, 1000)
			if err != nil || len(evs) != 1000 {
				b.Fatalf("%d events, %v", len(evs), err)
			}
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
	})
}

func benchCustomer(b *testing.B, s Store) string {
	b.Helper()
	c, _, err := s.ResolveCustomer(context.Background(), nextPhone(), Customer{Name: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	return c.ID
}
