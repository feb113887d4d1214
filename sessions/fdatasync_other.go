//go:build !linux

package sessions

import "os"

func fdatasync(f *os.File) error { return f.Sync() }
