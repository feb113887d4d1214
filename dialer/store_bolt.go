package dialer

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltStore is the single-node Store: one bbolt file (the gateway's is
// <data_dir>/dialer.db), every write fsynced before it returns. Layout
// (campaign ids hold no '.' or control character, so a campaign's keys
// are one contiguous range):
//
//	campaigns  <campaign id>                               → Campaign JSON
//	attempts   <attempt id> (starts "<campaign id>.")      → Attempt JSON
//	due        <campaign id> \x00 <due µs, 8 bytes> <attempt id> → ""
//	counts     <campaign id> \x00 <Counts key>              → int64, 8 bytes
//
// due indexes the attempts in state due, so a tick reads the next ones
// with one cursor walk; each SaveAttempts updates it in the same
// transaction. Leases live in the process: the gateway's data_dir lock
// already keeps a single-node deployment to one process.
type BoltStore struct {
	localLeases
	db *bolt.DB
}

var _ Store = (*BoltStore)(nil)

var (
	bktCampaigns = []byte("campaigns")
	bktAttempts  = []byte("attempts")
	bktDue       = []byte("due")
	bktCounts    = []byte("counts")
)

// OpenBoltStore opens (or creates, with its directory) the store at
// path; clock (nil: the system clock) times its leases. A second process
// opening the file fails after a second.
func OpenBoltStore(path string, clock Clock) (*BoltStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("dialer: bolt %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("dialer: bolt %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktCampaigns, bktAttempts, bktDue, bktCounts} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("dialer: bolt %s: %w", path, err)
	}
	return &BoltStore{localLeases: newLocalLeases(clock), db: db}, nil
}

func (b *BoltStore) Close() error { return b.db.Close() }

func (b *BoltStore) CreateCampaign(ctx context.Context, c Campaign) (Campaign, error) {
	return b.putCampaign(ctx, c, true)
}

func (b *BoltStore) SaveCampaign(ctx context.Context, c Campaign) (Campaign, error) {
	return b.putCampaign(ctx, c, false)
}

func (b *BoltStore) putCampaign(ctx context.Context, c Campaign, create bool) (Campaign, error) {
	if err := ctx.Err(); err != nil {
		return Campaign{}, err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bktCampaigns)
		raw := bk.Get([]byte(c.ID()))
		switch {
		case create && (raw != nil || c.Version != 0):
			return fmt.Errorf("%w: campaign %s exists", ErrConflict, c.ID())
		case !create && raw == nil:
			return fmt.Errorf("%w: campaign %s", ErrNotFound, c.ID())
		case !create:
			var old Campaign
			if err := json.Unmarshal(raw, &old); err != nil {
				return err
			}
			if old.Version != c.Version {
				return fmt.Errorf("%w: campaign %s is at version %d, not %d", ErrConflict, c.ID(), old.Version, c.Version)
			}
		}
		c.Version++
		doc, err := json.Marshal(c)
		if err != nil {
			return err
		}
		return bk.Put([]byte(c.ID()), doc)
	})
	if err != nil {
		return Campaign{}, err
	}
	return c, nil
}

func (b *BoltStore) Campaign(ctx context.Context, id string) (Campaign, error) {
	var c Campaign
	err := b.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktCampaigns).Get([]byte(id))
		if raw == nil {
			return fmt.Errorf("%w: campaign %s", ErrNotFound, id)
		}
		return json.Unmarshal(raw, &c)
	})
	return c, err
}

func (b *BoltStore) Campaigns(ctx context.Context) ([]Campaign, error) {
	var out []Campaign
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktCampaigns).ForEach(func(_, v []byte) error {
			var c Campaign
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// dueKey indexes a due attempt: campaign, due time, id.
func dueKey(a Attempt) []byte {
	k := make([]byte, 0, len(a.Campaign)+9+len(a.ID))
	k = append(append(k, a.Campaign...), 0)
	k = binary.BigEndian.AppendUint64(k, uint64(a.Due.UnixMicro())^1<<63)
	return append(k, a.ID...)
}

func (b *BoltStore) SaveAttempts(ctx context.Context, as ...Attempt) ([]Attempt, error) {
	if err := checkBatch(as); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]Attempt, len(as))
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk, due := tx.Bucket(bktAttempts), tx.Bucket(bktDue)
		delta := map[string]int{}
		for i, a := range as {
			var old Attempt
			if raw := bk.Get([]byte(a.ID)); raw != nil {
				if err := json.Unmarshal(raw, &old); err != nil {
					return err
				}
				for _, k := range countKeys(old) {
					delta[k]--
				}
			}
			if err := casAttempt(a, old.Version); err != nil {
				return err
			}
			for _, k := range countKeys(a) {
				delta[k]++
			}
			if old.State == AttemptDue {
				if err := due.Delete(dueKey(old)); err != nil {
					return err
				}
			}
			a.Version++
			doc, err := json.Marshal(a)
			if err != nil {
				return err
			}
			if err := bk.Put([]byte(a.ID), doc); err != nil {
				return err
			}
			if a.State == AttemptDue {
				if err := due.Put(dueKey(a), nil); err != nil {
					return err
				}
			}
			out[i] = a
		}
		return addCounts(tx.Bucket(bktCounts), as[0].Campaign, delta)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func addCounts(bk *bolt.Bucket, campaign string, delta map[string]int) error {
	for k, d := range delta {
		if d == 0 {
			continue
		}
		key := append(append([]byte(campaign), 0), k...)
		var n int64
		if v := bk.Get(key); len(v) == 8 {
			n = int64(binary.BigEndian.Uint64(v))
		}
		n += int64(d)
		var err error
		if n == 0 {
			err = bk.Delete(key)
		} else {
			err = bk.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *BoltStore) Counts(ctx context.Context, campaign string) (Counts, error) {
	out := Counts{}
	prefix := append([]byte(campaign), 0)
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktCounts).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			out[string(k[len(prefix):])] = int(int64(binary.BigEndian.Uint64(v)))
		}
		return nil
	})
	return out, err
}

func (b *BoltStore) Attempt(ctx context.Context, id string) (Attempt, error) {
	var a Attempt
	err := b.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktAttempts).Get([]byte(id))
		if raw == nil {
			return fmt.Errorf("%w: attempt %s", ErrNotFound, id)
		}
		return json.Unmarshal(raw, &a)
	})
	return a, err
}

func (b *BoltStore) Attempts(ctx context.Context, campaign string) ([]Attempt, error) {
	var out []Attempt
	prefix := []byte(campaign + ".")
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktAttempts).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var a Attempt
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

func (b *BoltStore) Due(ctx context.Context, campaign string, at time.Time, limit int) ([]Attempt, error) {
	var out []Attempt
	prefix := append([]byte(campaign), 0)
	last := dueKey(Attempt{Campaign: campaign, Due: at.Add(time.Microsecond)})
	err := b.db.View(func(tx *bolt.Tx) error {
		c, atts := tx.Bucket(bktDue).Cursor(), tx.Bucket(bktAttempts)
		for k, _ := c.Seek(prefix); k != nil && len(out) < limit && bytes.HasPrefix(k, prefix) && bytes.Compare(k, last) < 0; k, _ = c.Next() {
			raw := atts.Get(k[len(prefix)+8:])
			if raw == nil {
				return fmt.Errorf("dialer: due index names a missing attempt %s", k[len(prefix)+8:])
			}
			var a Attempt
			if err := json.Unmarshal(raw, &a); err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}
