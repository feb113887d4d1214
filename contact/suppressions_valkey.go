package contact

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/valkey-io/valkey-go"
)

// ValkeySuppressions is the cluster list. Its keys share one hash tag, so
// every write is one atomic script on Valkey Cluster too (P is the
// prefix):
//
//	P:{dnc}:e    hash: entry key (kind \x00 value \x00 channel \x00 purpose) → Suppression JSON
//	P:{dnc}:ix   sorted set, all scores 0: entry keys, for List in order
//
// One slot holds the whole list: a million entries are a few hundred MB
// on one shard, and in exchange an add and its index entry can never part.
// Match is one HMGET of at most four fields per key.
type ValkeySuppressions struct {
	client valkey.Client
	keys   []string // e, ix
}

var _ Suppressions = (*ValkeySuppressions)(nil)

// NewValkeySuppressions uses client under prefix (empty means "og"). The
// caller owns the client and closes it.
func NewValkeySuppressions(client valkey.Client, prefix string) (*ValkeySuppressions, error) {
	prefix, err := valkeyPrefix(prefix)
	if err != nil {
		return nil, err
	}
	return &ValkeySuppressions{client: client, keys: []string{prefix + "{dnc}:e", prefix + "{dnc}:ix"}}, nil
}

// Close does nothing: the caller owns the client.
func (v *ValkeySuppressions) Close() error { return nil }

// ARGV: entry key, JSON.
var valkeyDNCAdd = valkey.NewLuaScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
end
return 1
`)

// ARGV: entry key. Answers 1 when it was there.
var valkeyDNCRemove = valkey.NewLuaScript(`
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
`)

func (v *ValkeySuppressions) Add(ctx context.Context, s Suppression) error {
	s, err := normalizeSuppression(s)
	if err != nil {
		return err
	}
	j, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := valkeyDNCAdd.Exec(ctx, v.client, v.keys, []string{s.key(), string(j)}).Error(); err != nil {
		return fmt.Errorf("contact: add suppression: %w", err)
	}
	return nil
}

func (v *ValkeySuppressions) Remove(ctx context.Context, kind, value, channel, purpose string) error {
	k, err := removeKey(kind, value, channel, purpose)
	if err != nil {
		return err
	}
	n, err := valkeyDNCRemove.Exec(ctx, v.client, v.keys, []string{k}).AsInt64()
	if err != nil {
		return fmt.Errorf("contact: remove suppression: %w", err)
	}
	if n == 0 {
		return ErrNoSuppression
	}
	return nil
}

// load reads the entries under eks, skipping those removed meanwhile.
func (v *ValkeySuppressions) load(ctx context.Context, eks []string) ([]Suppression, error) {
	if len(eks) == 0 {
		return nil, nil
	}
	vals, err := v.client.Do(ctx, v.client.B().Hmget().Key(v.keys[0]).Field(eks...).Build()).ToArray()
	if err != nil {
		return nil, fmt.Errorf("contact: suppressions: %w", err)
	}
	var out []Suppression
	for _, m := range vals {
		j, err := m.ToString()
		if valkey.IsValkeyNil(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("contact: suppressions: %w", err)
		}
		var s Suppression
		if err := json.Unmarshal([]byte(j), &s); err != nil {
			return nil, fmt.Errorf("contact: suppressions: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

func (v *ValkeySuppressions) Match(ctx context.Context, keys []Key, channel, purpose string) ([]Suppression, error) {
	return v.load(ctx, matchKeys(keys, channel, purpose))
}

func (v *ValkeySuppressions) List(ctx context.Context, cursor string, limit int) ([]Suppression, string, error) {
	after, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	n := pageSize(limit)
	start := "-"
	if after != "" {
		start = "(" + after
	}
	// One more than asked says whether another page follows.
	eks, err := v.client.Do(ctx, v.client.B().Zrange().Key(v.keys[1]).Min(start).Max("+").Bylex().Limit(0, int64(n+1)).Build()).AsStrSlice()
	if err != nil {
		return nil, "", fmt.Errorf("contact: suppressions: %w", err)
	}
	var next string
	if len(eks) > n {
		eks = eks[:n]
		next = encodeCursor(eks[n-1])
	}
	out, err := v.load(ctx, eks)
	return out, next, err
}
