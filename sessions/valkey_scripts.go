package sessions

import (
	"strings"

	"github.com/valkey-io/valkey-go"
)

// The Lua scripts of ValkeyStore. Each touches the keys of one customer
// (one hash tag, so one Valkey Cluster slot) or one global key, never both:
// that is what lets a script run atomically on a cluster. Every key a
// script touches is passed in KEYS. The key layout is described at the top
// of store_valkey.go.
//
// Scripts answer with an array whose first element is a status ("ok",
// "notfound", "merged" and so on) and whose rest depends on it; an
// error_reply means a bug or a backend failure, never a domain outcome.
//
// Events are written as JSON built by Go with a hole where the sequence
// goes (head .. seq .. tail), so the script only concatenates: it never
// decodes a payload, which cjson would not round-trip faithfully.

// luaPrelude is shared by the scripts that write a customer's timeline.
const luaPrelude = `
-- writable returns the customer's last sequence, or nil and the reply
-- refusing the write.
local function writable(cus)
  local c = redis.call('HMGET', cus, 'seq', 'merged')
  if not c[1] then return nil, {'notfound'} end
  if c[2] then return nil, {'merged', c[2]} end
  return tonumber(c[1])
end

local function active(status)
  return status == 'open' or status == 'pending'
end

-- put_event stores the event after last and returns its sequence and
-- JSON. The XADD, the one write that could be refused (by a stream whose
-- last id is ahead of the sequence), comes before the sequence moves, so a
-- refusal leaves no gap.
local function put_event(cus, tl, last, head, tail)
  local seq = last + 1
  local ev = head .. seq .. tail
  redis.call('XADD', tl, seq .. '-0', 'e', ev)
  redis.call('HSET', cus, 'seq', seq)
  return seq, ev
end

-- append_event puts the event after last, records its dedup key unless one
-- is recorded, and publishes it: a committed event is always published, by
-- the script that committed it. It returns the event's sequence.
local function append_event(cus, tl, dedup, last, dk, head, tail, channel)
  local seq, ev = put_event(cus, tl, last, head, tail)
  if dk ~= '' then redis.call('HSETNX', dedup, dk, seq) end
  redis.call('PUBLISH', channel, ev)
  return seq
end

-- stored is the JSON of the event at seq.
local function stored(tl, seq)
  local id = seq .. '-0'
  return redis.call('XRANGE', tl, id, id)[1][2][2]
end

-- duplicate is the JSON of the stored event whose dedup key is dk, or nil.
local function duplicate(tl, dedup, dk)
  if dk == '' then return nil end
  local seq = redis.call('HGET', dedup, dk)
  if seq then return stored(tl, seq) end
end

-- open makes K[6] the customer's active conversation on topic, with the
-- fields given as field/value pairs, and appends its opening event after
-- last, for scripts whose KEYS K start cus, tl, dedup, topics, convs,
-- conversation. It returns the opening event's sequence.
local function open(K, last, topic, id, head, tail, channel, ...)
  redis.call('HSET', K[4], topic, id)
  redis.call('ZADD', K[5], 0, id)
  redis.call('HSET', K[6], ...)
  local seq = append_event(K[1], K[2], K[3], last, '', head, tail, channel)
  redis.call('HSET', K[6], 'last_seq', seq)
  return seq
end

-- append_to appends an event to the conversation conv and moves its
-- activity; it returns the event's sequence.
local function append_to(cus, tl, dedup, conv, last, dk, head, tail, channel, now)
  local seq = append_event(cus, tl, dedup, last, dk, head, tail, channel)
  redis.call('HSET', conv, 'updated_at', now, 'last_seq', seq)
  return seq
end
`

// valkeyAppend: KEYS cus, tl, dedup[, conversation];
// ARGV dedup key, head, tail, channel, now.
var valkeyAppend = valkey.NewLuaScript(luaPrelude + `
local last, refusal = writable(KEYS[1])
if not last then return refusal end
local dup = duplicate(KEYS[2], KEYS[3], ARGV[1])
if dup then return {'dup', dup} end
if not KEYS[4] then
  return {'ok', append_event(KEYS[1], KEYS[2], KEYS[3], last, ARGV[1], ARGV[2], ARGV[3], ARGV[4])}
end
if redis.call('EXISTS', KEYS[4]) == 0 then return {'badconv'} end
return {'ok', append_to(KEYS[1], KEYS[2], KEYS[3], KEYS[4], last, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])}
`)

// valkeyIntake appends a customer's inbound event to the conversation Go
// found active on the topic, or to a new one it opens when Go found none,
// if the topic still stands so ("moved" with the holder otherwise, and Go
// reads again). KEYS cus, tl, dedup, topics, convs, conversation; ARGV
// dedup key, topic, conversation id, head, tail, channel, now, then, to
// open it, the opening event's head and tail and the conversation's
// field/value pairs. The reply carries the event's sequence and the
// conversation's fields as the write left them.
var valkeyIntake = valkey.NewLuaScript(luaPrelude + `
local last, refusal = writable(KEYS[1])
if not last then return refusal end
local dup = duplicate(KEYS[2], KEYS[3], ARGV[1])
if dup then return {'dup', dup} end
local opening = ARGV[8] ~= nil
local holder = redis.call('HGET', KEYS[4], ARGV[2]) or ''
if holder ~= (opening and '' or ARGV[3]) then return {'moved', holder} end
if opening then
  last = open(KEYS, last, ARGV[2], ARGV[3], ARGV[8], ARGV[9], ARGV[6], unpack(ARGV, 10))
end
local seq = append_to(KEYS[1], KEYS[2], KEYS[3], KEYS[6], last, ARGV[1], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return {'ok', seq, redis.call('HGETALL', KEYS[6])}
`)

// valkeyUpdateCustomer replaces the customer document if it has not
// changed since it was read (rev), and appends the profile_changed event
// that records it unless head is empty. KEYS cus, tl, dedup; ARGV rev,
// doc, head, tail, channel.
var valkeyUpdateCustomer = valkey.NewLuaScript(luaPrelude + `
local last, refusal = writable(KEYS[1])
if not last then return refusal end
if redis.call('HGET', KEYS[1], 'rev') ~= ARGV[1] then return {'stale'} end
redis.call('HSET', KEYS[1], 'doc', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'rev', 1)
if ARGV[3] == '' then return {'ok'} end
return {'ok', append_event(KEYS[1], KEYS[2], KEYS[3], last, '', ARGV[3], ARGV[4], ARGV[5])}
`)

// valkeyLink adds an identity to the customer with its identity_linked
// event, or upgrades the one it has to verified. KEYS cus, tl, dedup, ids;
// ARGV identity key, identity JSON, "1" if verified, head, tail, channel.
var valkeyLink = valkey.NewLuaScript(luaPrelude + `
local last, refusal = writable(KEYS[1])
if not last then return refusal end
local have = redis.call('HGET', KEYS[4], ARGV[1])
if have then
  if ARGV[3] == '1' then
    local up = string.gsub(have, '"verified":false', '"verified":true', 1)
    if up ~= have then redis.call('HSET', KEYS[4], ARGV[1], up) end
  end
  return {'have'}
end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
return {'ok', append_event(KEYS[1], KEYS[2], KEYS[3], last, '', ARGV[4], ARGV[5], ARGV[6])}
`)

// valkeyOpen returns the active conversation of the topic or creates one
// with its opening event. KEYS cus, tl, dedup, topics, convs, conversation;
// ARGV topic, conversation id, channel, head, tail, then the conversation's
// field/value pairs.
var valkeyOpen = valkey.NewLuaScript(luaPrelude + `
local last, refusal = writable(KEYS[1])
if not last then return refusal end
local holder = redis.call('HGET', KEYS[4], ARGV[1])
if holder then return {'exists', holder} end
return {'created', open(KEYS, last, ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[3], unpack(ARGV, 6))}
`)

// valkeyUpdateConversation writes a conversation changed by Go (from the
// version it read: a concurrent change gives "stale" and Go retries),
// keeps the one-active-per-topic rule and appends the change's event.
// KEYS cus, tl, dedup, topics, conversation; ARGV version, status,
// assignee, resolved_at, updated_at, dedup key, head, tail, channel.
var valkeyUpdateConversation = valkey.NewLuaScript(luaPrelude + `
local last, refusal = writable(KEYS[1])
if not last then return refusal end
local cur = redis.call('HMGET', KEYS[5], 'id', 'ver', 'status', 'topic')
if not cur[1] then return {'notfound'} end
if cur[2] ~= ARGV[1] then return {'stale'} end
if active(ARGV[2]) and not active(cur[3]) then
  local holder = redis.call('HGET', KEYS[4], cur[4])
  if holder and holder ~= cur[1] then return {'conflict', holder} end
  redis.call('HSET', KEYS[4], cur[4], cur[1])
elseif active(cur[3]) and not active(ARGV[2]) and redis.call('HGET', KEYS[4], cur[4]) == cur[1] then
  redis.call('HDEL', KEYS[4], cur[4])
end
local seq = append_event(KEYS[1], KEYS[2], KEYS[3], last, ARGV[6], ARGV[7], ARGV[8], ARGV[9])
redis.call('HSET', KEYS[5], 'status', ARGV[2], 'assignee', ARGV[3], 'resolved_at', ARGV[4],
  'updated_at', ARGV[5], 'last_seq', seq, 'ver', cur[2] + 1)
return {'ok', seq}
`)

// valkeyMergeFreeze is merge step 1, on from: mark it merged into into so
// it takes no more writes, or find it already marked by an unfinished merge
// into the same customer ("resumed"). KEYS cus; ARGV into, now.
var valkeyMergeFreeze = valkey.NewLuaScript(`
local c = redis.call('HMGET', KEYS[1], 'seq', 'merged', 'merge_done')
if not c[1] then return {'notfound'} end
if c[2] then
  if c[2] ~= ARGV[1] or c[3] then return {'merged', c[2]} end
  return {'resumed'}
end
redis.call('HSET', KEYS[1], 'merged', ARGV[1], 'merged_at', ARGV[2])
return {'ok'}
`)

// valkeyMergeUndo unfreezes from when into refused the merge (into was
// merged away or is gone) before taking anything. KEYS cus; ARGV into.
var valkeyMergeUndo = valkey.NewLuaScript(`
if redis.call('HGET', KEYS[1], 'merged') == ARGV[1] and redis.call('HEXISTS', KEYS[1], 'merge_done') == 0 then
  redis.call('HDEL', KEYS[1], 'merged', 'merged_at')
end
return {'ok'}
`)

// valkeyMergeInto is merge step 2, on into: the customers_merged event, the
// copies of from's events, from's identities and conversations, and the
// resolution of from's conversations whose topic into already has active.
// It is recorded in merges, so running it again returns the first result.
// KEYS cus, tl, dedup, ids, topics, convs, merges, then each moved
// conversation's key under into; ARGV from, channel, now, merged event
// head, mid and tail (the hole between mid and tail takes its first_seq),
// the counts of identities, conversations and copies, then identities as
// key/JSON pairs, conversations (sorted by id) as below, copies as dedup key, head, tail. A conversation's values are those
// of convHashFields, the index of the copy of its last event (0 if none),
// and the head and tail of the event that resolves it if its topic clashes
// with an active conversation of into.
var valkeyMergeInto = valkey.NewLuaScript(strings.ReplaceAll(luaPrelude+`
local from, channel, now = ARGV[1], ARGV[2], ARGV[3]
local done = redis.call('HGET', KEYS[7], from)
if done then return {'done', stored(KEYS[2], done)} end
local last, refusal = writable(KEYS[1])
if not last then return refusal end
local ni, nc, np = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local a = 10
for i = 1, ni do
  redis.call('HSETNX', KEYS[4], ARGV[a], ARGV[a + 1])
  a = a + 2
end
local convs = a
local names = {$CONV_FIELDS}
local stride = #names + 3
a = a + nc * stride

local mid = ARGV[5]
if np > 0 then mid = mid .. (last + 2) .. ARGV[6] end
local n, merged = put_event(KEYS[1], KEYS[2], last, ARGV[4], mid)
redis.call('PUBLISH', channel, merged)
last = n
for i = 1, np do
  last = append_event(KEYS[1], KEYS[2], KEYS[3], last, ARGV[a], ARGV[a + 1], ARGV[a + 2], channel)
  a = a + 3
end

local dups = {}
for i = 1, nc do
  local b = convs + (i - 1) * stride
  local key = KEYS[7 + i]
  local fields = {}
  for j, name in ipairs(names) do
    fields[2 * j - 1] = name
    fields[2 * j] = ARGV[b + j - 1]
  end
  redis.call('HSET', key, unpack(fields))
  local copy = tonumber(ARGV[b + #names])
  if copy > 0 then redis.call('HSET', key, 'last_seq', n + copy, 'updated_at', now) end
  local id, status, topic = ARGV[b], ARGV[b + 2], ARGV[b + 5]
  redis.call('ZADD', KEYS[6], 0, id)
  if active(status) then
    local holder = redis.call('HGET', KEYS[5], topic)
    if holder and holder ~= id then
      dups[#dups + 1] = i
    else
      redis.call('HSET', KEYS[5], topic, id)
    end
  end
end
for _, i in ipairs(dups) do
  local b = convs + (i - 1) * stride
  last = append_event(KEYS[1], KEYS[2], KEYS[3], last, '', ARGV[b + #names + 1], ARGV[b + #names + 2], channel)
  redis.call('HSET', KEYS[7 + i], 'status', 'resolved', 'resolved_at', now, 'updated_at', now, 'last_seq', last)
end
redis.call('HSET', KEYS[7], from, n)
return {'ok', merged}
`, "$CONV_FIELDS", "'"+strings.Join(convHashFields, "', '")+"'"))

// valkeyMergeFinish is merge step 4, on from: drop what moved to into (its
// identities and conversations; the timeline and customer record stay for
// audit) and mark the merge finished. KEYS cus, ids, topics, convs, then
// from's conversation keys.
var valkeyMergeFinish = valkey.NewLuaScript(`
redis.call('DEL', unpack(KEYS, 2))
redis.call('HSET', KEYS[1], 'merge_done', 1)
return {'ok'}
`)

// valkeyRepoint moves a global pointer (identity or conversation owner)
// from one customer to another, or deletes it when the new owner is empty,
// only if it still points where the caller believes. KEYS pointer; ARGV
// old owner, new owner.
var valkeyRepoint = valkey.NewLuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'moved'} end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return {'ok'}
`)
