//go:build unix

package lockfile

import (
	"path/filepath"
	"syscall"
	"testing"
)

// TestReleaseWhileShared: a lock released while another descriptor of
// its open file exists (what a child process forked by anything in this
// process holds until its exec) is free at once.
func TestReleaseWhileShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := syscall.Dup(int(l.f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(shared)
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(path)
	if err != nil {
		t.Fatalf("released lock still held through a shared descriptor: %v", err)
	}
	if err := l2.Release(); err != nil {
		t.Fatal(err)
	}
}
