package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/sessions"
)

// ValkeyDoNotContact keeps the list in one Valkey hash, <prefix>:sms:optout
// (number → OptOut JSON), so every gateway of a cluster refuses the same
// numbers. HSETNX and HDEL make "changed" exact under concurrency:
// two nodes handling two STOPs from one number send one confirmation.
type ValkeyDoNotContact struct {
	client valkey.Client
	key    string
}

var _ DoNotContact = (*ValkeyDoNotContact)(nil)

// OpenValkeyDoNotContact connects with the store's options (the same
// servers and key prefix as the sessions store).
func OpenValkeyDoNotContact(opts sessions.ValkeyOptions) (*ValkeyDoNotContact, error) {
	addrs := opts.Addrs
	if len(addrs) == 0 {
		addrs = []string{"127.0.0.1:6379"}
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = "og"
	}
	if strings.ContainsAny(prefix, "{} \t\r\n") {
		return nil, fmt.Errorf("sms: valkey key prefix %q has a brace or a space", prefix)
	}
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: addrs, Password: opts.Password,
		SelectDB: opts.DB, DisableCache: true})
	if err != nil {
		return nil, fmt.Errorf("sms: do-not-contact valkey %v: %w", addrs, err)
	}
	return &ValkeyDoNotContact{client: client, key: prefix + ":sms:optout"}, nil
}

// Close closes the connection.
func (d *ValkeyDoNotContact) Close() error {
	d.client.Close()
	return nil
}

func (d *ValkeyDoNotContact) OptOut(ctx context.Context, number string, r OptOut) (bool, error) {
	v, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	n, err := d.client.Do(ctx, d.client.B().Hsetnx().Key(d.key).Field(number).Value(string(v)).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("sms: do-not-contact list: %w", err)
	}
	return n == 1, nil
}

func (d *ValkeyDoNotContact) OptIn(ctx context.Context, number string) (bool, error) {
	n, err := d.client.Do(ctx, d.client.B().Hdel().Key(d.key).Field(number).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("sms: do-not-contact list: %w", err)
	}
	return n == 1, nil
}

func (d *ValkeyDoNotContact) Lookup(ctx context.Context, number string) (OptOut, bool, error) {
	s, err := d.client.Do(ctx, d.client.B().Hget().Key(d.key).Field(number).Build()).ToString()
	if valkey.IsValkeyNil(err) {
		return OptOut{}, false, nil
	}
	if err != nil {
		return OptOut{}, false, fmt.Errorf("sms: do-not-contact list: %w", err)
	}
	var r OptOut
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return OptOut{}, false, fmt.Errorf("sms: do-not-contact list: %w", err)
	}
	return r, true, nil
}
