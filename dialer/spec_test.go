package dialer

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

var known = Known{Purposes: []string{"service", "sales"}, Skills: []string{"sales", "support"}, Reps: []string{"rep1", "rep2"}}

func TestSpecYAMLAndJSONStrict(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/campaign.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSpecYAML(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(known); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	if s.Trial.Sample != 0.04 || time.Duration(s.RingTimeout) != 25*time.Second || s.Audience.Segment.VIP == nil ||
		s.Schedule[1].Days[0] != "sat" || s.Abandon.Message == "" || s.Retry.Machine != "1d" {
		t.Fatalf("parsed %+v", s)
	}
	entries, err := ParseCSV(strings.NewReader(s.Audience.CSV), s.Audience.Region)
	if err != nil || len(entries) != 2 || entries[1].Phone != "+8613800138001" || entries[1].Line != 3 || entries[1].Name != "Han Meimei" {
		t.Fatalf("csv %+v %v", entries, err)
	}
	// JSON round trip, then an unknown key in each format.
	doc, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSpecJSON(doc)
	if err != nil || back.ID != s.ID || back.RingTimeout != s.RingTimeout {
		t.Fatalf("json round trip: %+v %v", back, err)
	}
	if _, err := ParseSpecYAML(append(raw, "ring_timout: 30s\n"...)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "ring_timout") {
		t.Fatalf("unknown yaml key: %v", err)
	}
	if _, err := ParseSpecJSON([]byte(`{"id":"x","abandon_targt":0.01}`)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "abandon_targt") {
		t.Fatalf("unknown json key: %v", err)
	}
	if _, err := ParseSpecJSON([]byte(`{"id":"x"} {"id":"y"}`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("two json objects: %v", err)
	}
}

func TestScheduleWindows(t *testing.T) {
	t.Parallel()
	ws := []Window{{Days: []string{"mon", "fri"}, From: "09:00", To: "12:00", Zone: "Asia/Shanghai"}}
	// 2026-12-04 is a Friday; Shanghai is UTC+8.
	for _, tc := range []struct {
		at   string
		want bool
	}{
		{"2026-12-04T01:00:00Z", true},  // 09:00 Fri local
		{"2026-12-04T00:59:00Z", false}, // 08:59
		{"2026-12-04T04:00:00Z", false}, // 12:00, the end is out
		{"2026-12-03T02:00:00Z", false}, // Thursday
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		if got := inSchedule(ws, at); got != tc.want {
			t.Errorf("%s: in schedule %v, want %v", tc.at, got, tc.want)
		}
	}
	if !inSchedule(nil, t0) {
		t.Error("no windows means any time")
	}
}

func TestMaskNumber(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"+8613800138000": "+86 ••• 00", "+14155550123": "+1 ••• 23", "+44": "•••"} {
		if got := MaskNumber(in); got != want {
			t.Errorf("MaskNumber(%s) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseCSV(f *testing.F) {
	f.Add("phone,name\n+8613800138000,Li\n13800138001,Han\n", "CN")
	f.Add("+1 (415) 555-0123\n\"+44 20 7946 0958\",x\n", "")
	f.Add("\"unterminated\n+8613800138000", "CN")
	f.Add("+86 999 bad\n12\n\n+8613800138000", "")
	f.Fuzz(func(t *testing.T, text, region string) {
		entries, err := ParseCSV(strings.NewReader(text), region)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || entries != nil {
				t.Fatalf("error %v with %d entries", err, len(entries))
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if !sessions.IsE164(e.Phone) || e.Line < 1 || seen[e.Phone] {
				t.Fatalf("entry %+v", e)
			}
			seen[e.Phone] = true
		}
	})
}

func FuzzParseSpec(f *testing.F) {
	raw, err := os.ReadFile("testdata/campaign.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(`{"id":"a","audience":{"customers":["c1"]},"purpose":"sales","reps":["rep1"],"caller_id":"+861062345678"}`))
	f.Add([]byte("id: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) (Spec, error){ParseSpecYAML, ParseSpecJSON} {
			s, err := parse(data)
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("parse error %v is not ErrInvalid", err)
				}
				continue
			}
			if err := s.Validate(known); err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("validate error %v is not ErrInvalid", err)
			}
		}
	})
}

func TestSegmentMatches(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	c := sessions.Customer{ID: "c", Tier: sessions.TierB, VIP: true, Owner: "rep1", Tags: []string{"renewal", "cn"}}
	for _, tc := range []struct {
		seg  Segment
		want bool
	}{
		{Segment{Tiers: []sessions.Tier{"A", "B"}}, true},
		{Segment{Tiers: []sessions.Tier{"A"}}, false},
		{Segment{Tags: []string{"renewal", "cn"}, VIP: &yes}, true},
		{Segment{Tags: []string{"renewal", "us"}}, false},
		{Segment{VIP: &no}, false},
		{Segment{Owner: "rep2"}, false},
	} {
		if got := tc.seg.Matches(c); got != tc.want {
			t.Errorf("%+v matches %v, want %v", tc.seg, got, tc.want)
		}
	}
	c.MergedInto = "d"
	if (Segment{Owner: "rep1"}).Matches(c) {
		t.Error("a merged customer matched")
	}
}
