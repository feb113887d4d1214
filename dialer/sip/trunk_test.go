package sip

import "testing"

func TestCallIDFor(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"att_01HZX":               "att_01HZX",
		"camp/7:att-3":            "camp/7:att-3",
		"a b\"c<d>":               "a%20b%22c%3Cd%3E",
		"100%":                    "100%25",
		"":                        "",
		string(make([]byte, 129)): "",
	} {
		if got := callIDFor(in); got != want {
			t.Errorf("callIDFor(%q) = %q, want %q", in, got, want)
		}
	}
}
