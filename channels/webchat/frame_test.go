package webchat

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/omnigate/omnigate/sessions"
)

// Frames as the widget sends them; the seed corpus of FuzzFrame, with
// the files under testdata/fuzz/FuzzFrame.
var sampleFrames = []string{
	`{"type":"hello"}`,
	`{"type":"hello","after":42,"customer_id":"cus_01JD7W5Q8Y3T6M2N4P5R7S9V0X","lang":"zh-CN"}`,
	`{"type":"message","client_id":"m-lq2x9a-1","text":"你好，我的快递到哪了？"}`,
	`{"type":"message","client_id":"m-lq2x9a-2","text":"line one\nline two \u2603"}`,
	`{"type":"typing","on":true}`,
	`{"type":"typing","on":false}`,
	`{"type":"offline","client_id":"o-1","name":"王芳","email":"Wang@Example.com","message":"请回电"}`,
	`{"type":"offline","client_id":"o-2","name":"Ann","phone":"+86 138-1234-5678","message":"call me"}`,
	`{"type":"message","client_id":"","text":"x"}`,
	`{"type":"message","client_id":"a b","text":"x"}`,
	`{"type":"offline","client_id":"o-3","phone":"13812345678","message":"x"}`,
	`{"type":"shout"}`,
	`{"type":"hello"} {"type":"hello"}`,
	`[1,2,3]`,
	`null`,
	`{"type":1}`,
	`{"type":"hello","after":-1}`,
	`{"type":"hello","after":18446744073709551616}`,
	"\xff\xfe",
	``,
	`{"type":"hello","visitor":"k3Jx9QeP2m_T8wVb-4LzNaYc","user_id":"u-1234","user_hash":"7f1fd4eda0adb42bf99053fe5793d4ccfc4fe930d8639b72d7e587cf94187775","user_expires":1767225600}`,
	`{"type":"hello","user_expires":-5}`,
}

func FuzzFrame(f *testing.F) {
	for _, s := range sampleFrames {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := parseFrame(data)
		var fe *fieldError
		switch {
		case errors.As(err, &fe):
			if fr.Type != frameHello && fr.Type != frameMessage && fr.Type != frameOffline {
				t.Fatalf("field error on a %q frame", fr.Type)
			}
			return
		case err != nil:
			if !errors.Is(err, errFrame) {
				t.Fatalf("error %v is neither a bad frame nor a field error", err)
			}
			return
		}
		// What a valid frame promises the handlers.
		switch fr.Type {
		case frameHello, frameTyping:
		case frameMessage:
			if checkClientID(fr.ClientID) != nil || strings.TrimSpace(fr.Text) == "" {
				t.Fatalf("accepted message %+v", fr)
			}
		case frameOffline:
			if checkClientID(fr.ClientID) != nil || strings.TrimSpace(fr.Message) == "" || (fr.Email == "" && fr.Phone == "") {
				t.Fatalf("accepted form %+v", fr)
			}
			if fr.Email != "" {
				if err := (sessions.Identity{Kind: sessions.IdentityEmail, Value: fr.Email}).Validate(); err != nil {
					t.Fatalf("accepted email the store refuses: %v", err)
				}
			}
			if fr.Phone != "" {
				if err := (sessions.Identity{Kind: sessions.IdentityPhone, Value: fr.Phone}).Validate(); err != nil {
					t.Fatalf("accepted phone the store refuses: %v", err)
				}
			}
		default:
			t.Fatalf("accepted type %q", fr.Type)
		}
		if !utf8.ValidString(fr.Text) || !utf8.ValidString(fr.Name) {
			t.Fatal("accepted text that is not UTF-8")
		}
		// The payload the store will get stays valid JSON.
		if !json.Valid(marshal(sessions.Message{Text: fr.Text, ClientID: fr.ClientID})) {
			t.Fatal("payload is not JSON")
		}
	})
}

func TestParseFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		typ     string
		wantErr string // "frame", "field" or ""
	}{
		{sampleFrames[0], "hello", ""},
		{sampleFrames[1], "hello", ""},
		{sampleFrames[2], "message", ""},
		{sampleFrames[4], "typing", ""},
		{sampleFrames[6], "offline", ""},
		{sampleFrames[7], "offline", ""},
		{sampleFrames[8], "", "field"},
		{sampleFrames[9], "", "field"},
		{sampleFrames[10], "", "field"},
		{`{"type":"message","client_id":"c","text":"   "}`, "", "field"},
		{`{"type":"offline","client_id":"c","message":"hi"}`, "", "field"},
		{`{"type":"offline","client_id":"c","email":"a@b","message":"hi"}`, "", "field"},
		{`{"type":"hello","customer_id":"cus|x"}`, "", "field"},
		{`{"type":"offline","client_id":"c","phone":"+86 999 bad","message":"hi"}`, "", "field"},
		{`{"type":"offline","client_id":"c","phone":"+86 110 1234 5678","message":"hi"}`, "", "field"},
		{sampleFrames[11], "", "frame"},
		{sampleFrames[12], "", "frame"},
		{sampleFrames[13], "", "frame"},
		{sampleFrames[14], "", "frame"},
		{sampleFrames[15], "", "frame"},
		{sampleFrames[16], "", "frame"},
		{sampleFrames[18], "", "frame"},
		{sampleFrames[19], "", "frame"},
		{`{"type":"typing","on":true} {"type":"typing","on":false}`, "", "frame"},
		{`{"type":"typing","on":true} x`, "", "frame"},
		{sampleFrames[20], "hello", ""},
		{sampleFrames[21], "", "field"},
	}
	for _, tt := range tests {
		f, err := parseFrame([]byte(tt.in))
		var fe *fieldError
		got := ""
		switch {
		case errors.As(err, &fe):
			got = "field"
		case err != nil:
			got = "frame"
		}
		if got != tt.wantErr || (err == nil && f.Type != tt.typ) {
			t.Errorf("parseFrame(%s) = %+v, %v; want type %q error %q", tt.in, f, err, tt.typ, tt.wantErr)
		}
	}
	f, _ := parseFrame([]byte(sampleFrames[7]))
	if f.Phone != "+8613812345678" {
		t.Errorf("phone %q", f.Phone)
	}
	// The visitor is told what is wrong with the number, not shown it.
	_, err := parseFrame([]byte(`{"type":"offline","client_id":"c","phone":"+86 999 bad","message":"hi"}`))
	if err == nil || !strings.Contains(err.Error(), "letter") || strings.Contains(err.Error(), "999") {
		t.Errorf("letters in the phone: %v", err)
	}
	f, _ = parseFrame([]byte(sampleFrames[6]))
	if f.Email != "wang@example.com" {
		t.Errorf("email %q", f.Email)
	}
}

func TestOriginAllowed(t *testing.T) {
	t.Parallel()
	pats := func(ss ...string) []originPattern {
		var out []originPattern
		for _, s := range ss {
			p, err := parseOriginPattern(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	tests := []struct {
		pats   []originPattern
		origin string
		host   string
		want   bool
	}{
		{pats("https://shop.example.com"), "https://shop.example.com", "gw", true},
		{pats("https://shop.example.com"), "https://SHOP.example.com", "gw", true},
		{pats("https://shop.example.com"), "http://shop.example.com", "gw", false},
		{pats("https://shop.example.com"), "https://shop.example.com:8443", "gw", false},
		{pats("https://shop.example.com"), "https://shop.example.com.evil.net", "gw", false},
		{pats("https://shop.example.com"), "", "gw", false},
		{pats("https://*.example.com"), "https://m.example.com", "gw", true},
		{pats("https://*.example.com"), "https://example.com", "gw", false},
		{pats("https://*.example.com"), "https://badexample.com", "gw", false},
		{pats("*"), "https://anything.test", "gw", true},
		{nil, "http://gw:8080", "gw:8080", true},
		{nil, "http://other:8080", "gw:8080", false},
		{nil, "null", "gw", false},
	}
	for _, tt := range tests {
		if got := originAllowed(tt.pats, tt.origin, tt.host); got != tt.want {
			t.Errorf("originAllowed(%q, host %q) = %v", tt.origin, tt.host, got)
		}
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	l := newLimiter(60, 3) // one a second, three at once
	now := time.Unix(1000, 0)
	l.acquire("v", now)
	l.acquire("v", now) // a second tab shares the bucket
	for i := range 3 {
		if !l.allow("v", now) {
			t.Fatalf("frame %d refused", i)
		}
	}
	if l.allow("v", now) {
		t.Fatal("fourth frame allowed")
	}
	if !l.allow("v", now.Add(time.Second)) {
		t.Fatal("no refill after a second")
	}
	l.release("v", now)
	l.release("v", now)
	l.sweep(now.Add(30 * time.Second))
	if len(l.buckets) != 1 {
		t.Fatal("bucket forgotten too soon: reconnecting would refill it")
	}
	l.sweep(now.Add(2 * time.Minute))
	if len(l.buckets) != 0 {
		t.Fatal("idle bucket kept")
	}
	if l.allow("unknown", now) {
		t.Fatal("frame allowed without a bucket")
	}
	// take starts a bucket for a key it has not seen.
	for i := range 3 {
		if !l.take("198.51.100.7", now) {
			t.Fatalf("new visitor %d refused", i)
		}
	}
	if l.take("198.51.100.7", now) || !l.take("198.51.100.8", now) {
		t.Fatal("take does not count per key")
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted, err := parsePrefixes([]string{"10.0.0.0/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ peer, xff, want string }{
		{"198.51.100.7:5555", "", "198.51.100.7"},
		{"198.51.100.7:5555", "203.0.113.9", "198.51.100.7"}, // not a proxy of ours: ignored
		{"[2001:db8:1:2:3:4:5:6]:443", "", "2001:db8:1:2::/64"},
		{"[::ffff:198.51.100.7]:1", "", "198.51.100.7"},
		{"10.1.2.3:80", "203.0.113.9", "203.0.113.9"},
		{"10.1.2.3:80", "1.1.1.1, 203.0.113.9, 10.9.9.9", "203.0.113.9"}, // left of the first untrusted hop is the client's claim
		{"192.0.2.1:80", "garbage, 203.0.113.9", "203.0.113.9"},
		{"192.0.2.1:80", "203.0.113.9, garbage", "192.0.2.1"},
		{"10.1.2.3:80", "", "10.1.2.3"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := clientAddr(r, trusted); got != tc.want {
			t.Errorf("clientAddr(%s, %q) = %q, want %q", tc.peer, tc.xff, got, tc.want)
		}
	}
}

func TestVerifyUser(t *testing.T) {
	t.Parallel()
	// Known vectors: what a site's back end computes with
	// printf %s user-42 | openssl dgst -sha256 -hmac s3cret (deprecated) and
	// printf %s 'user-42|1767225600' | openssl dgst -sha256 -hmac s3cret.
	const forever = "1136c48073bd2ba64f2a18895ff27ecfa11e24ccd2d86972ace148983668a992"
	const expiring = "7f1fd4eda0adb42bf99053fe5793d4ccfc4fe930d8639b72d7e587cf94187775"
	exp := time.Unix(1767225600, 0)
	if got := SignForever("s3cret", "user-42"); got != forever {
		t.Fatalf("SignForever = %q, want %q", got, forever)
	}
	if got := Sign("s3cret", "user-42", exp); got != expiring {
		t.Fatalf("Sign = %q, want %q", got, expiring)
	}
	site := Site{Secret: "s3cret"}
	strict := Site{Secret: "s3cret", RequireUserExpires: true}
	before, after := exp.Add(-time.Second), exp
	for _, tc := range []struct {
		name string
		site Site
		u    signedUser
		now  time.Time
		want string
	}{
		{"deprecated form", site, signedUser{"user-42", forever, 0}, after, ""},
		{"upper case hex", site, signedUser{"user-42", strings.ToUpper(forever), 0}, after, ""},
		{"with expiry", site, signedUser{"user-42", expiring, exp.Unix()}, before, ""},
		{"with expiry, required", strict, signedUser{"user-42", expiring, exp.Unix()}, before, ""},
		{"expired", site, signedUser{"user-42", expiring, exp.Unix()}, after, refusedExpired},
		{"expiry moved", site, signedUser{"user-42", expiring, exp.Unix() + 3600}, before, refusedBadHash},
		{"expiry required", strict, signedUser{"user-42", forever, 0}, after, refusedNoExpiry},
		{"expiring hash without its expiry", site, signedUser{"user-42", expiring, 0}, before, refusedBadHash},
		{"no secret", Site{}, signedUser{"user-42", SignForever("", "user-42"), 0}, after, refusedNoSecret},
		{"another user", site, signedUser{"user-43", forever, 0}, after, refusedBadHash},
		{"short", site, signedUser{"user-42", forever[:62], 0}, after, refusedBadHash},
		{"not hex", site, signedUser{"user-42", strings.Repeat("g", 64), 0}, after, refusedBadHash},
		{"no user", site, signedUser{"", SignForever("s3cret", ""), 0}, after, refusedNoUser},
	} {
		if got := verifyUser(tc.site, tc.u, tc.now); got != tc.want {
			t.Errorf("%s: verifyUser = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestVisibleAssignment: the visitor learns the name of the rep who got
// the conversation, whether a person assigned it through the API or the
// router did, and nothing of offers, queueing or the reps considered.
func TestVisibleAssignment(t *testing.T) {
	t.Parallel()
	names := map[string]string{"alice": "Alice", "bob": "Bob"}
	repName := func(id string) string { return names[id] }
	for _, tc := range []struct {
		name    string
		kind    sessions.EventKind
		payload string
		want    string // rep name shown; "" means not visible
	}{
		{"api assignment", sessions.KindAssignment, `{"status":"open","assignee":"alice"}`, "Alice"},
		{"api transfer", sessions.KindTransfer, `{"status":"open","assignee":"bob","from":"alice"}`, "Bob"},
		{"api unassign", sessions.KindAssignment, `{"status":"open"}`, ""},
		{"router assign", sessions.KindAssignment,
			`{"kind":"assign","conversation_id":"cnv_1","rep_id":"alice","why":"longest idle","candidates":[{"rep_id":"alice"},{"rep_id":"bob"}]}`, "Alice"},
		{"router accepted", sessions.KindAssignment, `{"kind":"accepted","rep_id":"bob"}`, "Bob"},
		{"router offer", sessions.KindAssignment, `{"kind":"offer","rep_id":"alice"}`, ""},
		{"router queued", sessions.KindAssignment, `{"kind":"queued","why":"no rep"}`, ""},
		{"router offer expired", sessions.KindAssignment, `{"kind":"offer_expired","rep_id":"alice"}`, ""},
		{"not json", sessions.KindAssignment, `[`, ""},
		{"profile change", sessions.KindProfileChanged, `{"changes":{"owner":{"from":"","to":"alice"},"vip":{"from":false,"to":true}}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := visibleEvent(sessions.Event{Seq: 7, Kind: tc.kind, Channel: sessions.ChannelSystem,
				Author: "system", Payload: json.RawMessage(tc.payload)}, repName)
			if got := map[bool]string{true: f.RepName}[ok]; got != tc.want || ok != (tc.want != "") {
				t.Fatalf("visible = %v, rep name %q; want %q", ok, f.RepName, tc.want)
			}
			b, _ := json.Marshal(f)
			for _, leak := range []string{"bob", "alice", "longest", "candidates"} {
				if strings.Contains(string(b), leak) {
					t.Errorf("frame %s leaks %q", b, leak)
				}
			}
		})
	}
}
