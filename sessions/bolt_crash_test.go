package sessions

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writerChildEnv, when set, makes the test named by -test.run the child
// writer: it holds the path of the store to write to.
const writerChildEnv = "OMNIGATE_BOLT_WRITER_CHILD"

// TestBoltCrash kills a writing process with SIGKILL and checks that every
// append it acknowledged is in the file afterwards, in order and without a
// gap: "accepted" must survive kill -9.
func TestBoltCrash(t *testing.T) {
	w, path := writerTest(t)
	if w == nil {
		return
	}
	// Kill after enough acks that the file has grown past its first pages
	// and writers are well into concurrent batches.
	if !w.readUntil(t, 3000) {
		t.Fatalf("child ended before the kill after %d acks", w.total)
	}
	w.kill(t)
	t.Logf("child killed after %d acknowledged appends to %d customers", w.total, len(w.acks))

	s := openBolt(t, path)
	defer s.Close()
	w.check(t, s)
}

// TestBoltSecondProcessRefused opens the store of a process that is
// writing to it: the open must fail at once, naming that process, and
// touch nothing, so the writer goes on and a reopen after it finds every
// acknowledged append in a consistent file.
func TestBoltSecondProcessRefused(t *testing.T) {
	w, path := writerTest(t)
	if w == nil {
		return
	}
	// By now the child has checkpointed many times, so the checkpoint's
	// meta pages are older than the file's: the ones an open that ignored
	// the lock would write back.
	if !w.readUntil(t, 500) {
		t.Fatalf("child ended after %d acks, before the second open", w.total)
	}
	_, err := OpenBolt(path, BoltOptions{LockTimeout: 50 * time.Millisecond})
	want := fmt.Sprintf("in use by process %d", w.cmd.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second open: %v; want an error saying %q", err, want)
	}
	// The child goes on writing: with its pages overwritten it would panic
	// ("page already freed") or fail its next commits.
	after := w.total
	if !w.readUntil(t, after+2000) {
		t.Fatalf("child ended %d acks after the refused open", w.total-after)
	}
	w.kill(t)
	t.Logf("child wrote %d appends, %d of them after the refused open", w.total, w.total-after)

	s := openBolt(t, path)
	defer s.Close()
	w.check(t, s)
}

// writer is a child process (this test binary again) appending to a
// store and printing one line per acknowledged append, "<customer> <seq>
// <event id>", only after Append returned.
type writer struct {
	cmd   *exec.Cmd
	sc    *bufio.Scanner
	acks  map[string][]writerAck
	total int
}

type writerAck struct {
	seq uint64
	id  string
}

// writerTest starts the calling test again as a child writer on a new
// store and returns it with the store's path; in the child, it writes
// until killed and returns nil. The child is killed by its PID when t
// ends, if it still runs.
func writerTest(t *testing.T) (*writer, string) {
	t.Helper()
	if path := os.Getenv(writerChildEnv); path != "" {
		writerChild(t, path)
		return nil, ""
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "sessions.db")
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), writerChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &writer{cmd: cmd, sc: bufio.NewScanner(out), acks: map[string][]writerAck{}}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	return w, path
}

// readUntil reads acks until n were read in all, or the child's output
// ends (false).
func (w *writer) readUntil(t *testing.T, n int) bool {
	t.Helper()
	for w.total < n {
		if !w.sc.Scan() {
			return false
		}
		f := strings.Fields(w.sc.Text())
		if len(f) != 3 {
			continue // the test framework's own output
		}
		seq, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", w.sc.Text())
		}
		w.acks[f[0]] = append(w.acks[f[0]], writerAck{seq, f[2]})
		w.total++
	}
	return true
}

// kill kills the child with SIGKILL by its PID and reads what it printed
// before it died.
func (w *writer) kill(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(w.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for w.readUntil(t, w.total+1) {
	}
	_ = w.cmd.Wait()
}

// check fails t unless s is consistent and holds every acknowledged
// append at its acknowledged seq, with no gap.
func (w *writer) check(t *testing.T, s *BoltStore) {
	t.Helper()
	checkFile(t, s)
	for customer, got := range w.acks {
		stored := timeline(t, s, customer)
		checkGapFree(t, stored)
		for _, a := range got {
			if a.seq > uint64(len(stored)) {
				t.Fatalf("customer %s: acknowledged seq %d lost; file has %d events", customer, a.seq, len(stored))
			}
			if ev := stored[a.seq-1]; ev.ID != a.id {
				t.Fatalf("customer %s seq %d is %s, acknowledged as %s", customer, a.seq, ev.ID, a.id)
			}
		}
	}
}

// checkFile fails t if bbolt's consistency check finds anything wrong.
func checkFile(t *testing.T, s *BoltStore) {
	t.Helper()
	if err := s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() { // drained: the checker reads tx until it closes the channel
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}); err != nil {
		t.Fatalf("file inconsistent after recovery: %v", err)
	}
}

// writerChild appends until it is killed, or gives up after 30 seconds so
// a lost parent leaves nothing running.
func writerChild(t *testing.T, path string) {
	// Checkpoints every few milliseconds, so a kill or a second open lands
	// among them.
	s, err := OpenBolt(path, BoltOptions{CheckpointInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var customers []string
	for i := range 4 {
		c, _, err := s.ResolveCustomer(ctx, phone(i), Customer{})
		if err != nil {
			t.Fatal(err)
		}
		customers = append(customers, c.ID)
	}
	deadline := time.Now().Add(30 * time.Second)
	var mu sync.Mutex // one line per write call, so lines never interleave
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			customer := customers[w%len(customers)]
			for i := 0; time.Now().Before(deadline); i++ {
				ev, _, err := s.Append(ctx, msg(customer, fmt.Sprintf("w%d-%d", w, i)))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				_, err = fmt.Fprintf(os.Stdout, "%s %d %s\n", ev.CustomerID, ev.Seq, ev.ID)
				mu.Unlock()
				if err != nil {
					return // the parent stopped reading
				}
			}
		}()
	}
	wg.Wait()
}
