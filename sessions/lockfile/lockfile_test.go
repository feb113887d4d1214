package lockfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestAcquire(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil || string(before) != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("lock file holds %q, %v; want this process's id", before, err)
	}

	// A second open file is refused, told the holder, and changes nothing.
	_, err = Acquire(path)
	var inUse *InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, ErrInUse) || inUse.PID != os.Getpid() || inUse.Path != path {
		t.Fatalf("second Acquire: %v; want an InUseError naming process %d", err, os.Getpid())
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatalf("refused Acquire changed the file from %q to %q", before, after)
	}

	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	if err := l2.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestAcquireStaleFile(t *testing.T) {
	// A file left by a dead holder (its id, no lock) is taken over.
	path := filepath.Join(t.TempDir(), "x.lock")
	if err := os.WriteFile(path, []byte("99999999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if b, _ := os.ReadFile(path); string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("lock file holds %q after takeover", b)
	}
}

func TestInUseErrorUnknownHolder(t *testing.T) {
	e := &InUseError{Path: "d/x.lock"}
	if e.Error() != "in use by another process (lock file d/x.lock)" {
		t.Fatal(e.Error())
	}
}
