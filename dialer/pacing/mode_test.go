package pacing

import (
	"errors"
	"testing"
	"time"
)

func TestParseMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Mode
		bad  bool
	}{
		{in: "preview", want: Mode{Kind: KindPreview}},
		{in: "progressive", want: Mode{Kind: KindProgressive}},
		{in: "ratio:2.5", want: Mode{Kind: KindRatio, Ratio: 2.5}},
		{in: "ratio:1", want: Mode{Kind: KindRatio, Ratio: 1}},
		{in: "vici", want: Mode{Kind: KindVICI}},
		{in: "predictive", want: Mode{Kind: KindPredictive}},
		{in: "", bad: true},
		{in: "Predictive", bad: true},
		{in: "ratio:", bad: true},
		{in: "ratio:0.5", bad: true},
		{in: "ratio:11", bad: true},
		{in: "ratio:NaN", bad: true},
		{in: "ratio:2x", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMode(tc.in)
			if tc.bad {
				if !errors.Is(err, ErrMode) {
					t.Fatalf("ParseMode(%q) = %v, %v; want ErrMode", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseMode(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			if back, err := ParseMode(got.String()); err != nil || back != got {
				t.Fatalf("round trip of %v: %v, %v", got, back, err)
			}
		})
	}
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"preview", "progressive", "ratio:2.5", "ratio:1e1", "vici", "predictive", "ratio:-1", "ratio:+Inf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err != nil {
			return
		}
		if m.Kind == KindRatio && !(m.Ratio >= 1 && m.Ratio <= MaxRatio) {
			t.Fatalf("%q parsed to ratio %v", s, m.Ratio)
		}
		if _, err := New(m, Config{}); err != nil {
			t.Fatalf("New(%v) after ParseMode(%q): %v", m, s, err)
		}
	})
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	pred := Mode{Kind: KindPredictive}
	for _, tc := range []struct {
		name string
		c    Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"target 1%", Config{TargetAbandon: 0.01}, true},
		{"target 3%", Config{TargetAbandon: 0.03}, true},
		{"target over 3%", Config{TargetAbandon: 0.031}, false},
		{"negative target", Config{TargetAbandon: -0.01}, false},
		{"negative connect limit", Config{ConnectLimit: -time.Second}, false},
		{"carried counts", Config{Answered: 100, Abandoned: 2}, true},
		{"more abandoned than answered", Config{Answered: 1, Abandoned: 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(pred, tc.c)
			if tc.ok != (err == nil) {
				t.Fatalf("New(%+v) = %v, %v", tc.c, p, err)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
		})
	}
	if _, err := New(Mode{Kind: "burst"}, Config{}); !errors.Is(err, ErrMode) {
		t.Fatalf("New with an unknown kind: %v", err)
	}
	d := Config{}.withDefaults()
	if d.TargetAbandon != 0.03 || d.ConnectLimit != 2*time.Second {
		t.Fatalf("defaults %+v", d)
	}
}
