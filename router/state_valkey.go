package router

import (
	"context"
	"fmt"
	"strconv"
	"strings"

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
//	{p:router}:waiting  hash  conversation -> queue
//	{p:router}:claims   hash  conversation -> "rep|units"
//	{p:router}:used     hash  rep -> units claimed
type ValkeyState struct {
	client valkey.Client
	keys   []string
}

// NewValkeyState uses client under prefix (empty means "og"). The caller
// owns the client and closes it.
func NewValkeyState(client valkey.Client, prefix string) (*ValkeyState, error) {
	if prefix == "" {
		prefix = "og"
	}
	if strings.ContainsAny(prefix, "{} \t\r\n") {
		return nil, fmt.Errorf("%w: valkey key prefix %q has a brace or a space", ErrInvalid, prefix)
	}
	tag := "{" + prefix + ":router}"
	return &ValkeyState{client: client, keys: []string{tag + ":waiting", tag + ":claims", tag + ":used"}}, nil
}

// Each script takes KEYS = waiting, claims, used and answers "OK" or the
// name of the refusal.
var (
	pushScript = valkey.NewLuaScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  return 'DUP'
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
return 'OK'`)
	// ARGV: queue, conversation, rep, units, limit
	claimScript = valkey.NewLuaScript(`
if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[1] or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  return 'TAKEN'
end
local used = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0')
if used + tonumber(ARGV[4]) > tonumber(ARGV[5]) then
  return 'CAP ' .. used
end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3] .. '|' .. ARGV[4])
redis.call('HINCRBY', KEYS[3], ARGV[3], ARGV[4])
return 'OK'`)
	// ARGV: conversation, requeue (queue or '')
	unclaimScript = valkey.NewLuaScript(`
local c = redis.call('HGET', KEYS[2], ARGV[1])
if c then
  local sep = string.find(c, '|', 1, true)
  local rep, units = string.sub(c, 1, sep - 1), tonumber(string.sub(c, sep + 1))
  redis.call('HDEL', KEYS[2], ARGV[1])
  if redis.call('HINCRBY', KEYS[3], rep, -units) <= 0 then
    redis.call('HDEL', KEYS[3], rep)
  end
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 'OK'`)
	// ARGV: queue, conversation
	dropScript = valkey.NewLuaScript(`
if redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[1] then
  redis.call('HDEL', KEYS[1], ARGV[2])
end
return 'OK'`)
)

func (s *ValkeyState) run(ctx context.Context, script *valkey.Lua, args ...string) (string, error) {
	reply, err := script.Exec(ctx, s.client, s.keys, args).ToString()
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
