//go:build unix

package lockfile

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes an exclusive flock on f without waiting; held reports
// that another open file (another process's, or another Acquire's) has
// it. flock, not fcntl: fcntl locks belong to the process, so a second
// Acquire in the same process would get the lock, and closing any
// descriptor of the file would drop it.
func tryLock(f *os.File) (held bool, err error) {
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}

// unlock drops the flock before the file is closed. Closing alone is not
// enough: a child process forked (by anything in this process) in the
// instant before its exec shares the open file, and with it the lock,
// until the exec closes it; an explicit unlock releases the open file's
// lock for every descriptor of it at once.
func unlock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
