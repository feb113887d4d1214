package canned

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/valkey-io/valkey-go"
)

// ValkeyStore keeps each owner's responses in one hash, id → JSON, under
// the gateway's key prefix, shared by every node of a cluster.
type ValkeyStore struct {
	client valkey.Client
	prefix string
}

var _ Store = (*ValkeyStore)(nil)

// NewValkeyStore uses client, which the caller closes, and keys under
// prefix + ":canned:".
func NewValkeyStore(client valkey.Client, prefix string) *ValkeyStore {
	return &ValkeyStore{client: client, prefix: prefix + ":canned:"}
}

func (s *ValkeyStore) key(owner string) string { return s.prefix + owner }

func (s *ValkeyStore) List(ctx context.Context, owner string) ([]Response, error) {
	m, err := s.client.Do(ctx, s.client.B().Hgetall().Key(s.key(owner)).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("canned: list: %w", err)
	}
	out := make([]Response, 0, len(m))
	for _, v := range m {
		var r Response
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, fmt.Errorf("canned: list: %w", err)
		}
		out = append(out, r)
	}
	sortResponses(out)
	return out, nil
}

func (s *ValkeyStore) Put(ctx context.Context, owner string, r Response) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.client.Do(ctx, s.client.B().Hset().Key(s.key(owner)).FieldValue().FieldValue(r.ID, string(v)).Build()).Error(); err != nil {
		return fmt.Errorf("canned: put: %w", err)
	}
	return nil
}

func (s *ValkeyStore) Delete(ctx context.Context, owner, id string) (bool, error) {
	n, err := s.client.Do(ctx, s.client.B().Hdel().Key(s.key(owner)).Field(id).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("canned: delete: %w", err)
	}
	return n > 0, nil
}

// Close does nothing: the client is the caller's.
func (s *ValkeyStore) Close() error { return nil }
