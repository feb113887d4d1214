package inbox

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		ok   bool
		want clientFrame
	}{
		{`{"type":"auth","token":"abc"}`, true, clientFrame{Type: "auth", Token: "abc"}},
		{`{"type":"watch","customer_id":"cus_01ABC"}`, true, clientFrame{Type: "watch", CustomerID: "cus_01ABC"}},
		{`{"type":"watch","customer_id":""}`, true, clientFrame{Type: "watch"}},
		{`{"type":"typing","customer_id":"cus_1","on":true}`, true, clientFrame{Type: "typing", CustomerID: "cus_1", On: true}},
		{`{"type":"ping"}`, true, clientFrame{Type: "ping"}},
		{`{"type":"view","views":["unassigned","all"]}`, true, clientFrame{Type: "view", Views: []string{"unassigned", "all"}}},
		{`{"type":"view","views":[]}`, true, clientFrame{Type: "view", Views: []string{}}},
		{`{"type":"view","views":["mine"]}`, false, clientFrame{}},
		{`{"type":"view","views":["all","all"]}`, false, clientFrame{}},
		{`{"type":"ping","views":["all"]}`, false, clientFrame{}},
		{`{"type":"auth"}`, false, clientFrame{}},
		{`{"type":"typing","on":true}`, false, clientFrame{}},
		{`{"type":"watch","customer_id":"../x"}`, false, clientFrame{}},
		{`{"type":"ping","token":"abc"}`, false, clientFrame{}},
		{`{"type":"ping","extra":1}`, false, clientFrame{}},
		{`{"type":"ping"}{"type":"ping"}`, false, clientFrame{}},
		{`{"type":"message","text":"hi"}`, false, clientFrame{}},
		{`{}`, false, clientFrame{}},
		{`[]`, false, clientFrame{}},
		{`"ping"`, false, clientFrame{}},
		{``, false, clientFrame{}},
	}
	for _, tt := range tests {
		got, err := parseFrame([]byte(tt.in))
		if tt.ok != (err == nil) {
			t.Errorf("parseFrame(%s) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil && !errors.Is(err, errFrame) {
			t.Errorf("parseFrame(%s) error %v does not wrap errFrame", tt.in, err)
		}
		if tt.ok && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseFrame(%s) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// FuzzParseFrame: frames come from any browser holding a token. Parsing
// must never panic, and what it accepts must be a known type with its
// fields valid.
func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"auth","token":"alice-token-0123456789"}`,
		`{"type":"watch","customer_id":"cus_01JDQ8ZK3X2M9V7T4R6P5N8B1C"}`,
		`{"type":"typing","customer_id":"cus_01JDQ8ZK3X2M9V7T4R6P5N8B1C","on":true}`,
		`{"type":"ping"}`,
		`{"type":"view","views":["unassigned","events"]}`,
		`{"type":"ping","type":"auth"}`,
		`{"type":"\u0070ing"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseFrame(b)
		if err != nil {
			return
		}
		switch fr.Type {
		case frameAuth:
			if fr.Token == "" {
				t.Fatal("auth accepted without a token")
			}
		case frameTyping:
			if !customerIDRe.MatchString(fr.CustomerID) {
				t.Fatalf("typing accepted with customer_id %q", fr.CustomerID)
			}
		case frameWatch:
			if fr.CustomerID != "" && !customerIDRe.MatchString(fr.CustomerID) {
				t.Fatalf("watch accepted with customer_id %q", fr.CustomerID)
			}
		case frameView:
			for _, v := range fr.Views {
				if _, ok := parseView(v); !ok {
					t.Fatalf("view accepted with %q", v)
				}
			}
		case framePing:
		default:
			t.Fatalf("accepted unknown type %q", fr.Type)
		}
		if fr.Type != frameAuth && fr.Token != "" {
			t.Fatal("token accepted outside auth")
		}
	})
}
