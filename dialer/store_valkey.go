package dialer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"
)

// ValkeyStore is the cluster Store: gateway processes sharing one Valkey
// (or Redis 7) server, standalone or Cluster. Every write is one Lua
// script, so a compare-and-set is atomic across processes. Keys, P being
// the prefix; a campaign's keys share the hash tag {d:<campaign id>}, so
// one script can touch them all in a Cluster:
//
//	P:{dialer}:campaigns        hash: campaign id → Campaign JSON
//	P:{dialer}:campaign_ver     hash: campaign id → version
//	P:{d:C}:attempts            hash: attempt id → Attempt JSON
//	P:{d:C}:attempt_ver         hash: attempt id → version
//	P:{d:C}:due                 sorted set: ids of due attempts by due time (µs)
//	P:{d:C}:attempt_counted     hash: attempt id → its Counts keys
//	P:{d:C}:counts              hash: Counts key → count
//	P:{d:C}:lease               string: the holder, with a PX expiry
type ValkeyStore struct {
	client valkey.Client
	prefix string
}

var _ Store = (*ValkeyStore)(nil)

// NewValkeyStore uses client under prefix (empty means "og"). The caller
// owns the client and closes it.
func NewValkeyStore(client valkey.Client, prefix string) (*ValkeyStore, error) {
	if prefix == "" {
		prefix = "og"
	}
	if strings.ContainsAny(prefix, "{} \t\r\n") {
		return nil, fmt.Errorf("dialer: valkey key prefix %q has a brace or a space", prefix)
	}
	return &ValkeyStore{client: client, prefix: prefix + ":"}, nil
}

// Close does nothing: the caller owns the client.
func (v *ValkeyStore) Close() error { return nil }

func (v *ValkeyStore) campaignKeys() []string {
	return []string{v.prefix + "{dialer}:campaigns", v.prefix + "{dialer}:campaign_ver"}
}

func (v *ValkeyStore) keys(campaign string) []string {
	t := v.prefix + "{d:" + campaign + "}:"
	return []string{t + "attempts", t + "attempt_ver", t + "due", t + "attempt_counted", t + "counts", t + "lease"}
}

// valkeyPut writes records under compare-and-set: ARGV is groups of
// (id, expected version, JSON with the new version, due score or "",
// Counts keys separated by spaces). KEYS: data hash, version hash and,
// for attempts, the due set, the hash of each attempt's Counts keys and
// the Counts hash.
var valkeyPut = valkey.NewLuaScript(`
for i = 1, #ARGV, 5 do
  local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  if cur ~= tonumber(ARGV[i+1]) then return {'conflict', ARGV[i], cur} end
end
for i = 1, #ARGV, 5 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+2])
  redis.call('HSET', KEYS[2], ARGV[i], tonumber(ARGV[i+1]) + 1)
  if KEYS[3] then
    if ARGV[i+3] ~= '' then redis.call('ZADD', KEYS[3], ARGV[i+3], ARGV[i])
    else redis.call('ZREM', KEYS[3], ARGV[i]) end
    local old = redis.call('HGET', KEYS[4], ARGV[i])
    if old then
      for k in string.gmatch(old, '%S+') do redis.call('HINCRBY', KEYS[5], k, -1) end
    end
    for k in string.gmatch(ARGV[i+4], '%S+') do redis.call('HINCRBY', KEYS[5], k, 1) end
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[i+4])
  end
end
return {'ok'}
`)

func (v *ValkeyStore) put(ctx context.Context, keys []string, args []string) error {
	arr, err := valkeyPut.Exec(ctx, v.client, keys, args).ToArray()
	if err != nil {
		return fmt.Errorf("dialer: valkey write: %w", err)
	}
	if s, _ := arr[0].ToString(); s == "conflict" {
		id, _ := arr[1].ToString()
		cur, _ := arr[2].AsInt64()
		return fmt.Errorf("%w: %s is at version %d", ErrConflict, id, cur)
	}
	return nil
}

func (v *ValkeyStore) CreateCampaign(ctx context.Context, c Campaign) (Campaign, error) {
	if c.Version != 0 {
		return Campaign{}, fmt.Errorf("%w: campaign %s exists", ErrConflict, c.ID())
	}
	return v.SaveCampaign(ctx, c)
}

func (v *ValkeyStore) SaveCampaign(ctx context.Context, c Campaign) (Campaign, error) {
	if c.Version != 0 {
		// A campaign is saved only if it exists: version 0 is creation.
		if _, err := v.Campaign(ctx, c.ID()); err != nil {
			return Campaign{}, err
		}
	}
	old := c.Version
	c.Version++
	doc, err := json.Marshal(c)
	if err != nil {
		return Campaign{}, err
	}
	if err := v.put(ctx, v.campaignKeys(), []string{c.ID(), strconv.FormatUint(old, 10), string(doc), "", ""}); err != nil {
		return Campaign{}, err
	}
	return c, nil
}

func (v *ValkeyStore) Campaign(ctx context.Context, id string) (Campaign, error) {
	raw, err := v.client.Do(ctx, v.client.B().Hget().Key(v.campaignKeys()[0]).Field(id).Build()).ToString()
	if valkey.IsValkeyNil(err) {
		return Campaign{}, fmt.Errorf("%w: campaign %s", ErrNotFound, id)
	}
	if err != nil {
		return Campaign{}, fmt.Errorf("dialer: campaign %s: %w", id, err)
	}
	var c Campaign
	return c, json.Unmarshal([]byte(raw), &c)
}

func (v *ValkeyStore) Campaigns(ctx context.Context) ([]Campaign, error) {
	m, err := v.client.Do(ctx, v.client.B().Hgetall().Key(v.campaignKeys()[0]).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("dialer: campaigns: %w", err)
	}
	out := make([]Campaign, 0, len(m))
	for _, id := range sortedKeys(m) {
		var c Campaign
		if err := json.Unmarshal([]byte(m[id]), &c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (v *ValkeyStore) SaveAttempts(ctx context.Context, as ...Attempt) ([]Attempt, error) {
	if err := checkBatch(as); err != nil || len(as) == 0 {
		return nil, err
	}
	out := make([]Attempt, len(as))
	args := make([]string, 0, 5*len(as))
	for i, a := range as {
		old := a.Version
		a.Version++
		doc, err := json.Marshal(a)
		if err != nil {
			return nil, err
		}
		score := ""
		if a.State == AttemptDue {
			score = strconv.FormatInt(a.Due.UnixMicro(), 10)
		}
		args = append(args, a.ID, strconv.FormatUint(old, 10), string(doc), score, strings.Join(countKeys(a), " "))
		out[i] = a
	}
	if err := v.put(ctx, v.keys(as[0].Campaign)[:5], args); err != nil {
		return nil, err
	}
	return out, nil
}

func (v *ValkeyStore) Attempt(ctx context.Context, id string) (Attempt, error) {
	raw, err := v.client.Do(ctx, v.client.B().Hget().Key(v.keys(campaignOf(id))[0]).Field(id).Build()).ToString()
	if valkey.IsValkeyNil(err) {
		return Attempt{}, fmt.Errorf("%w: attempt %s", ErrNotFound, id)
	}
	if err != nil {
		return Attempt{}, fmt.Errorf("dialer: attempt %s: %w", id, err)
	}
	var a Attempt
	return a, json.Unmarshal([]byte(raw), &a)
}

func (v *ValkeyStore) Attempts(ctx context.Context, campaign string) ([]Attempt, error) {
	m, err := v.client.Do(ctx, v.client.B().Hgetall().Key(v.keys(campaign)[0]).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("dialer: attempts of %s: %w", campaign, err)
	}
	out := make([]Attempt, 0, len(m))
	for _, id := range sortedKeys(m) {
		var a Attempt
		if err := json.Unmarshal([]byte(m[id]), &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (v *ValkeyStore) Due(ctx context.Context, campaign string, at time.Time, limit int) ([]Attempt, error) {
	if limit <= 0 {
		return nil, nil
	}
	k := v.keys(campaign)
	ids, err := v.client.Do(ctx, v.client.B().Zrange().Key(k[2]).Min("-inf").Max(strconv.FormatInt(at.UnixMicro(), 10)).
		Byscore().Limit(0, int64(limit)).Build()).AsStrSlice()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	docs, err := v.client.Do(ctx, v.client.B().Hmget().Key(k[0]).Field(ids...).Build()).ToArray()
	if err != nil {
		return nil, fmt.Errorf("dialer: due attempts of %s: %w", campaign, err)
	}
	out := make([]Attempt, 0, len(docs))
	for _, d := range docs {
		raw, err := d.ToString()
		if err != nil {
			continue // removed since the index was read
		}
		var a Attempt
		if err := json.Unmarshal([]byte(raw), &a); err != nil {
			return nil, err
		}
		if a.State == AttemptDue {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, dueOrder)
	return out, nil
}

func (v *ValkeyStore) Counts(ctx context.Context, campaign string) (Counts, error) {
	m, err := v.client.Do(ctx, v.client.B().Hgetall().Key(v.keys(campaign)[4]).Build()).AsIntMap()
	if err != nil {
		return nil, fmt.Errorf("dialer: counts of %s: %w", campaign, err)
	}
	out := Counts{}
	for k, n := range m {
		if n != 0 {
			out[k] = int(n)
		}
	}
	return out, nil
}

// valkeyLease takes the lease when free or renews it for its holder.
var valkeyLease = valkey.NewLuaScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

var valkeyUnlease = valkey.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

func (v *ValkeyStore) Lease(ctx context.Context, campaign, holder string, ttl time.Duration) (bool, error) {
	n, err := valkeyLease.Exec(ctx, v.client, v.keys(campaign)[5:],
		[]string{holder, strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("dialer: lease of %s: %w", campaign, err)
	}
	return n == 1, nil
}

func (v *ValkeyStore) Unlease(ctx context.Context, campaign, holder string) error {
	return valkeyUnlease.Exec(ctx, v.client, v.keys(campaign)[5:], []string{holder}).Error()
}
