package auth_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/internal/auth"
)

var testConfig = auth.Config{
	AdminKeys:      []auth.Key{{Name: "ops", Key: "admin-key-0123456789"}},
	IntegratorKeys: []auth.Key{{Name: "crm", Key: "integrator-key-0123456789"}},
	Reps: []auth.Rep{
		{ID: "alice", Token: "alice-token-0123456789"},
		{ID: "carol", Role: auth.RoleSupervisor, Token: "carol-token-0123456789"},
	},
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	if err := testConfig.Validate(); err != nil {
		t.Fatal(err)
	}
	a := auth.New(testConfig)
	tests := []struct {
		header  string
		want    auth.Principal
		wantErr error
	}{
		{"Bearer admin-key-0123456789", auth.Principal{Role: auth.RoleAdmin, ID: "ops"}, nil},
		{"bearer integrator-key-0123456789", auth.Principal{Role: auth.RoleIntegrator, ID: "crm"}, nil},
		{"Bearer alice-token-0123456789", auth.Principal{Role: auth.RoleRep, ID: "alice"}, nil},
		{"Bearer carol-token-0123456789", auth.Principal{Role: auth.RoleSupervisor, ID: "carol"}, nil},
		{"", auth.Principal{}, auth.ErrNoToken},
		{"Basic YWxpY2U6eA==", auth.Principal{}, auth.ErrNoToken},
		{"Bearer ", auth.Principal{}, auth.ErrNoToken},
		{"Bearer alice-token-012345678", auth.Principal{}, auth.ErrBadToken},
		{"Bearer alice-token-0123456789x", auth.Principal{}, auth.ErrBadToken},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			got, err := a.Request(r)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("Request = %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if r, ok := a.Rep("carol"); !ok || r.Role != auth.RoleSupervisor || r.Token != "" {
		t.Errorf("Rep(carol) = %+v, %v (token must be cleared)", r, ok)
	}
	if r, _ := a.Rep("alice"); r.Role != auth.RoleRep {
		t.Errorf("empty role must default to rep, got %q", r.Role)
	}
	if got := (auth.Principal{Role: auth.RoleSupervisor, ID: "carol"}).Author(); got != "rep:carol" {
		t.Errorf("Author = %q", got)
	}
}

func TestConfigEnvAndValidate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"OMNIGATE_ADMIN_KEY": "from-env-0123456789"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	c := auth.Config{AdminKeys: []auth.Key{{Name: "ops", KeyEnv: "OMNIGATE_ADMIN_KEY"}}}
	if err := c.ResolveEnv(lookup); err != nil {
		t.Fatal(err)
	}
	if c.AdminKeys[0].Key != "from-env-0123456789" {
		t.Fatalf("key not resolved: %+v", c.AdminKeys[0])
	}

	bad := auth.Config{
		AdminKeys:      []auth.Key{{Name: "ops", Key: "x", KeyEnv: "OMNIGATE_ADMIN_KEY"}, {Name: "ci", KeyEnv: "UNSET"}},
		IntegratorKeys: []auth.Key{{Name: "bad name", Key: "short"}},
		Reps: []auth.Rep{
			{ID: "alice", Role: "boss", Token: "alice-token-0123456789"},
			{ID: "alice", Token: "alice-token-0123456789"},
		},
	}
	err := errors.Join(bad.ResolveEnv(lookup), bad.Validate())
	for _, want := range []string{
		"admin_keys[0].key_env: set the secret or its _env variable, not both",
		"admin_keys[1].key_env: environment variable UNSET is not set",
		`integrator_keys[0].name: "bad name"`,
		"integrator_keys[0].key: shorter than 16",
		`reps[0].role: "boss"`,
		`reps[1].id: "alice" used twice`,
		"reps[1].token: same secret as reps[0].token",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors %v\nmissing %q", err, want)
		}
	}
}
