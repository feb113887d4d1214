package channels_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/sessions"
)

type named string

func (n named) Name() string { return string(n) }
func (n named) Send(context.Context, channels.Outbound) (channels.Receipt, error) {
	return channels.Receipt{}, nil
}
func (n named) CanSend(context.Context, string, []sessions.Identity) error { return nil }

func TestRegistry(t *testing.T) {
	t.Parallel()
	r, err := channels.NewRegistry(named("webchat"), named("sms"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		reg     *channels.Registry
		channel string
		wantErr error
	}{
		{"connected", r, "webchat", nil},
		{"not built yet", r, "wechat", channels.ErrNoAdapter},
		{"nil registry", nil, "webchat", channels.ErrNoAdapter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := tt.reg.Get(tt.channel)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Get(%q) error = %v, want %v", tt.channel, err, tt.wantErr)
			}
			if err == nil && a.Name() != tt.channel {
				t.Fatalf("Get(%q) = %q", tt.channel, a.Name())
			}
		})
	}
	if got := r.Names(); !slices.Equal(got, []string{"sms", "webchat"}) {
		t.Errorf("Names() = %v", got)
	}
	if _, err := channels.NewRegistry(named("sms"), named("sms")); err == nil {
		t.Error("duplicate names accepted")
	}
}
