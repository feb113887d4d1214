package sessions

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/omnigate/omnigate/sessions/lockfile"
)

// BoltStore keeps everything in one bbolt file. Key layout, one bucket per
// block; "\x00" separates a customer id from the rest, so one customer's
// keys are a contiguous range that no other customer's id can prefix (ids
// never hold a NUL or \x01):
//
//	customers               <customer id>                          → Customer JSON
//	identities              <Identity.Key()>                       → Identity JSON (owner in CustomerID)
//	customer_identities     <customer id> \x00 <Identity.Key()>    → empty
//
//	timelines               <customer id> \x00 <seq, 8 bytes BE>   → Event JSON
//	                        <customer id> \x01 <Event.DedupKey()>  → seq, 8 bytes BE
//	                        <customer id> \x02 <conversation id>   → its LastSeq, UpdatedAt (activityKey)
//
//	conversations           <conversation id>                      → Conversation JSON
//	customer_conversations  <customer id> \x00 <conversation id>   → empty
//	active_topics           <customer id> \x00 <topic>             → conversation id
//
// Big-endian sequences make key order timeline order, so Timeline is one
// cursor walk and the last key before <customer id> \x01 is the last seq
// (no counter to keep in step). A customer's dedup entries follow its
// events in the same tree: an append then dirties one region of one B+tree
// instead of two, which is most of what a commit writes (bbolt copies every
// page it touches) and so most of what an fsync waits for. Conversation ids
// sort by creation time, so listing newest first is a reverse walk.
//
// Writes go through one committer goroutine that runs everything queued in
// one transaction and one fsync (group commit): a writer waits for its own
// fsync but shares it with every writer that queued meanwhile. The fsync
// is of a write-ahead log, not of the B+tree (bolt_wal.go), unless
// BoltOptions.DirectSync.
var (
	bucketCustomers      = []byte("customers")
	bucketIdentities     = []byte("identities")
	bucketCustomerIdents = []byte("customer_identities")
	bucketTimelines      = []byte("timelines")
	bucketConversations  = []byte("conversations")
	bucketCustomerConvs  = []byte("customer_conversations")
	bucketActiveTopics   = []byte("active_topics")
)

// BoltOptions tunes a BoltStore. The zero value is what the gateway uses.
type BoltOptions struct {
	// MaxBatch caps how many writes share one transaction and fsync. Zero
	// means 256. A merge counts as one write however many events it copies.
	MaxBatch int
	// MaxBatchDelay is how long the committer may wait for more writes
	// after taking everything already queued, and only while the batch is
	// smaller than the previous one: the writers just answered are about to
	// write again, and a lone writer is never delayed. Zero means 200µs,
	// which in BoltAppend/writers=64 on 2 cores takes batches from about 29
	// writes per fsync to 36; a negative value means never wait.
	MaxBatchDelay time.Duration
	// LockTimeout is how long OpenBolt waits for bbolt's own lock on the
	// file, which only a program that opened it with bbolt directly (not
	// through OpenBolt) can hold: a second OpenBolt is refused at once by
	// the store's lock file. Zero means one second.
	LockTimeout time.Duration
	// DirectSync commits the way bbolt does by itself, fsyncing the B+tree
	// twice per batch, with no write-ahead log. It is slower (see the
	// BoltAppend benchmarks); it exists to compare, and a file with a log
	// is recovered and converted when opened with it.
	DirectSync bool
	// CheckpointInterval is how often the B+tree is made durable so the
	// log before it can go. Zero means one second.
	CheckpointInterval time.Duration
}

// BoltStore is the single-node Store: one bbolt file, every acknowledged
// write fsynced. Safe for concurrent use.
type BoltStore struct {
	lock *lockfile.Lock // <path>.lock, held from before the first read of the file until Close
	db   *bolt.DB
	opts BoltOptions
	hub  *hub
	ops  chan *boltOp
	done chan struct{} // closed when the committer has answered every op

	// mu guards closed and ops: writers hold it shared while they send, and
	// Close takes it exclusively before closing ops, so nothing sends on a
	// closed channel. Readers hold it shared for their transaction, so Close
	// waits for them before closing the file.
	mu     sync.RWMutex
	closed bool

	// The log (nil with DirectSync or once turned off); the committer's.
	wal      *wal
	redo     []byte    // the batch's redo record
	lastCkpt time.Time // when the last checkpoint started
	// broken is set when the log could not take back a record of a batch
	// that failed: from then on every write fails with it.
	broken atomic.Pointer[error]
	// ckptErr is the last checkpoint's failure, nil once one succeeds;
	// Ping reports it.
	ckptErr atomic.Pointer[error]
}

var _ Store = (*BoltStore)(nil)

// OpenBolt opens (or creates, with its directory) the store at path.
//
// It first takes the lock file <path>.lock, and touches nothing else
// before: recovery writes into the file (bolt_wal.go), which would
// corrupt it under a process that has it open. If another process holds
// it, the error is a lockfile.ErrInUse that names that process.
func OpenBolt(path string, opts BoltOptions) (*BoltStore, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.MaxBatchDelay == 0 {
		opts.MaxBatchDelay = 200 * time.Microsecond
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sessions: bolt %s: %w", path, err)
	}
	lock, err := lockfile.Acquire(path + ".lock")
	if errors.Is(err, lockfile.ErrInUse) {
		return nil, fmt.Errorf("sessions: bolt %s is %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("sessions: bolt %s: %w", path, err)
	}
	s, err := openBoltLocked(path, opts)
	if err != nil {
		_ = lock.Release()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// openBoltLocked is OpenBolt once the lock is held.
func openBoltLocked(path string, opts BoltOptions) (*BoltStore, error) {
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = time.Second
	}
	bo := &bolt.Options{
		Timeout: opts.LockTimeout,
		// The hashmap freelist stays fast as the file grows and frees pages,
		// and not writing it at every commit keeps it out of every fsync;
		// the price is a scan of the file to rebuild it at open. The log's
		// recovery depends on that rebuild.
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	}
	db, w, err := openWAL(path, bo, createBuckets)
	if err != nil {
		return nil, fmt.Errorf("sessions: bolt %s: %w", path, err)
	}
	s := &BoltStore{
		db:       db,
		opts:     opts,
		hub:      newHub(),
		ops:      make(chan *boltOp, opts.MaxBatch),
		done:     make(chan struct{}),
		wal:      w,
		lastCkpt: time.Now(),
	}
	if opts.DirectSync {
		if err := s.dropLog(); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("sessions: bolt %s: turning the log off: %w", path, err)
		}
	}
	go s.commitLoop()
	return s, nil
}

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketCustomers, bucketIdentities, bucketCustomerIdents, bucketTimelines,
		bucketConversations, bucketCustomerConvs, bucketActiveTopics} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// dropLog checkpoints, removes the log and its checkpoint, and commits
// with bbolt's own fsyncs from then on. Segments go before the checkpoint
// file: a log without a checkpoint is never replayed, while a checkpoint
// without its log is the state the file is in.
func (s *BoltStore) dropLog() error {
	w := s.wal
	if err := w.checkpointNow(); err != nil {
		return err
	}
	segs, err := segments(w.path)
	if err != nil {
		return err
	}
	w.close()
	for _, seg := range segs {
		if err := os.Remove(segmentPath(w.path, seg)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		return err
	}
	if err := os.Remove(checkpointPath(w.path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		return err
	}
	s.db.NoSync = false
	s.wal = nil
	return nil
}

// maybeCheckpoint starts a checkpoint when one is due, between commits.
func (s *BoltStore) maybeCheckpoint() {
	if s.wal == nil || time.Since(s.lastCkpt) < s.opts.CheckpointInterval {
		return
	}
	if s.wal.tooBig() {
		if err := s.dropLog(); err != nil {
			s.ckptErr.Store(&err)
		}
		return
	}
	busy, err := s.wal.startCheckpoint()
	if busy {
		return
	}
	s.lastCkpt = time.Now()
	if err != nil {
		s.ckptErr.Store(&err)
	} else {
		s.ckptErr.Store(nil)
	}
}

// boltOp is one Store write waiting for the committer.
type boltOp struct {
	run  func(w *boltTx) error
	done chan error
}

// boltTx is what one op sees of the batch's transaction. bbolt cannot roll
// back part of a transaction, so ops check every precondition before their
// first write; wrote tells the committer when an op failed too late for
// that and the batch must be rolled back.
type boltTx struct {
	*bolt.Tx
	now   time.Time
	wrote bool
	evs   []Event // appended by this op, published after commit
	redo  *[]byte // the batch's redo record; nil without a log
}

// errPartialWrite marks a batch rolled back because an op failed after it
// had started writing.
var errPartialWrite = errors.New("sessions: bolt op failed after writing")

func (s *BoltStore) commitLoop() {
	defer close(s.done)
	batch := make([]*boltOp, 0, s.opts.MaxBatch)
	last := 0
	for op := range s.ops {
		batch = s.collect(append(batch[:0], op), last)
		last = len(batch)
		s.commit(batch)
		s.maybeCheckpoint()
	}
}

// collect adds whatever else is queued to batch. The writers answered by
// the last commit (last of them) often write again at once, so while fewer
// are queued it waits up to MaxBatchDelay for them: they share the next
// fsync instead of straggling into one of their own. A lone writer (last
// is 1) is never delayed.
func (s *BoltStore) collect(batch []*boltOp, last int) []*boltOp {
	var deadline <-chan time.Time
	for len(batch) < s.opts.MaxBatch {
		select {
		case op, ok := <-s.ops:
			if !ok {
				return batch
			}
			batch = append(batch, op)
			continue
		default:
		}
		if len(batch) >= last || s.opts.MaxBatchDelay <= 0 {
			return batch
		}
		if deadline == nil {
			t := time.NewTimer(s.opts.MaxBatchDelay)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case op, ok := <-s.ops:
			if !ok {
				return batch
			}
			batch = append(batch, op)
		case <-deadline:
			return batch
		}
	}
	return batch
}

// commit runs batch in one transaction, publishes its events in commit
// order and answers every op. An op whose own check fails is answered with
// its error and the rest commit without it.
func (s *BoltStore) commit(batch []*boltOp) {
	if p := s.broken.Load(); p != nil {
		for _, op := range batch {
			op.done <- *p
		}
		return
	}
	errs := make([]error, len(batch))
	var evs []Event
	partial := -1
	logged := int64(-1) // where this batch's record starts in the log
	var redo *[]byte
	if s.wal != nil {
		s.redo = s.redo[:0]
		redo = &s.redo
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i, op := range batch {
			w := &boltTx{Tx: tx, now: time.Now().UTC(), redo: redo}
			mark := 0
			if redo != nil {
				mark = len(*redo)
			}
			if errs[i] = op.run(w); errs[i] != nil {
				if w.wrote {
					partial = i
					return errPartialWrite
				}
				if redo != nil {
					*redo = (*redo)[:mark]
				}
				continue
			}
			evs = append(evs, w.evs...)
		}
		if redo == nil || len(*redo) == 0 {
			return nil
		}
		// Durable in the log before the transaction commits: nothing is
		// read or acknowledged that a crash could take back.
		at, err := s.wal.append(*redo)
		if err != nil {
			s.takeBack(at)
			return err
		}
		logged = at
		return nil
	})
	if err != nil && logged >= 0 {
		// The record is in the log but the transaction did not commit.
		s.takeBack(logged)
	}
	if partial >= 0 {
		// Everything was rolled back: answer the op that broke the batch and
		// run the others again without it.
		batch[partial].done <- errs[partial]
		if rest := slices.Delete(slices.Clone(batch), partial, partial+1); len(rest) > 0 {
			s.commit(rest)
		}
		return
	}
	if err != nil {
		err = fmt.Errorf("sessions: bolt commit: %w", err)
		for _, op := range batch {
			op.done <- err
		}
		return
	}
	// Publish before answering so a writer's own subscription already holds
	// the event when its Append returns.
	s.hub.publish(evs...)
	for i, op := range batch {
		op.done <- errs[i]
	}
}

// update queues run for the committer and waits until it is durable or
// refused. Once queued, the op is waited for even if ctx ends, so success is
// never reported as a cancellation.
func (s *BoltStore) update(ctx context.Context, run func(w *boltTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &boltOp{run: run, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.ops <- op:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	return <-op.done
}

func (s *BoltStore) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(fn)
}

func (w *boltTx) put(bucket, key, value []byte) error {
	w.wrote = true
	if w.redo != nil {
		*w.redo = appendRedo(*w.redo, redoPut, bucket, key, value)
	}
	return w.Bucket(bucket).Put(key, value)
}

func (w *boltTx) putJSON(bucket, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.put(bucket, key, b)
}

func (w *boltTx) del(bucket, key []byte) error {
	w.wrote = true
	if w.redo != nil {
		*w.redo = appendRedo(*w.redo, redoDel, bucket, key, nil)
	}
	return w.Bucket(bucket).Delete(key)
}

// append stores ev as the customer's next event, records its dedup key if
// the customer has none such yet, and moves its conversation's LastSeq and
// UpdatedAt. The caller has checked the customer.
func (w *boltTx) append(ev Event) (Event, error) {
	ev.stamp(w.now)
	ev.Seq = lastSeq(w.Tx, ev.CustomerID) + 1
	if len(ev.Payload) > 0 {
		// Stored compact and unescaped, so the event returned now is byte for
		// byte the one read back later.
		var buf bytes.Buffer
		if err := json.Compact(&buf, ev.Payload); err != nil {
			return Event{}, err
		}
		ev.Payload = buf.Bytes()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return Event{}, err
	}
	if err := w.put(bucketTimelines, seqKey(ev.CustomerID, ev.Seq), bytes.TrimSuffix(buf.Bytes(), []byte("\n"))); err != nil {
		return Event{}, err
	}
	if k := ev.DedupKey(); k != "" {
		dk := dedupKey(ev.CustomerID, k)
		if w.Bucket(bucketTimelines).Get(dk) == nil {
			if err := w.put(bucketTimelines, dk, binary.BigEndian.AppendUint64(nil, ev.Seq)); err != nil {
				return Event{}, err
			}
		}
	}
	if ev.ConversationID != "" && ownsConversation(w.Tx, ev.CustomerID, ev.ConversationID) {
		// The conversation is the customer's: move its activity, beside
		// the event just written (see activityKey).
		v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), ev.Seq)
		v = binary.BigEndian.AppendUint64(v, uint64(w.now.UnixNano()))
		if err := w.put(bucketTimelines, activityKey(ev.CustomerID, ev.ConversationID), v); err != nil {
			return Event{}, err
		}
	}
	w.evs = append(w.evs, ev)
	return ev, nil
}

// duplicate returns the stored event with ev's external id, if any. The
// caller has checked the customer.
func (w *boltTx) duplicate(ev Event) (Event, bool, error) {
	k := ev.DedupKey()
	if k == "" {
		return Event{}, false, nil
	}
	seq := w.Bucket(bucketTimelines).Get(dedupKey(ev.CustomerID, k))
	if seq == nil {
		return Event{}, false, nil
	}
	stored, err := loadEvent(w.Tx, ev.CustomerID, binary.BigEndian.Uint64(seq))
	return stored, true, err
}

// link stores id as the customer's. id.CustomerID is set.
func (w *boltTx) link(id Identity) error {
	if err := w.putJSON(bucketIdentities, []byte(id.Key()), id); err != nil {
		return err
	}
	return w.put(bucketCustomerIdents, customerKey(id.CustomerID, id.Key()), []byte{})
}

// customerKey is <customer id> \x00 <rest>.
func customerKey(customerID, rest string) []byte {
	k := make([]byte, 0, len(customerID)+1+len(rest))
	k = append(k, customerID...)
	k = append(k, 0)
	return append(k, rest...)
}

func seqKey(customerID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(customerKey(customerID, ""), seq)
}

// customerEnd is the first key after the customer's \x00 range.
func customerEnd(customerID string) []byte {
	return append([]byte(customerID), 1)
}

// dedupKey is <customer id> \x01 <Event.DedupKey()>, in the timelines
// bucket just after the customer's events.
func dedupKey(customerID, key string) []byte {
	return append(customerEnd(customerID), key...)
}

// activityKey is <customer id> \x02 <conversation id>, in the timelines
// bucket after the customer's dedup entries: the conversation's LastSeq and
// UpdatedAt as of its latest event (8 + 8 bytes, big-endian; UnixNano).
// Every append to a conversation moves them; keeping them here instead of
// rewriting the conversation's record keeps the append's writes in one
// region of one tree (the record is elsewhere, and decoding and encoding
// it was a quarter of the committer's allocation). loadConversation
// overlays them; they win over the record's when newer.
func activityKey(customerID, conversationID string) []byte {
	return append(append([]byte(customerID), 2), conversationID...)
}

// ownsConversation reports whether the conversation is the customer's,
// from the customer's index of conversations (no decoding).
func ownsConversation(tx *bolt.Tx, customerID, conversationID string) bool {
	return tx.Bucket(bucketCustomerConvs).Get(customerKey(customerID, conversationID)) != nil
}

// overlayActivity sets cv's LastSeq and UpdatedAt from its activity key
// when that is newer than its record.
func overlayActivity(tx *bolt.Tx, cv *Conversation) {
	v := tx.Bucket(bucketTimelines).Get(activityKey(cv.CustomerID, cv.ID))
	if len(v) != 16 {
		return
	}
	if seq := binary.BigEndian.Uint64(v); seq > cv.LastSeq {
		cv.LastSeq = seq
		cv.UpdatedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))).UTC()
	}
}

// seekBefore moves c to the last key below end, or to the last key of all
// when end is nil.
func seekBefore(c *bolt.Cursor, end []byte) ([]byte, []byte) {
	if end == nil {
		return c.Last()
	}
	if k, _ := c.Seek(end); k == nil {
		return c.Last()
	}
	return c.Prev()
}

func lastSeq(tx *bolt.Tx, customerID string) uint64 {
	prefix := customerKey(customerID, "")
	k, _ := seekBefore(tx.Bucket(bucketTimelines).Cursor(), customerEnd(customerID))
	if !bytes.HasPrefix(k, prefix) {
		return 0
	}
	return binary.BigEndian.Uint64(k[len(prefix):])
}

// scan calls fn with the suffix after prefix and the value of each key under
// prefix, in key order, starting at prefix+from, until fn returns false.
// Both slices are valid only during the call.
func scan(b *bolt.Bucket, prefix, from []byte, fn func(suffix, v []byte) (bool, error)) error {
	c := b.Cursor()
	for k, v := c.Seek(append(slices.Clip(prefix), from...)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if more, err := fn(k[len(prefix):], v); err != nil || !more {
			return err
		}
	}
	return nil
}

func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

func loadCustomer(tx *bolt.Tx, id string) (Customer, error) {
	var c Customer
	ok, err := getJSON(tx.Bucket(bucketCustomers), []byte(id), &c)
	if err == nil && !ok {
		err = fmt.Errorf("customer %s: %w", id, ErrNotFound)
	}
	return c, err
}

// writableCustomer returns the customer if it exists and takes writes.
func writableCustomer(tx *bolt.Tx, id string) (Customer, error) {
	c, err := loadCustomer(tx, id)
	if err == nil && c.MergedInto != "" {
		err = fmt.Errorf("customer %s into %s: %w", id, c.MergedInto, ErrMerged)
	}
	return c, err
}

// checkWritable is writableCustomer for callers that need no record. The
// committer runs it for every append in turn, so it skips decoding when the
// record cannot be merged: a Customer with MergedInto set always encodes
// that key (the substring alone is not proof: an attribute may be named so).
func checkWritable(tx *bolt.Tx, id string) error {
	raw := tx.Bucket(bucketCustomers).Get([]byte(id))
	if raw == nil {
		return fmt.Errorf("customer %s: %w", id, ErrNotFound)
	}
	if !bytes.Contains(raw, []byte(`"merged_into"`)) {
		return nil
	}
	var c struct {
		MergedInto string `json:"merged_into"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	if c.MergedInto != "" {
		return fmt.Errorf("customer %s into %s: %w", id, c.MergedInto, ErrMerged)
	}
	return nil
}

func loadConversation(tx *bolt.Tx, id string) (Conversation, error) {
	var cv Conversation
	ok, err := getJSON(tx.Bucket(bucketConversations), []byte(id), &cv)
	if err == nil && !ok {
		err = fmt.Errorf("conversation %s: %w", id, ErrNotFound)
	}
	if err == nil {
		overlayActivity(tx, &cv)
	}
	return cv, err
}

func loadIdentity(tx *bolt.Tx, key string) (Identity, bool, error) {
	var id Identity
	ok, err := getJSON(tx.Bucket(bucketIdentities), []byte(key), &id)
	return id, ok, err
}

func loadEvent(tx *bolt.Tx, customerID string, seq uint64) (Event, error) {
	var ev Event
	ok, err := getJSON(tx.Bucket(bucketTimelines), seqKey(customerID, seq), &ev)
	if err == nil && !ok {
		err = fmt.Errorf("customer %s seq %d: %w", customerID, seq, ErrNotFound)
	}
	return ev, err
}

// activeTopic returns the id of the customer's active conversation on
// topic, or "".
func activeTopic(tx *bolt.Tx, customerID, topic string) string {
	return string(tx.Bucket(bucketActiveTopics).Get(customerKey(customerID, topic)))
}

// checkKeys rejects an event whose dedup key bbolt could not store. Event
// validation bounds the external id but not the channel.
func checkKeys(ev Event) error {
	if len(dedupKey(ev.CustomerID, ev.DedupKey())) > bolt.MaxKeySize {
		return fmt.Errorf("%w: channel name too long", ErrInvalid)
	}
	return nil
}

func (s *BoltStore) ResolveCustomer(ctx context.Context, id Identity, seed Customer) (Customer, bool, error) {
	if err := id.Validate(); err != nil {
		return Customer{}, false, err
	}
	if err := (CustomerUpdate{Tier: &seed.Tier, TimeZone: &seed.TimeZone}).Validate(); err != nil {
		return Customer{}, false, err
	}
	// Almost every call finds a known identity: answer those from a read
	// transaction and leave the committer to first contacts.
	var c Customer
	found := false
	err := s.view(ctx, func(tx *bolt.Tx) error {
		have, ok, err := loadIdentity(tx, id.Key())
		if err != nil || !ok {
			return err
		}
		found = true
		c, err = loadCustomer(tx, have.CustomerID)
		return err
	})
	if err != nil || found {
		return c, false, err
	}
	created := false
	err = s.update(ctx, func(w *boltTx) error {
		have, ok, err := loadIdentity(w.Tx, id.Key())
		if err != nil {
			return err
		}
		if ok {
			c, err = loadCustomer(w.Tx, have.CustomerID)
			created = false
			return err
		}
		c = seed
		c.ID = NewID("cus")
		c.MergedInto = ""
		c.CreatedAt, c.UpdatedAt = w.now, w.now
		if err := w.putJSON(bucketCustomers, []byte(c.ID), c); err != nil {
			return err
		}
		linked := id
		linked.CustomerID, linked.LinkedAt = c.ID, w.now
		created = true
		return w.link(linked)
	})
	return c, created, err
}

func (s *BoltStore) LinkIdentity(ctx context.Context, customerID string, id Identity, author string) (Event, bool, error) {
	if err := id.Validate(); err != nil {
		return Event{}, false, err
	}
	var ev Event
	appended := false
	err := s.update(ctx, func(w *boltTx) error {
		ev, appended = Event{}, false
		if err := checkWritable(w.Tx, customerID); err != nil {
			return err
		}
		have, ok, err := loadIdentity(w.Tx, id.Key())
		if err != nil {
			return err
		}
		if ok {
			if have.CustomerID != customerID {
				return fmt.Errorf("%s to %s: %w", id.Kind, customerID, ErrIdentityTaken)
			}
			if id.Verified && !have.Verified {
				have.Verified = true
				return w.putJSON(bucketIdentities, []byte(id.Key()), have)
			}
			return nil
		}
		linked := id
		linked.CustomerID, linked.LinkedAt = customerID, w.now
		if err := w.link(linked); err != nil {
			return err
		}
		ev, err = w.append(Event{CustomerID: customerID, Kind: KindIdentityLinked, Channel: ChannelSystem,
			Author: author, Payload: mustJSON(linked)})
		appended = err == nil
		return err
	})
	return ev, appended, err
}

func (s *BoltStore) Merge(ctx context.Context, into, from, evidence, author string) (Event, error) {
	if into == from {
		return Event{}, fmt.Errorf("%w: cannot merge %s into itself", ErrInvalid, into)
	}
	if evidence == "" {
		return Event{}, fmt.Errorf("%w: merge needs evidence", ErrInvalid)
	}
	var merged Event
	err := s.update(ctx, func(w *boltTx) error {
		if err := checkWritable(w.Tx, into); err != nil {
			return err
		}
		src, err := writableCustomer(w.Tx, from)
		if err != nil {
			return err
		}
		// Read everything first: bbolt cursors are not stable across writes
		// to their bucket, and no check may fail once writing has begun.
		var ids []Identity
		var convIDs []string
		var old []Event
		topics := map[string]string{} // from's active topic → conversation id
		fromKey := customerKey(from, "")
		if err := scan(w.Bucket(bucketCustomerIdents), fromKey, nil, func(k, _ []byte) (bool, error) {
			id, ok, err := loadIdentity(w.Tx, string(k))
			if err == nil && !ok {
				err = fmt.Errorf("sessions: bolt: customer %s lists a missing identity", from)
			}
			ids = append(ids, id)
			return true, err
		}); err != nil {
			return err
		}
		if err := scan(w.Bucket(bucketCustomerConvs), fromKey, nil, func(k, _ []byte) (bool, error) {
			convIDs = append(convIDs, string(k))
			return true, nil
		}); err != nil {
			return err
		}
		if err := scan(w.Bucket(bucketActiveTopics), fromKey, nil, func(k, v []byte) (bool, error) {
			topics[string(k)] = string(v)
			return true, nil
		}); err != nil {
			return err
		}
		if err := scan(w.Bucket(bucketTimelines), fromKey, nil, func(_, v []byte) (bool, error) {
			var ev Event
			err := json.Unmarshal(v, &ev)
			old = append(old, ev)
			return true, err
		}); err != nil {
			return err
		}

		for _, id := range ids {
			if err := w.del(bucketCustomerIdents, customerKey(from, id.Key())); err != nil {
				return err
			}
			id.CustomerID = into
			if err := w.link(id); err != nil {
				return err
			}
		}
		// Conversations move before the copies so the copies update them; a
		// topic both had is resolved on from's side after the copies, so the
		// timeline reads: merge, the other profile's history, the clean-up.
		var dupes []string
		for topic, id := range topics {
			if err := w.del(bucketActiveTopics, customerKey(from, topic)); err != nil {
				return err
			}
			if activeTopic(w.Tx, into, topic) != "" {
				dupes = append(dupes, id)
			} else if err := w.put(bucketActiveTopics, customerKey(into, topic), []byte(id)); err != nil {
				return err
			}
		}
		for _, id := range convIDs {
			cv, err := loadConversation(w.Tx, id)
			if err != nil {
				return err
			}
			// The record takes the activity (loadConversation overlaid it)
			// and the key under from goes. The copies below then move it in
			// into's numbering: a copy's seq is always above the original's.
			cv.CustomerID = into
			if err := w.putJSON(bucketConversations, []byte(id), cv); err != nil {
				return err
			}
			if err := w.del(bucketTimelines, activityKey(from, id)); err != nil {
				return err
			}
			if err := w.del(bucketCustomerConvs, customerKey(from, id)); err != nil {
				return err
			}
			if err := w.put(bucketCustomerConvs, customerKey(into, id), []byte{}); err != nil {
				return err
			}
		}
		merged, err = w.append(MergedEvent(into, from, evidence, author, len(old), lastSeq(w.Tx, into)))
		if err != nil {
			return err
		}
		for _, ev := range old {
			if _, err := w.append(CopyForMerge(ev, into)); err != nil {
				return err
			}
		}
		slices.Sort(dupes)
		resolved := StatusResolved
		for _, id := range dupes {
			cv, err := loadConversation(w.Tx, id)
			if err != nil {
				return err
			}
			ev := ConversationUpdate{Status: &resolved, Event: Event{Author: author}}.Apply(&cv, w.now)
			if err := w.putJSON(bucketConversations, []byte(id), cv); err != nil {
				return err
			}
			if _, err := w.append(ev); err != nil {
				return err
			}
		}
		src.MergedInto, src.UpdatedAt = into, w.now
		return w.putJSON(bucketCustomers, []byte(from), src)
	})
	return merged, err
}

func (s *BoltStore) Customer(ctx context.Context, id string) (Customer, error) {
	var c Customer
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		c, err = loadCustomer(tx, id)
		return err
	})
	return c, err
}

func (s *BoltStore) UpdateCustomer(ctx context.Context, id string, u CustomerUpdate) (Customer, error) {
	if err := u.Validate(); err != nil {
		return Customer{}, err
	}
	var c Customer
	err := s.update(ctx, func(w *boltTx) (err error) {
		if c, err = writableCustomer(w.Tx, id); err != nil {
			return err
		}
		ev, changed := u.Change(&c, w.now)
		if err := w.putJSON(bucketCustomers, []byte(id), c); err != nil || !changed {
			return err
		}
		_, err = w.append(ev)
		return err
	})
	return c, err
}

func (s *BoltStore) Identities(ctx context.Context, customerID string) ([]Identity, error) {
	var out []Identity
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if _, err := loadCustomer(tx, customerID); err != nil {
			return err
		}
		// Index order is Identity.Key order, which is SortIdentities' order.
		return scan(tx.Bucket(bucketCustomerIdents), customerKey(customerID, ""), nil, func(k, _ []byte) (bool, error) {
			id, _, err := loadIdentity(tx, string(k))
			out = append(out, id)
			return true, err
		})
	})
	return out, err
}

func (s *BoltStore) IdentityOwner(ctx context.Context, id Identity) (string, error) {
	var owner string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		have, ok, err := loadIdentity(tx, id.Key())
		if err == nil && !ok {
			// The kind, never the value: errors end up in logs, values are PII.
			err = fmt.Errorf("identity %s: %w", id.Kind, ErrNotFound)
		}
		owner = have.CustomerID
		return err
	})
	return owner, err
}

func (s *BoltStore) FindCustomers(ctx context.Context, q CustomerQuery) ([]Customer, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	var out []Customer
	err := s.view(ctx, func(tx *bolt.Tx) error {
		keep := func(c Customer) bool {
			if c.MergedInto == "" && q.Matches(c) {
				out = append(out, c)
			}
			return len(out) < q.limit()
		}
		// A phone or email names at most one customer through the identity
		// index; only a name alone needs a scan.
		owner := ""
		for _, id := range []Identity{{Kind: IdentityPhone, Value: q.Phone}, {Kind: IdentityEmail, Value: q.Email}} {
			if id.Value == "" {
				continue
			}
			have, ok, err := loadIdentity(tx, id.Key())
			if err != nil || !ok || (owner != "" && owner != have.CustomerID) {
				return err
			}
			owner = have.CustomerID
		}
		if owner != "" {
			c, err := loadCustomer(tx, owner)
			if err == nil {
				keep(c)
			}
			return err
		}
		return scan(tx.Bucket(bucketCustomers), nil, nil, func(_, v []byte) (bool, error) {
			var c Customer
			if err := json.Unmarshal(v, &c); err != nil {
				return false, err
			}
			return keep(c), nil
		})
	})
	return out, err
}

func (s *BoltStore) Append(ctx context.Context, ev Event) (Event, bool, error) {
	if err := ev.Validate(); err != nil {
		return Event{}, false, err
	}
	if err := checkKeys(ev); err != nil {
		return Event{}, false, err
	}
	ev.Origin = ""
	var stored Event
	appended := false
	err := s.update(ctx, func(w *boltTx) error {
		if err := checkWritable(w.Tx, ev.CustomerID); err != nil {
			return err
		}
		var err error
		var dup bool
		if stored, dup, err = w.duplicate(ev); err != nil || dup {
			appended = false
			return err
		}
		if ev.ConversationID != "" && !ownsConversation(w.Tx, ev.CustomerID, ev.ConversationID) {
			return fmt.Errorf("%w: conversation %s is not customer %s's", ErrInvalid, ev.ConversationID, ev.CustomerID)
		}
		stored, err = w.append(ev)
		appended = err == nil
		return err
	})
	return stored, appended, err
}

func (s *BoltStore) Timeline(ctx context.Context, customerID string, after uint64, limit int) ([]Event, error) {
	limit = TimelineLimit(limit)
	var out []Event
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if _, err := loadCustomer(tx, customerID); err != nil || after == math.MaxUint64 {
			return err
		}
		from := binary.BigEndian.AppendUint64(nil, after+1)
		return scan(tx.Bucket(bucketTimelines), customerKey(customerID, ""), from, func(_, v []byte) (bool, error) {
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return false, err
			}
			out = append(out, ev)
			return len(out) < limit, nil
		})
	})
	return out, err
}

func (s *BoltStore) LastSeq(ctx context.Context, customerID string) (uint64, error) {
	var seq uint64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if _, err := loadCustomer(tx, customerID); err != nil {
			return err
		}
		seq = lastSeq(tx, customerID)
		return nil
	})
	return seq, err
}

func (s *BoltStore) OpenConversation(ctx context.Context, customerID, topic, channel string) (Conversation, bool, error) {
	if err := ValidateTopic(topic, channel); err != nil {
		return Conversation{}, false, err
	}
	// The active conversation usually exists: find it without the
	// committer. Only a writable customer has active conversations (a merge
	// moves them), so a hit needs no other check.
	var cv Conversation
	found := false
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		if id := activeTopic(tx, customerID, topic); id != "" {
			found = true
			cv, err = loadConversation(tx, id)
		}
		return err
	})
	if err != nil || found {
		return cv, false, err
	}
	created := false
	err = s.update(ctx, func(w *boltTx) (err error) {
		if err := checkWritable(w.Tx, customerID); err != nil {
			return err
		}
		if id := activeTopic(w.Tx, customerID, topic); id != "" {
			created = false
			cv, err = loadConversation(w.Tx, id)
			return err
		}
		cv, err = w.open(customerID, topic, channel)
		created = err == nil
		return err
	})
	return cv, created, err
}

// open records a new active conversation on topic and appends its opening
// event. The caller has checked the customer and that the topic has no
// active conversation.
func (w *boltTx) open(customerID, topic, channel string) (Conversation, error) {
	cv := Conversation{ID: NewID("cnv"), CustomerID: customerID, Status: StatusOpen, Channel: channel,
		Topic: topic, CreatedAt: w.now, UpdatedAt: w.now}
	if err := w.putJSON(bucketConversations, []byte(cv.ID), cv); err != nil {
		return Conversation{}, err
	}
	if err := w.put(bucketCustomerConvs, customerKey(customerID, cv.ID), []byte{}); err != nil {
		return Conversation{}, err
	}
	if err := w.put(bucketActiveTopics, customerKey(customerID, topic), []byte(cv.ID)); err != nil {
		return Conversation{}, err
	}
	ev, err := w.append(OpenedEvent(cv))
	cv.LastSeq = ev.Seq
	return cv, err
}

func (s *BoltStore) Intake(ctx context.Context, topic string, ev Event) (Conversation, Event, bool, error) {
	if err := validateIntake(topic, ev); err != nil {
		return Conversation{}, Event{}, false, err
	}
	if err := checkKeys(ev); err != nil {
		return Conversation{}, Event{}, false, err
	}
	ev.Origin = ""
	var cv Conversation
	var stored Event
	appended := false
	err := s.update(ctx, func(w *boltTx) error {
		// The committer may run this again after rolling back its batch.
		cv, stored, appended = Conversation{}, Event{}, false
		if err := checkWritable(w.Tx, ev.CustomerID); err != nil {
			return err
		}
		var err error
		var dup bool
		if stored, dup, err = w.duplicate(ev); err != nil {
			return err
		}
		if dup {
			if stored.ConversationID != "" {
				cv, err = loadConversation(w.Tx, stored.ConversationID)
			}
			return err
		}
		if id := activeTopic(w.Tx, ev.CustomerID, topic); id != "" {
			cv, err = loadConversation(w.Tx, id)
		} else {
			cv, err = w.open(ev.CustomerID, topic, ev.Channel)
		}
		if err != nil {
			return err
		}
		in := ev
		in.ConversationID = cv.ID
		if stored, err = w.append(in); err != nil {
			return err
		}
		cv.LastSeq, cv.UpdatedAt, appended = stored.Seq, w.now, true
		return nil
	})
	return cv, stored, appended, err
}

func (s *BoltStore) Conversation(ctx context.Context, id string) (Conversation, error) {
	var cv Conversation
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		cv, err = loadConversation(tx, id)
		return err
	})
	return cv, err
}

func (s *BoltStore) Conversations(ctx context.Context, q ConversationQuery) ([]Conversation, string, error) {
	limit := PageLimit(q.Limit)
	var page []Conversation
	err := s.view(ctx, func(tx *bolt.Tx) error {
		// Walk ids downwards from the cursor, through the customer's index
		// when the query names one, and read one match past the page to know
		// whether there is a next one.
		bucket, prefix, end := tx.Bucket(bucketConversations), []byte(nil), []byte(nil)
		if q.CustomerID != "" {
			bucket, prefix, end = tx.Bucket(bucketCustomerConvs), customerKey(q.CustomerID, ""), customerEnd(q.CustomerID)
		}
		if q.Cursor != "" {
			end = append(slices.Clip(prefix), q.Cursor...)
		}
		c := bucket.Cursor()
		for k, v := seekBefore(c, end); k != nil && bytes.HasPrefix(k, prefix) && len(page) <= limit; k, v = c.Prev() {
			var cv Conversation
			var err error
			if q.CustomerID != "" {
				cv, err = loadConversation(tx, string(k[len(prefix):]))
			} else if err = json.Unmarshal(v, &cv); err == nil {
				overlayActivity(tx, &cv)
			}
			if err != nil {
				return err
			}
			if q.Matches(cv) {
				page = append(page, cv)
			}
		}
		return nil
	})
	if err != nil || len(page) <= limit {
		return page, "", err
	}
	return page[:limit], page[limit-1].ID, nil
}

func (s *BoltStore) UpdateConversation(ctx context.Context, id string, u ConversationUpdate) (Conversation, Event, error) {
	if err := u.Validate(); err != nil {
		return Conversation{}, Event{}, err
	}
	var cv Conversation
	var ev Event
	err := s.update(ctx, func(w *boltTx) (err error) {
		if cv, err = loadConversation(w.Tx, id); err != nil {
			return err
		}
		if err := checkWritable(w.Tx, cv.CustomerID); err != nil {
			return err
		}
		wasActive := cv.Status.Active()
		if u.Status != nil && u.Status.Active() && !wasActive {
			if other := activeTopic(w.Tx, cv.CustomerID, cv.Topic); other != "" && other != id {
				return fmt.Errorf("reopen %s: %w", id, ErrConflict)
			}
		}
		ev = u.Apply(&cv, w.now)
		ev.Origin = ""
		if err := ev.Validate(); err != nil {
			return err
		}
		if err := checkKeys(ev); err != nil {
			return err
		}
		if err := w.putJSON(bucketConversations, []byte(id), cv); err != nil {
			return err
		}
		topicKey := customerKey(cv.CustomerID, cv.Topic)
		switch {
		case wasActive && !cv.Status.Active():
			err = w.del(bucketActiveTopics, topicKey)
		case !wasActive && cv.Status.Active():
			err = w.put(bucketActiveTopics, topicKey, []byte(id))
		}
		if err != nil {
			return err
		}
		if ev, err = w.append(ev); err != nil {
			return err
		}
		cv.LastSeq = ev.Seq
		return nil
	})
	return cv, ev, err
}

func (s *BoltStore) Subscribe(ctx context.Context) (*Subscription, error) {
	return s.hub.subscribe(ctx)
}

func (s *BoltStore) Ping(ctx context.Context) error {
	if p := s.ckptErr.Load(); p != nil {
		return fmt.Errorf("sessions: bolt checkpoint: %w", *p)
	}
	if p := s.broken.Load(); p != nil {
		return *p
	}
	return s.view(ctx, func(*bolt.Tx) error { return nil })
}

// Close waits for queued writes to commit and for reads to finish, ends
// every subscription and closes the file.
func (s *BoltStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	<-s.done
	s.hub.close()
	var err error
	if s.wal != nil {
		// A last checkpoint, so the next open replays nothing.
		err = s.wal.checkpointNow()
		s.wal.close()
	}
	return errors.Join(err, s.db.Close(), s.lock.Release())
}

// takeBack removes the record at mark from the log after its batch
// failed. If even that fails, the log may hold a batch that was refused,
// which a restart would replay: the store refuses every write from then on.
func (s *BoltStore) takeBack(mark int64) {
	if err := s.wal.unappend(mark); err != nil {
		err = fmt.Errorf("sessions: bolt: the log could not take back a failed write, so the store refuses writes until restarted: %w", err)
		s.broken.Store(&err)
	}
}
