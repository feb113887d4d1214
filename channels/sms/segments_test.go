package sms

import (
	"strings"
	"testing"
)

func TestCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want Segments
	}{
		{"empty", "", Segments{GSM7, 0, 0}},
		{"one char", "a", Segments{GSM7, 1, 1}},
		{"gsm 160 fits one", strings.Repeat("a", 160), Segments{GSM7, 1, 160}},
		{"gsm 161 needs two", strings.Repeat("a", 161), Segments{GSM7, 2, 161}},
		{"gsm 306 is two parts of 153", strings.Repeat("a", 306), Segments{GSM7, 2, 306}},
		{"gsm 307 is three", strings.Repeat("a", 307), Segments{GSM7, 3, 307}},
		{"gsm specials are one septet", "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", Segments{GSM7, 1, 42}},
		{"extension chars count double", "{}[]~|^\\€", Segments{GSM7, 1, 18}},
		{"80 euro signs are 160 septets", strings.Repeat("€", 80), Segments{GSM7, 1, 160}},
		{"81 euro signs need two parts", strings.Repeat("€", 81), Segments{GSM7, 2, 162}},
		// 152 plain septets then an escaped char: the pair would straddle
		// 153, so it opens part two.
		{"escape never split across parts", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 10), Segments{GSM7, 2, 164}},
		{"ucs2 for chinese", "您好", Segments{UCS2, 1, 2}},
		{"ucs2 70 fits one", strings.Repeat("退", 70), Segments{UCS2, 1, 70}},
		{"ucs2 71 needs two", strings.Repeat("退", 71), Segments{UCS2, 2, 71}},
		{"ucs2 134 is two parts of 67", strings.Repeat("退", 134), Segments{UCS2, 2, 134}},
		{"ucs2 135 is three", strings.Repeat("退", 135), Segments{UCS2, 3, 135}},
		{"one non-gsm char makes all ucs2", strings.Repeat("a", 100) + "é" + "ç", Segments{UCS2, 2, 102}},
		{"emoji is a surrogate pair", "😀", Segments{UCS2, 1, 2}},
		{"35 emoji fit one", strings.Repeat("😀", 35), Segments{UCS2, 1, 70}},
		// 66 units then a pair: the pair opens part two rather than split.
		{"surrogate pair never split", strings.Repeat("a", 66) + "😀" + strings.Repeat("a", 5), Segments{UCS2, 2, 73}},
		{"newline and cr are gsm", "a\r\nb", Segments{GSM7, 1, 4}},
		{"tab is not gsm", "a\tb", Segments{UCS2, 1, 3}},
		{"backtick is not gsm", "`", Segments{UCS2, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Count(tt.text); got != tt.want {
				t.Fatalf("Count(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}
