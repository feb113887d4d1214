package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnigate/omnigate/sessions/lockfile"
)

func openBolt(tb testing.TB, path string) *BoltStore {
	tb.Helper()
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		tb.Fatalf("OpenBolt: %v", err)
	}
	return s
}

func TestBoltConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) Store {
		return openBolt(t, filepath.Join(t.TempDir(), "sessions.db"))
	})
}

// TestBoltReopen checks that everything the store acknowledged is read back
// after the file is closed and opened again, indexes included.
func TestBoltReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "sessions.db")
	s := openBolt(t, path)
	c := newCustomer(t, s)
	cv, _, err := s.OpenConversation(ctx, c.ID, "order-9", ChannelSMS)
	if err != nil {
		t.Fatal(err)
	}
	ev := mustAppend(t, s, msg(c.ID, "sm-1"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openBolt(t, path)
	defer s.Close()
	if _, appended, err := s.Append(ctx, msg(c.ID, "sm-1")); err != nil || appended {
		t.Fatalf("retry after reopen: appended=%v err=%v", appended, err)
	}
	again, created, err := s.OpenConversation(ctx, c.ID, "order-9", ChannelSMS)
	if err != nil || created || again.ID != cv.ID {
		t.Fatalf("conversation after reopen: %+v created=%v err=%v", again, created, err)
	}
	got := timeline(t, s, c.ID)
	if len(got) != 2 || got[1].ID != ev.ID || string(got[1].Payload) != string(ev.Payload) {
		t.Fatalf("timeline after reopen = %+v, want open then %+v", got, ev)
	}
	if next := mustAppend(t, s, msg(c.ID, "")); next.Seq != 3 {
		t.Fatalf("first append after reopen got seq %d, want 3", next.Seq)
	}
}

// TestBoltMergeMovesIndexes checks the per-customer indexes the conformance
// suite cannot see: after a merge, from's identities, conversations and
// active topics are listed under into and nothing is left under from.
func TestBoltMergeMovesIndexes(t *testing.T) {
	ctx := context.Background()
	s := openBolt(t, filepath.Join(t.TempDir(), "sessions.db"))
	defer s.Close()
	into, from := newCustomer(t, s), newCustomer(t, s)
	billing, _, err := s.OpenConversation(ctx, from.ID, "billing", ChannelWeChat)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, Event{CustomerID: from.ID, ConversationID: billing.ID, Kind: KindMessageIn, Channel: ChannelWeChat})
	if _, err := s.Merge(ctx, into.ID, from.ID, "phone_proven", "system"); err != nil {
		t.Fatal(err)
	}

	if ids, err := s.Identities(ctx, from.ID); err != nil || len(ids) != 0 {
		t.Fatalf("from's identities after merge = %+v, %v", ids, err)
	}
	if ids, err := s.Identities(ctx, into.ID); err != nil || len(ids) != 2 {
		t.Fatalf("into's identities after merge = %+v, %v", ids, err)
	}
	if page, _, err := s.Conversations(ctx, ConversationQuery{CustomerID: from.ID}); err != nil || len(page) != 0 {
		t.Fatalf("from's conversations after merge = %+v, %v", page, err)
	}
	page, _, err := s.Conversations(ctx, ConversationQuery{CustomerID: into.ID})
	if err != nil || len(page) != 1 || page[0].ID != billing.ID {
		t.Fatalf("into's conversations after merge = %+v, %v", page, err)
	}
	// The copy of the conversation's message is its last event on into's
	// timeline: merge event at 1, copies at 2 (opening) and 3 (message).
	if page[0].LastSeq != 3 {
		t.Fatalf("moved conversation LastSeq = %d, want 3", page[0].LastSeq)
	}
	if cv, created, err := s.OpenConversation(ctx, into.ID, "billing", ChannelSMS); err != nil || created || cv.ID != billing.ID {
		t.Fatalf("into's billing topic opens %+v created=%v, %v", cv, created, err)
	}
	found, err := s.FindCustomers(ctx, CustomerQuery{Name: "wang fang"})
	if err != nil || len(found) != 1 || found[0].ID != into.ID {
		t.Fatalf("name search after merge = %+v, %v; want only into", found, err)
	}
}

// TestBoltAttributeNamedMergedInto checks that the merged check on the
// append path is not fooled by an attribute with the field's name.
func TestBoltAttributeNamedMergedInto(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "sessions.db"))
	defer s.Close()
	c := newCustomer(t, s)
	if _, err := s.UpdateCustomer(context.Background(), c.ID, CustomerUpdate{Attributes: map[string]string{"merged_into": "cus_x"}}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, msg(c.ID, ""))
}

// TestBoltSecondOpenFails checks that a second handle on the same file
// is refused at once, naming the holder, and that the lock goes with
// Close. TestBoltSecondProcessRefused does it from another process.
func TestBoltSecondOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s := openBolt(t, path)
	_, err := OpenBolt(path, BoltOptions{})
	want := fmt.Sprintf("sessions: bolt %s is in use by process %d", path, os.Getpid())
	if !errors.Is(err, lockfile.ErrInUse) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("second open: %v; want ErrInUse saying %q", err, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Refused, it changes nothing: here the holder is idle (its lock taken
	// directly), so every file must stay as it was.
	s = openBolt(t, path)
	newCustomer(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lock, err := lockfile.Acquire(path + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	before := dirFiles(t, filepath.Dir(path))
	if _, err := OpenBolt(path, BoltOptions{}); !errors.Is(err, lockfile.ErrInUse) {
		t.Fatalf("open under a held lock: %v", err)
	}
	if after := dirFiles(t, filepath.Dir(path)); !maps.Equal(before, after) {
		t.Fatalf("a refused open changed the directory from %v to %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
	}
	if err := lock.Release(); err != nil {
		t.Fatal(err)
	}
	openBolt(t, path).Close()
}

// dirFiles is every file in dir by name, with its content.
func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// TestBoltBadOpSparesBatch checks that ops failing their checks in a busy
// batch are refused alone while the valid ops around them commit.
func TestBoltBadOpSparesBatch(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "sessions.db"))
	defer s.Close()
	c := newCustomer(t, s)
	other := newCustomer(t, s)
	foreign, _, err := s.OpenConversation(context.Background(), other.ID, "", ChannelSMS)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var good, bad atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := msg(c.ID, fmt.Sprint(i))
			if i%3 == 0 {
				ev.ConversationID = foreign.ID
			}
			_, _, err := s.Append(context.Background(), ev)
			switch {
			case err == nil && i%3 != 0:
				good.Add(1)
			case errors.Is(err, ErrInvalid) && i%3 == 0:
				bad.Add(1)
			default:
				t.Errorf("append %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	evs := timeline(t, s, c.ID)
	checkGapFree(t, evs)
	if len(evs) != int(good.Load()) || int(good.Load()+bad.Load()) != n {
		t.Fatalf("%d events stored, %d appends succeeded, %d refused", len(evs), good.Load(), bad.Load())
	}
}

// TestBoltPartialWriteRollsBack drives the committer's last line of
// defence: an op that fails after writing takes its writes with it, and the
// ops batched with it still commit.
func TestBoltPartialWriteRollsBack(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "sessions.db"))
	defer s.Close()
	c := newCustomer(t, s)
	boom := errors.New("boom")
	results := make([]chan error, 3)
	batch := make([]*boltOp, 3)
	for i := range batch {
		results[i] = make(chan error, 1)
		batch[i] = &boltOp{done: results[i], run: func(w *boltTx) error {
			if _, err := w.append(msg(c.ID, fmt.Sprint(i))); err != nil || i != 1 {
				return err
			}
			return boom
		}}
	}
	s.mu.RLock() // as update does, so Close cannot race the direct send
	s.commit(batch)
	s.mu.RUnlock()
	for i, ch := range results {
		if err := <-ch; (i == 1) != errors.Is(err, boom) {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	got := timeline(t, s, c.ID)
	checkGapFree(t, got)
	if len(got) != 2 || got[0].ExternalID != "0" || got[1].ExternalID != "2" {
		t.Fatalf("timeline = %+v, want ops 0 and 2 only", got)
	}
}

// TestBoltPayloadStoredAsReturned checks that Append returns the payload
// bytes a later read gives, whatever spacing or characters the caller used.
func TestBoltPayloadStoredAsReturned(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "sessions.db"))
	defer s.Close()
	c := newCustomer(t, s)
	ev := Event{CustomerID: c.ID, Kind: KindNote, Channel: ChannelAPI, Payload: json.RawMessage(`{ "text": "a<b & c" }`)}
	stored := mustAppend(t, s, ev)
	read := timeline(t, s, c.ID)[0]
	if string(stored.Payload) != string(read.Payload) || string(read.Payload) != `{"text":"a<b & c"}` {
		t.Fatalf("returned %s, read back %s", stored.Payload, read.Payload)
	}
}

// TestBoltCloseAnswersQueuedWrites checks that writes racing Close either
// commit or get ErrClosed, never hang or fail otherwise.
func TestBoltCloseAnswersQueuedWrites(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "sessions.db"))
	c := newCustomer(t, s)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, _, err := s.Append(context.Background(), msg(c.ID, "")); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("append during close: %v", err)
					}
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := s.Timeline(context.Background(), c.ID, 0, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := s.Subscribe(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
}

// BenchmarkBoltAppend measures acknowledged (fsynced) appends per second.
// Each writer has its own customer whose timeline grows through the run:
// the hard case, where concurrent appends share the fewest B+tree pages.
func BenchmarkBoltAppend(b *testing.B) {
	for _, mode := range []string{"log", "direct"} {
		for _, writers := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode, writers), func(b *testing.B) {
				benchmarkBoltAppend(b, BoltOptions{DirectSync: mode == "direct"}, writers)
			})
		}
	}
}

// benchmarkBoltAppend: writers goroutines, one customer each, appending.
// pages/append are B+tree pages written (to the page cache with the log,
// to the disk before every fsync without it).
func benchmarkBoltAppend(b *testing.B, opts BoltOptions, writers int) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "sessions.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	customers := make([]string, writers)
	for i := range customers {
		c, _, err := s.ResolveCustomer(context.Background(), phone(i), Customer{})
		if err != nil {
			b.Fatal(err)
		}
		customers[i] = c.ID
	}
	payload := mustJSON(Message{Text: "where is my order? it was due yesterday"})
	var next atomic.Int64
	before := s.db.Stats()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				ev := Event{CustomerID: customers[w], Kind: KindMessageIn, Channel: ChannelWeChat,
					ExternalID: fmt.Sprint(i), Author: "customer", Payload: payload}
				if _, _, err := s.Append(context.Background(), ev); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
	// Pages written per append, unlike the rate, do not move with the
	// machine's other load.
	after := s.db.Stats()
	written := after.TxStats.GetWrite() - before.TxStats.GetWrite()
	b.ReportMetric(float64(written)/float64(b.N), "pages/append")
}

// BenchmarkBoltTimelineRead1000 measures reading one page of 1,000 events,
// what a reconnecting inbox does.
func BenchmarkBoltTimelineRead1000(b *testing.B) {
	s := openBolt(b, filepath.Join(b.TempDir(), "sessions.db"))
	defer s.Close()
	c, _, err := s.ResolveCustomer(context.Background(), phone(1), Customer{})
	if err != nil {
		b.Fatal(err)
	}
	payload := mustJSON(Message{Text: "where is my order? it was due yesterday"})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, _, err := s.Append(context.Background(), Event{CustomerID: c.ID, Kind: KindMessageIn,
					Channel: ChannelWeChat, Author: "customer", Payload: payload}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for b.Loop() {
		page, err := s.Timeline(context.Background(), c.ID, 0, 1000)
		if err != nil || len(page) != 1000 {
			b.Fatalf("Timeline = %d events, %v", len(page), err)
		}
	}
}
