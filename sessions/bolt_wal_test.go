package sessions

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// crash stops s the way a power cut or kill -9 would leave it: queued
// writes answered, files closed (the lock file too, as the kernel does
// for a dead process), no final checkpoint.
func crash(t *testing.T, s *BoltStore) {
	t.Helper()
	s.mu.Lock()
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	<-s.done
	s.hub.close()
	if s.wal != nil {
		s.wal.close()
	}
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.lock.Release(); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// appendAll appends n messages to each of the customers and returns what
// was acknowledged, by customer. Texts (and so external ids) start with
// prefix, so each call appends new events.
func appendAll(t *testing.T, s *BoltStore, customers []string, prefix string, n int) map[string][]Event {
	t.Helper()
	ctx := context.Background()
	out := map[string][]Event{}
	for i := range n {
		for _, c := range customers {
			ev, _, err := s.Append(ctx, msg(c, fmt.Sprintf("%s%d", prefix, i)))
			if err != nil {
				t.Fatal(err)
			}
			out[c] = append(out[c], ev)
		}
	}
	return out
}

// checkRecovered opens path and checks that the file is consistent and
// holds exactly the acknowledged events.
func checkRecovered(t *testing.T, path string, opts BoltOptions, want map[string][]Event) *BoltStore {
	t.Helper()
	s, err := OpenBolt(path, opts)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	checkFile(t, s)
	for c, evs := range want {
		got := timeline(t, s, c)
		if len(got) != len(evs) {
			t.Fatalf("customer %s: %d events after recovery, %d acknowledged", c, len(got), len(evs))
		}
		for i := range evs {
			if got[i].ID != evs[i].ID || got[i].Seq != evs[i].Seq {
				t.Fatalf("customer %s event %d: %s/%d, acknowledged %s/%d", c, i, got[i].ID, got[i].Seq, evs[i].ID, evs[i].Seq)
			}
		}
	}
	return s
}

func customersOf(t *testing.T, s *BoltStore, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		c, _, err := s.ResolveCustomer(context.Background(), phone(i), Customer{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.ID)
	}
	return out
}

// TestBoltWALNothingOfTheTreeOnDisk: a power cut after which nothing the
// B+tree wrote since the last checkpoint is on the disk (the file is as
// the checkpoint left it, newer metas lost) still finds every
// acknowledged write, from the log.
func TestBoltWALNothingOfTheTreeOnDisk(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := OpenBolt(path, BoltOptions{CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	customers := customersOf(t, s, 8)
	if err := s.wal.checkpointNow(); err != nil { // the committer is idle: no write is queued
		t.Fatal(err)
	}
	image := path + ".at-checkpoint"
	copyFile(t, path, image)
	want := appendAll(t, s, customers, "m", 50)
	crash(t, s)
	copyFile(t, image, path)
	checkRecovered(t, path, BoltOptions{}, want)
}

// TestBoltWALEverythingOnDisk: a crash after which everything the B+tree
// wrote is on the disk (kill -9: the page cache survives), with
// checkpoints after nearly every commit: recovery writes the last
// checkpoint's metas back over newer ones and replays, which only works
// if no commit since that checkpoint reused one of its pages.
func TestBoltWALEverythingOnDisk(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := OpenBolt(path, BoltOptions{CheckpointInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	customers := customersOf(t, s, 8)
	want := appendAll(t, s, customers, "m", 200)
	crash(t, s)
	checkRecovered(t, path, BoltOptions{}, want)
}

// TestBoltWALTornTail: a record cut short by the crash (it was never
// acknowledged) is dropped; what came before it is kept.
func TestBoltWALTornTail(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := OpenBolt(path, BoltOptions{CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	customers := customersOf(t, s, 2)
	want := appendAll(t, s, customers, "m", 20)
	seg := segmentPath(path, s.wal.seg)
	crash(t, s)
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A record header promising more bytes than follow, then garbage.
	if _, err := f.Write([]byte{0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s = checkRecovered(t, path, BoltOptions{}, want)
	// And the store goes on from there.
	if _, _, err := s.Append(context.Background(), msg(customers[0], "after")); err != nil {
		t.Fatal(err)
	}
}

// TestBoltDirectSyncTakesOverALog: a file left with a log is recovered
// when opened with DirectSync, and the log and checkpoint are removed.
func TestBoltDirectSyncTakesOverALog(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := OpenBolt(path, BoltOptions{CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	customers := customersOf(t, s, 3)
	want := appendAll(t, s, customers, "m", 30)
	crash(t, s)
	s = checkRecovered(t, path, BoltOptions{DirectSync: true}, want)
	if segs, _ := segments(path); len(segs) != 0 {
		t.Fatalf("segments left: %v", segs)
	}
	if _, err := os.Stat(checkpointPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checkpoint left: %v", err)
	}
	more := appendAll(t, s, customers, "more", 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for c, evs := range more {
		want[c] = append(want[c], evs...)
	}
	checkRecovered(t, path, BoltOptions{}, want)
}
