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

// crashChildEnv, when set, makes TestBoltCrash the child: it holds the path
// of the store to write to.
const crashChildEnv = "OMNIGATE_BOLT_CRASH_CHILD"

// TestBoltCrash kills a writing process with SIGKILL and checks that every
// append it acknowledged is in the file afterwards, in order and without a
// gap: "accepted" must survive kill -9.
//
// The test runs its own binary again as the child. The child appends from
// several goroutines to a few customers and prints one line per
// acknowledged append, "<customer> <seq> <event id>", only after Append
// returned; the parent kills it mid-stream by PID, reads what was printed
// before the kill, and reopens the file.
func TestBoltCrash(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "sessions.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct {
		seq uint64
		id  string
	}
	acks := map[string][]ack{}
	total := 0
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue // the test framework's own output
		}
		seq, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acks[f[0]] = append(acks[f[0]], ack{seq, f[2]})
		total++
		// Kill after enough acks that the file has grown past its first
		// pages and writers are well into concurrent batches.
		if total == 3000 && !killed {
			if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before the kill after %d acks: %v", total, err)
	}
	t.Logf("child killed after %d acknowledged appends to %d customers", total, len(acks))

	s := openBolt(t, path)
	defer s.Close()
	checkFile(t, s)
	for customer, got := range acks {
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

// crashChild appends until it is killed, or gives up after 30 seconds so a
// lost parent leaves nothing running.
func crashChild(t *testing.T, path string) {
	// Checkpoints every few milliseconds, so the kill lands among them.
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
