package canned_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/internal/canned"
	"github.com/omnigate/omnigate/internal/testredis"
	"github.com/omnigate/omnigate/sessions"
)

// runConformance is the one suite every Store passes.
func runConformance(t *testing.T, s canned.Store) {
	ctx := context.Background()
	hi := canned.Response{ID: "c2", Shortcut: "hi", Text: "Hi {{customer.first_name|there}}", Scope: canned.ScopeTeam}
	bye := canned.Response{ID: "c1", Shortcut: "bye", Text: "Bye", Scope: canned.ScopeTeam}
	mine := canned.Response{ID: "c3", Shortcut: "hi", Text: "Hello from me", Scope: canned.ScopePersonal}
	for _, p := range []struct {
		owner string
		r     canned.Response
	}{{canned.Team, hi}, {canned.Team, bye}, {"alice", mine}} {
		if err := s.Put(ctx, p.owner, p.r); err != nil {
			t.Fatal(err)
		}
	}
	list := func(owner string) string {
		rs, err := s.List(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range rs {
			ids = append(ids, r.ID+"="+r.Text)
		}
		return strings.Join(ids, ",")
	}
	if got := list(canned.Team); got != "c1=Bye,c2=Hi {{customer.first_name|there}}" {
		t.Errorf("team = %s", got)
	}
	if got := list("alice"); got != "c3=Hello from me" {
		t.Errorf("alice = %s", got)
	}
	if got := list("bob"); got != "" {
		t.Errorf("bob = %s, want none", got)
	}
	hi.Text = "Hi again"
	if err := s.Put(ctx, canned.Team, hi); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Delete(ctx, canned.Team, "c1"); !ok || err != nil {
		t.Errorf("delete c1 = %v, %v", ok, err)
	}
	if ok, err := s.Delete(ctx, "alice", "c1"); ok || err != nil {
		t.Errorf("delete of another owner's = %v, %v", ok, err)
	}
	if got := list(canned.Team); got != "c2=Hi again" {
		t.Errorf("team after put and delete = %s", got)
	}
}

func TestMemoryStore(t *testing.T) { t.Parallel(); runConformance(t, canned.NewMemoryStore()) }

func TestBoltStore(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "canned.db")
	s, err := canned.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	runConformance(t, s)
	// Durable: what was put is there after a reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = canned.OpenBolt(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rs, err := s.List(context.Background(), "alice"); err != nil || len(rs) != 1 {
		t.Errorf("after reopen alice has %v, %v", rs, err)
	}
}

func TestValkeyStore(t *testing.T) {
	t.Parallel()
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{testredis.Addr(t)}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	runConformance(t, canned.NewValkeyStore(client, "test-"+sessions.NewID("p")))
}

func TestExpand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		v    canned.Vars
		want string
	}{
		{"Hi {{customer.first_name}}, I'm {{rep.name}}.", canned.Vars{CustomerName: "Wang Fang", RepName: "Alice Chen"}, "Hi Wang, I'm Alice Chen."},
		{"Hi {{ customer.name | there }}!", canned.Vars{}, "Hi there!"},
		{"您好，{{customer.name|客户}}", canned.Vars{CustomerName: "王芳"}, "您好，王芳"},
		{"{{rep.first_name}} here", canned.Vars{RepName: "Alice Chen"}, "Alice here"},
		{"no {{variables}} known", canned.Vars{}, "no {{variables}} known"},
		{"{{customer.name}}", canned.Vars{}, ""},
	}
	for _, tt := range tests {
		if got := canned.Expand(tt.text, tt.v); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := canned.Response{Shortcut: "hi", Text: "Hi {{customer.name|there}}"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]canned.Response{
		"bad shortcut":     {Shortcut: "Hi There", Text: "x"},
		"no text":          {Shortcut: "hi", Text: "  "},
		"unknown variable": {Shortcut: "hi", Text: "{{customer.phone}}"},
		"long text":        {Shortcut: "hi", Text: strings.Repeat("x", canned.MaxText+1)},
	} {
		if err := r.Validate(); !errors.Is(err, canned.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	cfg := canned.Config{Team: []canned.Entry{{Shortcut: "hi", Text: "a"}, {Shortcut: "hi", Text: "b"}, {Shortcut: "", Text: "c"}}}
	if err := cfg.Validate(); err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("config: %v, want two problems", err)
	}
}

// FuzzExpand: response texts come from supervisors and reps. Checking
// never panics, and expanding leaves no known variable behind.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"Hi {{customer.first_name|there}}, I'm {{rep.name}}.", "{{{{customer.name}}}}", "{{ rep.first_name | }}", "{{x|{y}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		_ = canned.Response{Shortcut: "x", Text: text}.Validate()
		out := canned.Expand(text, canned.Vars{CustomerName: "Wang Fang", RepName: "Alice"})
		for _, v := range []string{"{{customer.name}}", "{{customer.first_name}}", "{{rep.name}}", "{{rep.first_name}}"} {
			if strings.Contains(out, v) {
				t.Fatalf("Expand(%q) = %q keeps %s", text, out, v)
			}
		}
	})
}
