package sessions

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data and the metadata needed to read it back,
// not its times: what a log append needs, for less than fsync.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
