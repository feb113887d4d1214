package signing

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The reference library for Go (third-party, used in tests only) must
// accept what we sign, and we must accept what it signs.
func TestInteropWithReferenceLibrary(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	ref, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"message_in","timestamp":"2025-01-02T03:04:05Z","data":{"text":"你好"}}`)
	now := time.Now()

	h := http.Header{}
	ours.SetHeaders(h, "msg_1", now, body)
	if err := ref.Verify(body, h); err != nil {
		t.Fatalf("reference library refuses our signature: %v", err)
	}
	if err := ref.Verify(append(body, ' '), h); err == nil {
		t.Fatal("reference library accepts a tampered body")
	}

	sig, err := ref.Sign("msg_2", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h2 := http.Header{}
	h2.Set(HeaderID, "msg_2")
	h2.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h2.Set(HeaderSignature, "v2,bogus "+sig) // unknown versions are skipped
	if i, id, err := Verify([]Secret{ours}, h2, body, now); err != nil || i != 0 || id != "msg_2" {
		t.Fatalf("we refuse the reference library's signature: %d %q %v", i, id, err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	a, _ := ParseSecret(NewSecret())
	b, _ := ParseSecret(NewSecret())
	body := []byte(`{}`)
	now := time.Unix(1_700_000_000, 0)
	signed := func(s Secret, ts time.Time) http.Header {
		h := http.Header{}
		s.SetHeaders(h, "id1", ts, body)
		return h
	}
	tests := []struct {
		name string
		h    http.Header
		want error
		idx  int
	}{
		{"first secret", signed(a, now), nil, 0},
		{"second secret names the second integration", signed(b, now), nil, 1},
		{"4m59s old", signed(a, now.Add(-299*time.Second)), nil, 0},
		{"5m01s old", signed(a, now.Add(-301*time.Second)), ErrStale, -1},
		{"5m01s ahead", signed(a, now.Add(301*time.Second)), ErrStale, -1},
		{"missing", http.Header{}, ErrMissingHeaders, -1},
		{"bad timestamp", func() http.Header { h := signed(a, now); h.Set(HeaderTimestamp, "soon"); return h }(), ErrBadTimestamp, -1},
		{"huge timestamp", func() http.Header { h := signed(a, now); h.Set(HeaderTimestamp, "9223372036854775807"); return h }(), ErrStale, -1},
		{"other id", func() http.Header { h := signed(a, now); h.Set(HeaderID, "id2"); return h }(), ErrNoMatch, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			i, _, err := Verify([]Secret{a, b}, tt.h, body, now)
			if !errors.Is(err, tt.want) || i != tt.idx {
				t.Fatalf("Verify = %d, %v; want %d, %v", i, err, tt.idx, tt.want)
			}
		})
	}
	if _, err := ParseSecret("whsec_c2hvcnQ="); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("short secret: %v", err)
	}
}
