package sms

import "testing"

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, region, want string
	}{
		{"+8613812345678", "", "+8613812345678"},
		{"+86 138 1234 5678", "", "+8613812345678"},
		{"138 1234 5678", "CN", "+8613812345678"},
		{"13812345678", "cn", "+8613812345678"},
		{"(415) 867-5309", "US", "+14158675309"},
		{"+1 415-867-5309", "CN", "+14158675309"},
		{"13812345678", "", ""}, // no region, no country code
		{"", "CN", ""},
		{"hello", "CN", ""},
		{"+86123", "", ""}, // too short for China
		{"+999 1234567", "", ""},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.raw, tt.region)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Normalize(%q, %q) = %q, want an error", tt.raw, tt.region, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q, %q) = %q, %v; want %q", tt.raw, tt.region, got, err, tt.want)
		}
	}
	if !ValidRegion("cn") || ValidRegion("XX") {
		t.Error("ValidRegion")
	}
}
