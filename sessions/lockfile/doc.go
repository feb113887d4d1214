// Package lockfile keeps files from being opened by two processes at
// once: a process takes an exclusive lock on a small file beside them
// before it touches them, and writes its process id into it, so a second
// process is refused at once and told which process holds them.
//
// The lock is the operating system's (flock on Unix, LockFileEx on
// Windows): it is released when the holder closes it or dies, SIGKILL
// included, so a crash never leaves a stale lock behind. The file itself
// stays; its content is only informative, and a process that finds the
// file but not the lock takes it over.
//
// What it must not do: change anything before the lock is held (a refused
// process leaves the file as it found it), or be used to serialise
// goroutines of one process (two Acquire calls in one process also
// exclude each other, which is what tests rely on, but a sync.Mutex is
// the tool for that).
//
// A Lock is for one goroutine: Acquire, then Release once.
package lockfile
