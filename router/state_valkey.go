package router

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"
)

var _ State = (*ValkeyState)(nil)

// ValkeyState is the State of a cluster: gateway processes sharing one
// Valkey (or Redis 7) server claim through Lua scripts, so two nodes can
// never take the same waiting conversation or fill a rep past capacity.
//
// Keys, all in one hash slot (the "{prefix:router}" tag) so each script is
// atomic on Valkey Cluster too:
//
//	{p:router}:waiting   hash  conversation -> queue
//	{p:router}:claims    hash  conversation -> "rep|units"
//	{p:router}:used      hash  rep -> units claimed
//	{p:router}:holders   hash  conversation -> node holding its task
//	{p:router}:nodes     hash  node -> end of its lease (server ms)
//	{p:router}:presence  hash  rep -> presence the rep set
//	{p:router}:conns     hash  "rep|node" -> 1 while rep has an inbox socket there
//
// # Nodes and leases
//
// A ValkeyState made with NewValkeyNodeState belongs to one gateway
// process (node). Every conversation it pushes, claims or adopts is marked
// as held by that node, and the node renews a lease with Heartbeat. Only
// the holder may claim, unclaim or drop a held conversation. When a
// node's lease lapses (it died, or lost Valkey for longer than the lease),
// what it held is an orphan: Orphans lists them, and another node takes
// each over by Push (a waiting or half-assigned conversation: any claim is
// freed and the task waits again, held by the new node) or Adopt (an
// assigned one: the claim stays, now held by the new node, which releases
// it when the conversation ends). Leases are compared with the server's
// clock (TIME), never a node's.
//
// A ValkeyState made with NewValkeyState is anonymous: it marks nothing
// and takes nothing over, for tools and tests that are the only writer.
type ValkeyState struct {
	client valkey.Client
	node   string
	keys   []string
}

// NewValkeyState uses client under prefix (empty means "og"), as an
// anonymous node. The caller owns the client and closes it.
func NewValkeyState(client valkey.Client, prefix string) (*ValkeyState, error) {
	return NewValkeyNodeState(client, prefix, "")
}

// NewValkeyNodeState is NewValkeyState for the gateway node named node,
// which must be unique among the processes sharing the server (a new one
// per process start: host, pid and a random part). See "Nodes and leases".
func NewValkeyNodeState(client valkey.Client, prefix, node string) (*ValkeyState, error) {
	if prefix == "" {
		prefix = "og"
	}
	if strings.ContainsAny(prefix, "{} \t\r\n") {
		return nil, fmt.Errorf("%w: valkey key prefix %q has a brace or a space", ErrInvalid, prefix)
	}
	if strings.ContainsAny(node, "| \t\r\n") {
		return nil, fmt.Errorf("%w: node name %q has a bar or a space", ErrInvalid, node)
	}
	tag := "{" + prefix + ":router}"
	keys := []string{tag + ":waiting", tag + ":claims", tag + ":used", tag + ":holders", tag + ":nodes",
		tag + ":presence", tag + ":conns"}
	return &ValkeyState{client: client, node: node, keys: keys}, nil
}

// Node is the node name; empty for an anonymous state.
func (s *ValkeyState) Node() string { return s.node }

// luaCommon is the start of every script. KEYS are waiting, claims, used,
// holders, nodes, presence, conns; ARGV[1] is the node ("" anonymous).
//
// mine(conv) says whether this node may act on conv's entries: it is
// anonymous, or conv has no holder, or this node holds it, or its holder's
// lease lapsed.
const luaCommon = `
local node = ARGV[1]
local now
local function alive(n)
  if n == node then return true end
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return tonumber(redis.call('HGET', KEYS[5], n) or '0') > now
end
local function mine(conv)
  if node == '' then return true end
  local h = redis.call('HGET', KEYS[4], conv)
  return (not h) or h == node or not alive(h)
end
local function free(conv)
  local c = redis.call('HGET', KEYS[2], conv)
  if c then
    local sep = string.find(c, '|', 1, true)
    local rep, units = string.sub(c, 1, sep - 1), tonumber(string.sub(c, sep + 1))
    redis.call('HDEL', KEYS[2], conv)
    if redis.call('HINCRBY', KEYS[3], rep, -units) <= 0 then
      redis.call('HDEL', KEYS[3], rep)
    end
  end
end
local function hold(conv)
  if node ~= '' then redis.call('HSET', KEYS[4], conv, node) end
end
`

// Each script answers "OK" or the name of the refusal.
var (
	// ARGV: node, queue, conversation
	pushScript = valkey.NewLuaScript(luaCommon + `
local queue, conv = ARGV[2], ARGV[3]
if redis.call('HEXISTS', KEYS[1], conv) == 1 or redis.call('HEXISTS', KEYS[2], conv) == 1 then
  if node == '' then return 'DUP' end
  local h = redis.call('HGET', KEYS[4], conv)
  if (not h) or (h ~= node and alive(h)) then return 'DUP' end
  -- Held by a dead node, or by this one, which has forgotten it: take it
  -- over, freeing a claim that never became an assignment.
  free(conv)
end
redis.call('HSET', KEYS[1], conv, queue)
hold(conv)
return 'OK'`)
	// ARGV: node, queue, conversation, rep, units, limit
	claimScript = valkey.NewLuaScript(luaCommon + `
local queue, conv, rep, units, limit = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('HGET', KEYS[1], conv) ~= queue or redis.call('HEXISTS', KEYS[2], conv) == 1 then
  return 'TAKEN'
end
if node ~= '' and redis.call('HGET', KEYS[4], conv) ~= node then
  return 'TAKEN'
end
local used = tonumber(redis.call('HGET', KEYS[3], rep) or '0')
if used + units > limit then
  return 'CAP ' .. used
end
redis.call('HDEL', KEYS[1], conv)
redis.call('HSET', KEYS[2], conv, rep .. '|' .. units)
redis.call('HINCRBY', KEYS[3], rep, units)
return 'OK'`)
	// ARGV: node, conversation, requeue (queue or '')
	unclaimScript = valkey.NewLuaScript(luaCommon + `
local conv, requeue = ARGV[2], ARGV[3]
if not mine(conv) then return 'OK' end
free(conv)
if requeue ~= '' then
  redis.call('HSET', KEYS[1], conv, requeue)
  hold(conv)
else
  redis.call('HDEL', KEYS[1], conv)
  redis.call('HDEL', KEYS[4], conv)
end
return 'OK'`)
	// ARGV: node, queue, conversation
	dropScript = valkey.NewLuaScript(luaCommon + `
local queue, conv = ARGV[2], ARGV[3]
if redis.call('HGET', KEYS[1], conv) == queue and mine(conv) then
  redis.call('HDEL', KEYS[1], conv)
  if redis.call('HEXISTS', KEYS[2], conv) == 0 then
    redis.call('HDEL', KEYS[4], conv)
  end
end
return 'OK'`)
	// ARGV: node, conversation, rep, units
	adoptScript = valkey.NewLuaScript(luaCommon + `
local conv, rep, units = ARGV[2], ARGV[3], ARGV[4]
if not mine(conv) then return 'TAKEN' end
free(conv)
redis.call('HDEL', KEYS[1], conv)
redis.call('HSET', KEYS[2], conv, rep .. '|' .. units)
redis.call('HINCRBY', KEYS[3], rep, units)
hold(conv)
return 'OK'`)
	// ARGV: node, conversation, rep. Answers 1 or 0.
	holdsScript = valkey.NewLuaScript(luaCommon + `
local conv, rep = ARGV[2], ARGV[3]
local c = redis.call('HGET', KEYS[2], conv)
if not c or string.sub(c, 1, #rep + 1) ~= rep .. '|' then return 0 end
if node ~= '' and redis.call('HGET', KEYS[4], conv) ~= node then return 0 end
return 1`)
	// ARGV: node, conversations... Answers those that no live node holds.
	unheldScript = valkey.NewLuaScript(luaCommon + `
local out = {}
for i = 2, #ARGV do
  local h = redis.call('HGET', KEYS[4], ARGV[i])
  if not h or not alive(h) then table.insert(out, ARGV[i]) end
end
return out`)
	// ARGV: node, lease in ms
	heartbeatScript = valkey.NewLuaScript(luaCommon + `
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[5], node, ms + tonumber(ARGV[2]))
return 'OK'`)
	// ARGV: node. Answers the conversations held by nodes whose lease
	// lapsed, and forgets nodes that are dead and hold nothing.
	orphansScript = valkey.NewLuaScript(luaCommon + `
local out, dead, holding = {}, {}, {}
local hs = redis.call('HGETALL', KEYS[4])
for i = 1, #hs, 2 do
  local conv, h = hs[i], hs[i + 1]
  holding[h] = true
  if dead[h] == nil then dead[h] = not alive(h) end
  if dead[h] then table.insert(out, conv) end
end
local ns = redis.call('HGETALL', KEYS[5])
for i = 1, #ns, 2 do
  if not holding[ns[i]] and not alive(ns[i]) then redis.call('HDEL', KEYS[5], ns[i]) end
end
return out`)
	// ARGV: node, rep. Answers 1 when a live node has a socket of rep.
	connectedScript = valkey.NewLuaScript(luaCommon + `
local prefix = ARGV[2] .. '|'
local fs = redis.call('HKEYS', KEYS[7])
for _, f in ipairs(fs) do
  if string.sub(f, 1, #prefix) == prefix then
    if alive(string.sub(f, #prefix + 1)) then return 1 end
    redis.call('HDEL', KEYS[7], f)
  end
end
return 0`)
)

func (s *ValkeyState) run(ctx context.Context, script *valkey.Lua, args ...string) (string, error) {
	reply, err := script.Exec(ctx, s.client, s.keys, append([]string{s.node}, args...)).ToString()
	if err != nil {
		return "", fmt.Errorf("router: valkey: %w", err)
	}
	return reply, nil
}

func (s *ValkeyState) Push(ctx context.Context, queue, conv string) error {
	reply, err := s.run(ctx, pushScript, queue, conv)
	if err != nil {
		return err
	}
	if reply == "DUP" {
		return fmt.Errorf("%w: %s", ErrDuplicate, conv)
	}
	return nil
}

func (s *ValkeyState) Claim(ctx context.Context, c Claim) error {
	reply, err := s.run(ctx, claimScript, c.Queue, c.ConversationID, c.RepID, strconv.Itoa(c.Units), strconv.Itoa(c.Limit))
	switch {
	case err != nil:
		return err
	case reply == "TAKEN":
		return fmt.Errorf("%w: %s", ErrTaken, c.ConversationID)
	case strings.HasPrefix(reply, "CAP"):
		return fmt.Errorf("%w: %s has %s of %d, needs %d", ErrCapacity, c.RepID, strings.TrimPrefix(reply, "CAP "), c.Limit, c.Units)
	}
	return nil
}

func (s *ValkeyState) Unclaim(ctx context.Context, conv, requeue string) error {
	_, err := s.run(ctx, unclaimScript, conv, requeue)
	return err
}

func (s *ValkeyState) Drop(ctx context.Context, queue, conv string) error {
	_, err := s.run(ctx, dropScript, queue, conv)
	return err
}

func (s *ValkeyState) Used(ctx context.Context, rep string) (int, error) {
	n, err := s.client.Do(ctx, s.client.B().Hget().Key(s.keys[2]).Field(rep).Build()).AsInt64()
	if valkey.IsValkeyNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("router: valkey: %w", err)
	}
	return int(n), nil
}

func (s *ValkeyState) Adopt(ctx context.Context, c Claim) error {
	reply, err := s.run(ctx, adoptScript, c.ConversationID, c.RepID, strconv.Itoa(c.Units))
	if err != nil {
		return err
	}
	if reply == "TAKEN" {
		return fmt.Errorf("%w: %s is held by another node", ErrTaken, c.ConversationID)
	}
	return nil
}

func (s *ValkeyState) Holds(ctx context.Context, conv, rep string) (bool, error) {
	n, err := holdsScript.Exec(ctx, s.client, s.keys, []string{s.node, conv, rep}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("router: valkey: %w", err)
	}
	return n == 1, nil
}

func (s *ValkeyState) Loads(ctx context.Context) (map[string]int, error) {
	m, err := s.client.Do(ctx, s.client.B().Hgetall().Key(s.keys[2]).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("router: valkey: %w", err)
	}
	out := make(map[string]int, len(m))
	for rep, v := range m {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("router: valkey: units of %s: %w", rep, err)
		}
		out[rep] = n
	}
	return out, nil
}

func (s *ValkeyState) SetPresence(ctx context.Context, rep string, p Presence) error {
	if err := s.client.Do(ctx, s.client.B().Hset().Key(s.keys[5]).FieldValue().FieldValue(rep, string(p)).Build()).Error(); err != nil {
		return fmt.Errorf("router: valkey: %w", err)
	}
	return nil
}

func (s *ValkeyState) Presences(ctx context.Context) (map[string]Presence, error) {
	m, err := s.client.Do(ctx, s.client.B().Hgetall().Key(s.keys[5]).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("router: valkey: %w", err)
	}
	out := make(map[string]Presence, len(m))
	for rep, p := range m {
		out[rep] = Presence(p)
	}
	return out, nil
}

// Heartbeat renews this node's lease for lease from now (server time).
// Call it several times per lease: a node whose lease lapses loses what it
// holds to the other nodes.
func (s *ValkeyState) Heartbeat(ctx context.Context, lease time.Duration) error {
	if s.node == "" {
		return nil
	}
	_, err := s.run(ctx, heartbeatScript, strconv.FormatInt(lease.Milliseconds(), 10))
	return err
}

// Leave ends this node's lease at once, on a clean shutdown, so the other
// nodes take over what it held without waiting for the lease to lapse.
func (s *ValkeyState) Leave(ctx context.Context) error {
	if s.node == "" {
		return nil
	}
	if err := s.client.Do(ctx, s.client.B().Hdel().Key(s.keys[4]).Field(s.node).Build()).Error(); err != nil {
		return fmt.Errorf("router: valkey: %w", err)
	}
	return nil
}

// Orphans lists the conversations held by nodes whose lease lapsed. It
// reads every held conversation in one script: cheap for the thousands a
// contact centre has open, not meant for millions.
func (s *ValkeyState) Orphans(ctx context.Context) ([]string, error) {
	if s.node == "" {
		return nil, nil
	}
	convs, err := orphansScript.Exec(ctx, s.client, s.keys, []string{s.node}).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("router: valkey: %w", err)
	}
	return convs, nil
}

// Unheld returns those of convs that no live node holds (none, or a node
// whose lease lapsed), in order: what a reconcile scan must look at.
func (s *ValkeyState) Unheld(ctx context.Context, convs []string) ([]string, error) {
	if len(convs) == 0 {
		return nil, nil
	}
	out, err := unheldScript.Exec(ctx, s.client, s.keys, append([]string{s.node}, convs...)).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("router: valkey: %w", err)
	}
	return out, nil
}

// SetConnected records whether this node has an inbox socket of rep.
func (s *ValkeyState) SetConnected(ctx context.Context, rep string, on bool) error {
	field := rep + "|" + s.node
	var cmd valkey.Completed
	if on {
		cmd = s.client.B().Hset().Key(s.keys[6]).FieldValue().FieldValue(field, "1").Build()
	} else {
		cmd = s.client.B().Hdel().Key(s.keys[6]).Field(field).Build()
	}
	if err := s.client.Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("router: valkey: %w", err)
	}
	return nil
}

// Connected reports whether a live node has an inbox socket of rep.
func (s *ValkeyState) Connected(ctx context.Context, rep string) (bool, error) {
	n, err := connectedScript.Exec(ctx, s.client, s.keys, []string{s.node, rep}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("router: valkey: %w", err)
	}
	return n == 1, nil
}
