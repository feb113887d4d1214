package sip

import (
	"strings"
	"testing"
)

const exampleConfig = `
listen: 127.0.0.1:5060
trunks:
  main:
    proxy: 127.0.0.1:5070
    transport: udp
    from_user: omnigate
    from_domain: trunk.example
    caller_id: "+442070000000"
    auth_user: omnigate
    auth_password_env: OMNIGATE_TEST_TRUNK_PASSWORD
    trusted: true
    calls_per_second: 20
    max_calls: 60
`

func TestLoadConfig(t *testing.T) {
	t.Setenv("OMNIGATE_TEST_TRUNK_PASSWORD", "s3cret")
	c, err := LoadConfig(strings.NewReader(exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Trunks["main"]
	if tr.password != "s3cret" || tr.CallsPerSecond != 20 || !tr.Trusted || tr.FromDomain != "trunk.example" {
		t.Fatalf("decoded %+v", tr)
	}
}

func TestLoadConfigRefuses(t *testing.T) {
	t.Setenv("OMNIGATE_TEST_TRUNK_PASSWORD", "")
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "listen: 127.0.0.1:5060\nlisen: x\n", "lisen"},
		{"unknown trunk key", "listen: 127.0.0.1:0\ntrunks:\n  a: {proxy: 1.2.3.4:5060, from_user: x, pasword: y}\n", "pasword"},
		{"no trunks", "listen: 127.0.0.1:5060\n", "no trunks"},
		{"listen host", "listen: pbx.example:5060\ntrunks:\n  a: {proxy: 1.2.3.4:5060, from_user: x}\n", "must be an IP"},
		{"transport", "listen: 127.0.0.1:0\ntrunks:\n  a: {proxy: 1.2.3.4:5060, from_user: x, transport: tls}\n", "transport"},
		{"proxy", "listen: 127.0.0.1:0\ntrunks:\n  a: {proxy: 1.2.3.4, from_user: x}\n", "proxy"},
		{"from user", "listen: 127.0.0.1:0\ntrunks:\n  a: {proxy: 1.2.3.4:5060, from_user: 'a b'}\n", "from_user"},
		{"caller id", "listen: 127.0.0.1:0\ntrunks:\n  a: {proxy: 1.2.3.4:5060, from_user: x, caller_id: abc}\n", "caller_id"},
		{"password env empty", "listen: 127.0.0.1:0\ntrunks:\n  a: {proxy: 1.2.3.4:5060, from_user: x, auth_user: u, auth_password_env: OMNIGATE_TEST_TRUNK_PASSWORD}\n", "is empty"},
		{"negative", "listen: 127.0.0.1:0\ntrunks:\n  a: {proxy: 1.2.3.4:5060, from_user: x, max_calls: -1}\n", "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(strings.NewReader(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadConfig = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// Every problem is reported at once, not the first only.
func TestLoadConfigJoinsErrors(t *testing.T) {
	_, err := LoadConfig(strings.NewReader("listen: nope\ntrunks:\n  a: {proxy: x, from_user: ''}\n"))
	if err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Fatalf("LoadConfig = %v, want three problems", err)
	}
}

func FuzzLoadConfig(f *testing.F) {
	f.Add(exampleConfig)
	f.Add("listen: 127.0.0.1:0\ntrunks:\n  a: {proxy: 1.2.3.4:5060, from_user: x}\n")
	f.Add("trunks: {a: {max_calls: 99999999999999999999}}")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := LoadConfig(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, tr := range c.Trunks {
			if tr.CallsPerSecond <= 0 || tr.MaxCalls <= 0 || (tr.Transport != "udp" && tr.Transport != "tcp") {
				t.Fatalf("accepted %q as %+v", s, tr)
			}
		}
	})
}
