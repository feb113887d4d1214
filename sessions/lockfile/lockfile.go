package lockfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// ErrInUse is what an InUseError is (errors.Is).
var ErrInUse = errors.New("lockfile: in use by another process")

// InUseError is Acquire's refusal: another process holds the lock.
type InUseError struct {
	Path string // the lock file
	PID  int    // the holder's process id; zero if it has not written it yet
}

// Error reads after what the lock guards: "<data_dir> is " + Error().
func (e *InUseError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("in use by another process (lock file %s)", e.Path)
	}
	return fmt.Sprintf("in use by process %d (lock file %s)", e.PID, e.Path)
}

func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// Lock is a held lock file.
type Lock struct {
	f *os.File
}

// Acquire takes the lock on path, creating the file if needed, and
// writes this process's id into it. It does not wait: if another process
// holds the lock, it returns an *InUseError naming that process and
// leaves the file as it was. The directory must exist.
func Acquire(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lockfile: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lockfile: locking %s: %w", path, err)
	}
	if held {
		pid := readPID(f)
		f.Close()
		return nil, &InUseError{Path: path, PID: pid}
	}
	if err := writePID(f); err != nil {
		f.Close() // closing releases the lock
		return nil, fmt.Errorf("lockfile: %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release releases the lock. The file stays (see the package comment).
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := errors.Join(unlock(l.f), l.f.Close())
	l.f = nil
	return err
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// readPID reads the holder's id, or 0 if the holder has not written it
// yet (it truncates, then writes, after taking the lock).
func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
