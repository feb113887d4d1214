package sessions

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// The write-ahead log in front of the bbolt file.
//
// Why: a bbolt commit rewrites every B+tree page it touched and fsyncs the
// file twice. Appends by thousands of different customers touch as many
// scattered leaves, so each commit wrote about 25 random pages and waited
// for two flushes: on a virtual disk that was most of a commit's time and
// its long tail. With the log, a commit is one sequential write and one
// fdatasync of the log; the B+tree pages go to the page cache and reach
// the disk once per checkpoint, however many commits changed them.
//
// How it stays durable:
//
//   - Every write an op makes goes through boltTx.put/del, which also
//     records it (bucket, key, value or deletion) in the batch's redo
//     record. Before the bbolt transaction commits, the record is appended
//     to the log and fdatasynced; only then does the transaction commit,
//     with bbolt's own fsyncs off (DB.NoSync). So nothing is visible to
//     readers, or acknowledged, before it is in the log.
//   - A checkpoint makes the B+tree durable up to a transaction T: the
//     committer notes T's two meta pages, opens a read transaction on T
//     (the pin) and moves new records to a fresh log segment; then, in the
//     background, the file is fdatasynced and a checkpoint file naming T's
//     meta pages and the first segment after T is written and renamed into
//     place. The older segment and the older pin are then let go.
//   - The pin is what makes T's pages safe: bbolt reuses a freed page only
//     when no open read transaction may still need it, so no commit after
//     T overwrites a page of T's tree while T is the recovery point.
//   - Recovery (OpenBolt): write T's meta pages back over the file's (the
//     file may hold newer metas whose pages never reached the disk), open
//     bbolt (with NoFreelistSync the free list is rebuilt from T's tree),
//     replay every record of the segments from the checkpoint's on, in
//     order, up to the first torn record (one that was never acknowledged),
//     and checkpoint.
//
// The pin blocks bbolt from remapping a growing file (a remap waits for
// every read transaction), so the file is mapped at walMmapSize from the
// start, and the log is turned off (commits fsync the file as before) if
// the file ever grows near that size.

const (
	walMagic  = "OGWAL001"
	ckptMagic = "OGCKPT01"
	// walMmapSize is the file mapping reserved at open: address space,
	// not memory. 64 GiB on 64-bit platforms, 1 GiB on 32-bit ones.
	walMmapSize = 64<<30*(strconv.IntSize/64) + 1<<30*(1-strconv.IntSize/64)
	// walMaxFile is where the log is turned off (see above).
	walMaxFile = walMmapSize / 16 * 15
)

const (
	redoPut byte = 1
	redoDel byte = 2
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// appendRedo adds one write to a redo record.
func appendRedo(rec []byte, op byte, bucket, key, value []byte) []byte {
	rec = append(rec, op)
	rec = binary.AppendUvarint(rec, uint64(len(bucket)))
	rec = append(rec, bucket...)
	rec = binary.AppendUvarint(rec, uint64(len(key)))
	rec = append(rec, key...)
	if op == redoPut {
		rec = binary.AppendUvarint(rec, uint64(len(value)))
		rec = append(rec, value...)
	}
	return rec
}

// applyRedo replays one record in tx.
func applyRedo(tx *bolt.Tx, rec []byte) error {
	field := func() ([]byte, error) {
		n, k := binary.Uvarint(rec)
		if k <= 0 || uint64(len(rec)-k) < n {
			return nil, errors.New("sessions: wal: malformed record")
		}
		b := rec[k : k+int(n)]
		rec = rec[k+int(n):]
		return b, nil
	}
	for len(rec) > 0 {
		op := rec[0]
		rec = rec[1:]
		bucket, err := field()
		if err != nil {
			return err
		}
		key, err := field()
		if err != nil {
			return err
		}
		b := tx.Bucket(bucket)
		if b == nil {
			return fmt.Errorf("sessions: wal: no bucket %q", bucket)
		}
		switch op {
		case redoPut:
			v, err := field()
			if err != nil {
				return err
			}
			err = b.Put(key, v)
			if err != nil {
				return err
			}
		case redoDel:
			if err := b.Delete(key); err != nil {
				return err
			}
		default:
			return fmt.Errorf("sessions: wal: unknown op %d", op)
		}
	}
	return nil
}

// wal is the log and its checkpoints. The committer calls append and
// startCheckpoint; one checkpoint runs in the background at a time.
type wal struct {
	path     string // the bbolt file's
	db       *bolt.DB
	pageSize int

	f    *os.File // the segment records go to
	seg  uint64
	size int64
	buf  []byte // append's, reused: the committer is its only caller

	mu      sync.Mutex
	running bool          // a checkpoint is in the background
	done    chan struct{} // closed when it ends
	pin     *bolt.Tx      // T of the last durable checkpoint
	err     error         // a failed background checkpoint, reported once
}

func segmentPath(dbPath string, seg uint64) string {
	return fmt.Sprintf("%s.wal.%016d", dbPath, seg)
}

func checkpointPath(dbPath string) string { return dbPath + ".ckpt" }

// segments lists the log segments of dbPath, oldest first.
func segments(dbPath string) ([]uint64, error) {
	names, err := filepath.Glob(dbPath + ".wal.*")
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, n := range names {
		s := strings.TrimPrefix(n, dbPath+".wal.")
		if v, err := strconv.ParseUint(s, 10, 64); err == nil && len(s) == 16 {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out, nil
}

// checkpoint is what the checkpoint file holds.
type checkpoint struct {
	pageSize int
	seg      uint64 // first segment to replay
	metas    []byte // the bbolt file's first two pages at T
}

func (c checkpoint) encode() []byte {
	b := []byte(ckptMagic)
	b = binary.BigEndian.AppendUint32(b, uint32(c.pageSize))
	b = binary.BigEndian.AppendUint64(b, c.seg)
	b = append(b, c.metas...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func readCheckpoint(dbPath string) (checkpoint, bool, error) {
	b, err := os.ReadFile(checkpointPath(dbPath))
	if errors.Is(err, os.ErrNotExist) {
		return checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, err
	}
	const head = len(ckptMagic) + 4 + 8
	if len(b) < head+4 || string(b[:len(ckptMagic)]) != ckptMagic {
		return checkpoint{}, false, fmt.Errorf("sessions: %s is not a checkpoint", checkpointPath(dbPath))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return checkpoint{}, false, fmt.Errorf("sessions: %s is damaged", checkpointPath(dbPath))
	}
	c := checkpoint{pageSize: int(binary.BigEndian.Uint32(b[len(ckptMagic):])),
		seg: binary.BigEndian.Uint64(b[len(ckptMagic)+4:]), metas: body[head:]}
	if len(c.metas) != 2*c.pageSize {
		return checkpoint{}, false, fmt.Errorf("sessions: %s has %d bytes of meta pages for page size %d", checkpointPath(dbPath), len(c.metas), c.pageSize)
	}
	return c, true, nil
}

// writeFileSync replaces path with b durably: temporary file, fsync,
// rename, fsync of the directory.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// restoreMetas writes the checkpoint's meta pages over the file's, before
// bbolt opens it. Nothing is written when they are the same already.
func restoreMetas(dbPath string, c checkpoint) error {
	f, err := os.OpenFile(dbPath, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	cur := make([]byte, len(c.metas))
	if _, err := f.ReadAt(cur, 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if bytes.Equal(cur, c.metas) {
		return nil
	}
	if _, err := f.WriteAt(c.metas, 0); err != nil {
		return err
	}
	return f.Sync()
}

// readSegment calls fn with each whole record of a segment, in order, and
// stops at the end or at the first torn or damaged record: records are
// appended and fsynced one at a time, so only the last can be torn, and
// it was never acknowledged.
func readSegment(path string, fn func(rec []byte) error) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) < len(walMagic) || string(b[:len(walMagic)]) != walMagic {
		return nil // created but its header never reached the disk: empty
	}
	b = b[len(walMagic):]
	for len(b) >= 8 {
		n, sum := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
		if n == 0 || uint64(len(b)-8) < uint64(n) {
			return nil
		}
		rec := b[8 : 8+n]
		if crc32.Checksum(rec, crcTable) != sum {
			return nil
		}
		if err := fn(rec); err != nil {
			return err
		}
		b = b[8+n:]
	}
	return nil
}

// openWAL recovers the file at dbPath (see the top of this file) and
// returns it open with its log. The caller holds the store's lock file:
// restoreMetas writes into the file before bolt.Open takes bbolt's lock,
// which would corrupt it under another process that has it open.
func openWAL(dbPath string, bo *bolt.Options, init func(*bolt.Tx) error) (*bolt.DB, *wal, error) {
	ck, haveCk, err := readCheckpoint(dbPath)
	if err != nil {
		return nil, nil, err
	}
	if haveCk {
		if err := restoreMetas(dbPath, ck); err != nil {
			return nil, nil, fmt.Errorf("sessions: restoring the checkpoint: %w", err)
		}
	}
	bo.InitialMmapSize = walMmapSize
	bo.NoGrowSync = true
	db, err := bolt.Open(dbPath, 0o600, bo)
	if err != nil {
		return nil, nil, err
	}
	w := &wal{path: dbPath, db: db, pageSize: db.Info().PageSize}
	fail := func(err error) (*bolt.DB, *wal, error) {
		w.close()
		_ = db.Close()
		return nil, nil, err
	}
	if err := db.Update(init); err != nil {
		return fail(err)
	}
	// The replay must not overwrite the checkpoint's pages either: until
	// the checkpoint after it, they are still the recovery point.
	if w.pin, err = db.Begin(false); err != nil {
		return fail(err)
	}
	segs, err := segments(dbPath)
	if err != nil {
		return fail(err)
	}
	db.NoSync = true
	for _, seg := range segs {
		if !haveCk || seg < ck.seg {
			// Covered by the checkpoint, or (with no checkpoint) left by a
			// first checkpoint that never finished, before any record.
			continue
		}
		err := db.Update(func(tx *bolt.Tx) error {
			return readSegment(segmentPath(dbPath, seg), func(rec []byte) error { return applyRedo(tx, rec) })
		})
		if err != nil {
			return fail(fmt.Errorf("sessions: replaying the log: %w", err))
		}
	}
	if len(segs) > 0 {
		w.seg = segs[len(segs)-1]
	}
	if err := w.checkpointNow(); err != nil {
		return fail(fmt.Errorf("sessions: checkpoint: %w", err))
	}
	return db, w, nil
}

// newSegment starts the next segment and makes it the one appended to.
func (w *wal) newSegment() error {
	seg := w.seg + 1
	f, err := os.OpenFile(segmentPath(w.path, seg), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte(walMagic)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		f.Close()
		return err
	}
	if w.f != nil {
		_ = w.f.Close()
	}
	w.f, w.seg, w.size = f, seg, int64(len(walMagic))
	return nil
}

// append makes one batch's redo record durable. It returns the segment
// size before the record, for unappend.
func (w *wal) append(rec []byte) (int64, error) {
	mark := w.size
	buf := binary.BigEndian.AppendUint32(w.buf[:0], uint32(len(rec)))
	buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(rec, crcTable))
	buf = append(buf, rec...)
	w.buf = buf
	if _, err := w.f.WriteAt(buf, mark); err != nil {
		return mark, err
	}
	w.size += int64(len(buf))
	return mark, fdatasync(w.f)
}

// unappend takes back the record appended at mark, when the bbolt
// transaction it describes failed to commit.
func (w *wal) unappend(mark int64) error {
	if err := w.f.Truncate(mark); err != nil {
		return err
	}
	w.size = mark
	return fdatasync(w.f)
}

// metaPages reads the file's two meta pages as they are now.
func (w *wal) metaPages() ([]byte, error) {
	f, err := os.Open(w.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 2*w.pageSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

// startCheckpoint begins a checkpoint at the current transaction: the
// committer calls it between commits. The rest runs in the background;
// busy reports that one is still running (nothing was started).
func (w *wal) startCheckpoint() (busy bool, err error) {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return true, nil
	}
	if err := w.err; err != nil {
		w.err = nil
		w.mu.Unlock()
		return false, err
	}
	w.running, w.done = true, make(chan struct{})
	w.mu.Unlock()
	finish, err := w.prepare()
	if err != nil {
		w.end(err)
		return false, err
	}
	go func() { w.end(finish()) }()
	return false, nil
}

func (w *wal) end(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && w.err == nil {
		w.err = err
	}
	w.running = false
	close(w.done)
}

// prepare is the committer's part of a checkpoint: note T's meta pages,
// pin T, and send later records to a new segment. finish is the rest:
// fsync the file, record the checkpoint, drop what it supersedes.
func (w *wal) prepare() (finish func() error, err error) {
	metas, err := w.metaPages()
	if err != nil {
		return nil, err
	}
	pin, err := w.db.Begin(false)
	if err != nil {
		return nil, err
	}
	if err := w.newSegment(); err != nil {
		_ = pin.Rollback()
		return nil, err
	}
	seg := w.seg
	return func() error {
		err := w.db.Sync()
		if err == nil {
			err = writeFileSync(checkpointPath(w.path), checkpoint{pageSize: w.pageSize, seg: seg, metas: metas}.encode())
		}
		if err != nil {
			_ = pin.Rollback()
			return err
		}
		w.mu.Lock()
		old := w.pin
		w.pin = pin
		w.mu.Unlock()
		if old != nil {
			_ = old.Rollback()
		}
		// Segments before seg are covered now; a failure to remove one
		// only costs its replay at the next open.
		if segs, err := segments(w.path); err == nil {
			for _, s := range segs {
				if s < seg {
					_ = os.Remove(segmentPath(w.path, s))
				}
			}
		}
		return nil
	}, nil
}

// wait waits for a background checkpoint to end and returns its error.
func (w *wal) wait() error {
	w.mu.Lock()
	running, done := w.running, w.done
	w.mu.Unlock()
	if running {
		<-done
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.err
	w.err = nil
	return err
}

// checkpointNow runs a whole checkpoint and waits for it.
func (w *wal) checkpointNow() error {
	if err := w.wait(); err != nil {
		return err
	}
	if _, err := w.startCheckpoint(); err != nil {
		return err
	}
	return w.wait()
}

// tooBig reports whether the file has grown near the mapping reserved at
// open, when the log must be turned off (see the top of this file).
func (w *wal) tooBig() bool {
	fi, err := os.Stat(w.path)
	return err == nil && fi.Size() > walMaxFile
}

// close releases the pin and the segment; the caller checkpointed first
// if it could.
func (w *wal) close() {
	_ = w.wait()
	w.mu.Lock()
	pin := w.pin
	w.pin = nil
	w.mu.Unlock()
	if pin != nil {
		_ = pin.Rollback()
	}
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
}
