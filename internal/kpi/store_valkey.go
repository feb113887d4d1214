package kpi

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"
)

var _ Store = (*ValkeyStore)(nil)

// ValkeyStore keeps counts in Valkey, shared by the nodes of a cluster:
// one hash per slot ("<prefix>:kpi:<slot>", field = Counts key), added to
// with HINCRBY and kept for Retention. The nodes elect the one that
// counts with a lease ("<prefix>:kpi:leader", renewed on every Lead, so
// about once a second); when the leader dies another node takes over once
// the lease lapses, and the events of that gap (at most Lease) are not
// counted.
type ValkeyStore struct {
	client    valkey.Client
	prefix    string
	node      string
	lease     time.Duration
	retention time.Duration
}

// ValkeyOptions configures NewValkeyStore.
type ValkeyOptions struct {
	// Prefix starts every key; empty means "og".
	Prefix string
	// Node is this node's name, unique per process; required.
	Node string
	// Lease is how long the leader counts without renewing; zero means 5s.
	Lease time.Duration
	// Retention is how long a slot is kept; zero means 400 days.
	Retention time.Duration
}

// NewValkeyStore uses client (which the caller closes).
func NewValkeyStore(client valkey.Client, o ValkeyOptions) (*ValkeyStore, error) {
	if o.Node == "" || strings.ContainsAny(o.Node, " \t\r\n") {
		return nil, fmt.Errorf("kpi: valkey store needs a node name without spaces, not %q", o.Node)
	}
	if o.Prefix == "" {
		o.Prefix = "og"
	}
	if o.Lease <= 0 {
		o.Lease = 5 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 400 * 24 * time.Hour
	}
	return &ValkeyStore{client: client, prefix: o.Prefix, node: o.Node, lease: o.Lease, retention: o.Retention}, nil
}

func (s *ValkeyStore) slotKey(slot int64) string {
	return s.prefix + ":kpi:" + strconv.FormatInt(slot, 10)
}

func (s *ValkeyStore) Add(ctx context.Context, deltas map[int64]Counts) error {
	var cmds valkey.Commands
	for slot, d := range deltas {
		k := s.slotKey(slot)
		for field, n := range d {
			if n != 0 {
				cmds = append(cmds, s.client.B().Hincrby().Key(k).Field(field).Increment(n).Build())
			}
		}
		cmds = append(cmds, s.client.B().Pexpire().Key(k).Milliseconds(s.retention.Milliseconds()).Build())
	}
	for _, r := range s.client.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("kpi: valkey add: %w", err)
		}
	}
	return nil
}

func (s *ValkeyStore) Load(ctx context.Context, from, to int64) (map[int64]Counts, error) {
	var cmds valkey.Commands
	var slots []int64
	for slot := from - from%int64(Slot/time.Second); slot < to; slot += int64(Slot / time.Second) {
		if slot < from {
			continue
		}
		slots = append(slots, slot)
		cmds = append(cmds, s.client.B().Hgetall().Key(s.slotKey(slot)).Build())
	}
	out := map[int64]Counts{}
	for i, r := range s.client.DoMulti(ctx, cmds...) {
		m, err := r.AsIntMap()
		if err != nil {
			return nil, fmt.Errorf("kpi: valkey load: %w", err)
		}
		if len(m) > 0 {
			out[slots[i]] = Counts(m)
		}
	}
	return out, nil
}

// leadScript takes the lease when free or renews it when ours.
var leadScript = valkey.NewLuaScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`)

func (s *ValkeyStore) Lead(ctx context.Context) (bool, error) {
	n, err := leadScript.Exec(ctx, s.client, []string{s.prefix + ":kpi:leader"},
		[]string{s.node, strconv.FormatInt(s.lease.Milliseconds(), 10)}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("kpi: valkey lease: %w", err)
	}
	return n == 1, nil
}

// Close gives the lease up if this node holds it, so another node counts
// at once; the client is the caller's.
func (s *ValkeyStore) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = leaveScript.Exec(ctx, s.client, []string{s.prefix + ":kpi:leader"}, []string{s.node}).Error()
	return nil
}

var leaveScript = valkey.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`)
