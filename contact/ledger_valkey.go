package contact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"
)

// ValkeyLedger is the cluster Ledger: gateway processes sharing one Valkey
// (or Redis 7) server, standalone or Cluster, see one ledger, and a claim
// is one Lua script, so the check and the record are atomic across
// processes. Keys, P being the prefix and T the customer's hash tag
// {c:<customer id>} (the tag the sessions store uses, so with the same
// prefix a customer's touches share its slot):
//
//	P:T:lt      sorted set: Touch JSON, scored by At in Unix µs
//	P:T:lid     sorted set: touch id, scored the same (for retries and trimming)
//	P:T:lmerged string: the customer this one was merged into
//
// Each write drops the customer's touches older than the written one's At
// minus the retention and sets the keys to expire a retention after it,
// so a customer never touched again leaves nothing behind.
//
// # Merges
//
// A merge spans two customers, so two slots; it runs in steps, each atomic
// on one slot and safe to run again, and calling Merge again after a
// failure finishes it:
//
//  1. on from: lmerged is set to into; from's claims and records from
//     then on are redirected to into (the script answers "merged" and the
//     ledger runs it again on into);
//  2. from's touches are read (no more can arrive) and copied into into by
//     one script that skips ids into holds, so claims on into see them
//     atomically from then on;
//  3. from's touch keys are deleted.
//
// Between steps 1 and 2 a claim on into does not yet count from's
// touches: a merge is a rare administrative act, and that window is one
// round trip.
type ValkeyLedger struct {
	client    valkey.Client
	prefix    string // KeyPrefix and ":"
	retention time.Duration
}

var _ Ledger = (*ValkeyLedger)(nil)

// NewValkeyLedger uses client under prefix (empty means "og", the
// sessions store's default, so a customer's touches share its slot). The
// caller owns the client and closes it.
func NewValkeyLedger(client valkey.Client, prefix string, opts LedgerOptions) (*ValkeyLedger, error) {
	prefix, err := valkeyPrefix(prefix)
	if err != nil {
		return nil, err
	}
	return &ValkeyLedger{client: client, prefix: prefix, retention: opts.retention()}, nil
}

// valkeyPrefix checks prefix and returns it with its ":".
func valkeyPrefix(prefix string) (string, error) {
	if prefix == "" {
		prefix = "og"
	}
	if strings.ContainsAny(prefix, "{} \t\r\n") {
		return "", fmt.Errorf("contact: valkey key prefix %q has a brace or a space", prefix)
	}
	return prefix + ":", nil
}

// Close does nothing: the caller owns the client.
func (l *ValkeyLedger) Close() error { return nil }

// keys are the customer's lt, lid and lmerged keys, in script order.
func (l *ValkeyLedger) keys(customerID string) []string {
	t := l.prefix + "{c:" + customerID + "}:"
	return []string{t + "lt", t + "lid", t + "lmerged"}
}

// luaTrim drops what is older than the cutoff in ARGV[c] and sets the
// keys to expire after ARGV[c+1] ms; KEYS are lt, lid, lmerged.
const luaTrim = `
local function trim(c)
  local cutoff = '(' .. ARGV[c]
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
  redis.call('PEXPIRE', KEYS[1], ARGV[c + 1])
  redis.call('PEXPIRE', KEYS[2], ARGV[c + 1])
end
`

// valkeyClaim is Claim and Record. ARGV: id, at µs, Touch JSON, trim
// cutoff µs, expiry ms, then per limit purpose, channel, topic, campaign,
// outcome, window µs, max. The answer is {"merged", into}, {"stored"},
// {"ok"}, or {"reached", then per reached limit its index (0-based),
// count, first touch JSON and the score whose leaving frees the claim}.
// The counting is evaluate's (claim.go), in Lua.
var valkeyClaim = valkey.NewLuaScript(luaTrim + `
local into = redis.call('GET', KEYS[3])
if into then return {'merged', into} end
local id, at = ARGV[1], tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[2], id) then return {'stored'} end
local n = (#ARGV - 5) / 7
if n > 0 then
  local widest = 0
  for i = 0, n - 1 do widest = math.max(widest, tonumber(ARGV[6 + i * 7 + 5])) end
  local rows = redis.call('ZRANGEBYSCORE', KEYS[1], string.format('(%.0f', at - widest), '+inf', 'WITHSCORES')
  local docs = {}
  for j = 1, #rows, 2 do
    local d = cjson.decode(rows[j])
    if d.direction == 'out' then docs[#docs + 1] = {d, tonumber(rows[j + 1]), rows[j]} end
  end
  local out = {'reached'}
  for i = 0, n - 1 do
    local b = 6 + i * 7
    local p, ch, tp, cp, oc = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
    local from, need = at - tonumber(ARGV[b + 5]), math.max(tonumber(ARGV[b + 6]), 1)
    local first, scores = nil, {}
    for _, e in ipairs(docs) do
      local d = e[1]
      if e[2] > from and (p == '' or d.purpose == p) and (ch == '' or d.channel == ch)
        and (tp == '' or d.topic == tp) and (cp == '' or d.campaign == cp) and (oc == '' or d.outcome == oc) then
        first = first or e[3]
        scores[#scores + 1] = e[2]
      end
    end
    if #scores >= need then
      out[#out + 1] = i
      out[#out + 1] = #scores
      out[#out + 1] = first
      out[#out + 1] = string.format('%.0f', scores[#scores - need + 1])
    end
  end
  if #out > 1 then return out end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], id)
trim(4)
return {'ok'}
`)

// valkeyMergeMark is merge step 1, on from. ARGV: into, expiry ms. It
// answers {"ok"} or {"other", the customer from went into}.
var valkeyMergeMark = valkey.NewLuaScript(`
local cur = redis.call('GET', KEYS[3])
if cur and cur ~= ARGV[1] then return {'other', cur} end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
return {'ok'}
`)

// valkeyMergeCopy is merge step 2, on into. ARGV: trim cutoff µs, expiry
// ms, then per touch its score, id and JSON. It answers {"merged", into}
// or {"ok"}.
var valkeyMergeCopy = valkey.NewLuaScript(luaTrim + `
local into = redis.call('GET', KEYS[3])
if into then return {'merged', into} end
for i = 3, #ARGV, 3 do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i + 1]) then
    redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 2])
    redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
if #ARGV > 2 then trim(1) end
return {'ok'}
`)

func (l *ValkeyLedger) expiryArg() string { return strconv.FormatInt(l.retention.Milliseconds(), 10) }

func (l *ValkeyLedger) Claim(ctx context.Context, t Touch, limits []Limit) (Claimed, error) {
	t, err := normalizeTouch(t)
	if err != nil {
		return Claimed{}, err
	}
	if err := checkLimits(limits, l.retention); err != nil {
		return Claimed{}, err
	}
	doc, err := json.Marshal(t)
	if err != nil {
		return Claimed{}, err
	}
	at := t.At.UnixMicro()
	args := make([]string, 0, 5+7*len(limits))
	args = append(args, t.ID, strconv.FormatInt(at, 10), string(doc),
		strconv.FormatInt(t.At.Add(-l.retention).UnixMicro(), 10), l.expiryArg())
	for _, lim := range limits {
		args = append(args, lim.Purpose, lim.Channel, lim.Topic, lim.Campaign, lim.Outcome,
			strconv.FormatInt(lim.Window.Microseconds(), 10), strconv.Itoa(lim.Max))
	}
	owner := t.CustomerID
	for range maxMergeHops {
		arr, err := valkeyClaim.Exec(ctx, l.client, l.keys(owner), args).ToArray()
		if err != nil {
			return Claimed{}, fmt.Errorf("contact: claim touch %s of %s: %w", t.ID, t.CustomerID, err)
		}
		status, err := arr[0].ToString()
		if err != nil {
			return Claimed{}, err
		}
		switch status {
		case "ok", "stored":
			return Claimed{Recorded: true}, nil
		case "merged":
			if owner, err = arr[1].ToString(); err != nil {
				return Claimed{}, err
			}
		case "reached":
			return decodeReached(arr[1:], limits)
		default:
			return Claimed{}, fmt.Errorf("contact: claim touch %s: unexpected answer %q", t.ID, status)
		}
	}
	return Claimed{}, fmt.Errorf("contact: customer %s: merges go on for more than %d customers", t.CustomerID, maxMergeHops)
}

// decodeReached reads the script's reached limits, four values each.
func decodeReached(arr []valkey.ValkeyMessage, limits []Limit) (Claimed, error) {
	var out Claimed
	for i := 0; i+3 < len(arr); i += 4 {
		idx, err1 := arr[i].AsInt64()
		count, err2 := arr[i+1].AsInt64()
		first, err3 := arr[i+2].ToString()
		until, err4 := arr[i+3].AsInt64()
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return Claimed{}, fmt.Errorf("contact: claim answer: %w", err)
		}
		if idx < 0 || int(idx) >= len(limits) {
			return Claimed{}, fmt.Errorf("contact: claim answer names limit %d of %d", idx, len(limits))
		}
		r := Reached{Limit: limits[idx], Count: int(count)}
		if err := json.Unmarshal([]byte(first), &r.First); err != nil {
			return Claimed{}, fmt.Errorf("contact: claim answer: %w", err)
		}
		r.Until = time.UnixMicro(until).UTC().Add(limits[idx].Window.Truncate(time.Microsecond))
		out.Reached = append(out.Reached, r)
	}
	return out, nil
}

func (l *ValkeyLedger) Record(ctx context.Context, t Touch) error {
	_, err := l.Claim(ctx, t, nil)
	return err
}

// owner follows merges from id to the customer holding its touches.
func (l *ValkeyLedger) owner(ctx context.Context, id string) (string, error) {
	for range maxMergeHops {
		into, err := l.client.Do(ctx, l.client.B().Get().Key(l.keys(id)[2]).Build()).ToString()
		if valkey.IsValkeyNil(err) {
			return id, nil
		}
		if err != nil {
			return "", fmt.Errorf("contact: customer %s: %w", id, err)
		}
		id = into
	}
	return "", fmt.Errorf("contact: customer %s: merges go on for more than %d customers", id, maxMergeHops)
}

func (l *ValkeyLedger) Touches(ctx context.Context, customerID string, since time.Time) ([]Touch, error) {
	if err := checkCustomerID(customerID); err != nil {
		return nil, err
	}
	owner, err := l.owner(ctx, customerID)
	if err != nil {
		return nil, err
	}
	min := "-inf"
	if !since.IsZero() {
		// At >= since, with At in whole microseconds: since's ceiling.
		us := since.Truncate(time.Microsecond)
		if since.After(us) {
			us = us.Add(time.Microsecond)
		}
		min = strconv.FormatInt(us.UnixMicro(), 10)
	}
	docs, err := l.client.Do(ctx, l.client.B().Zrangebyscore().Key(l.keys(owner)[0]).Min(min).Max("+inf").Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("contact: touches of %s: %w", customerID, err)
	}
	out := make([]Touch, 0, len(docs))
	for _, d := range docs {
		var t Touch
		if err := json.Unmarshal([]byte(d), &t); err != nil {
			return nil, fmt.Errorf("contact: touches of %s: %w", customerID, err)
		}
		out = append(out, t)
	}
	sortTouches(out)
	return out, nil
}

func (l *ValkeyLedger) Merge(ctx context.Context, into, from string) error {
	if err := checkMerge(into, from); err != nil {
		return err
	}
	root, err := l.owner(ctx, into)
	if err != nil {
		return err
	}
	if root == from {
		return nil // into was merged into from: from already holds both
	}
	fromKeys := l.keys(from)
	arr, err := valkeyMergeMark.Exec(ctx, l.client, fromKeys, []string{root, l.expiryArg()}).ToArray()
	if err != nil {
		return fmt.Errorf("contact: merge %s into %s: %w", from, into, err)
	}
	if status, _ := arr[0].ToString(); status == "other" {
		cur, _ := arr[1].ToString()
		// Merged before into a customer that was itself merged into root:
		// the copy below finishes that merge if it was cut short.
		if r, err := l.owner(ctx, cur); err != nil || r != root {
			return fmt.Errorf("%w: %s went into %s, not %s", ErrMergeConflict, from, cur, into)
		}
	}
	rows, err := l.client.Do(ctx, l.client.B().Zrange().Key(fromKeys[0]).Min("0").Max("-1").Withscores().Build()).AsZScores()
	if err != nil {
		return fmt.Errorf("contact: merge %s into %s: %w", from, into, err)
	}
	if len(rows) > 0 {
		args := make([]string, 0, 2+3*len(rows))
		args = append(args, "", l.expiryArg())
		var newest int64 = math.MinInt64
		for _, r := range rows {
			var t Touch
			if err := json.Unmarshal([]byte(r.Member), &t); err != nil {
				return fmt.Errorf("contact: merge %s into %s: %w", from, into, err)
			}
			newest = max(newest, int64(r.Score))
			args = append(args, strconv.FormatInt(int64(r.Score), 10), t.ID, r.Member)
		}
		args[0] = strconv.FormatInt(time.UnixMicro(newest).Add(-l.retention).UnixMicro(), 10)
		for hop := 0; ; hop++ {
			arr, err := valkeyMergeCopy.Exec(ctx, l.client, l.keys(root), args).ToArray()
			if err != nil {
				return fmt.Errorf("contact: merge %s into %s: %w", from, into, err)
			}
			if status, _ := arr[0].ToString(); status != "merged" {
				break
			}
			// root was merged away meanwhile: follow it.
			if hop == maxMergeHops {
				return fmt.Errorf("contact: customer %s: merges go on for more than %d customers", into, maxMergeHops)
			}
			if root, err = arr[1].ToString(); err != nil {
				return err
			}
		}
	}
	if err := l.client.Do(ctx, l.client.B().Del().Key(fromKeys[0], fromKeys[1]).Build()).Error(); err != nil {
		return fmt.Errorf("contact: merge %s into %s: %w", from, into, err)
	}
	return nil
}
