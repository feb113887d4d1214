package api

import (
	"strings"
	"testing"
)

// FuzzTicket: a ticket is letters only (the masking of a rep's answers
// leaves it alone) and gives its attempt id back; any path value
// decodes without a panic.
func FuzzTicket(f *testing.F) {
	for _, s := range []string{"spring.000042.1", "demo-renewals.000000.10", "", "abc", "kgkh"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		tk := ticket(id)
		if strings.Trim(tk, "abcdefghijklmnop") != "" {
			t.Fatalf("ticket(%q) = %q has other than a-p", id, tk)
		}
		if strings.Contains(id, ".") && untick(tk) != id {
			t.Fatalf("untick(ticket(%q)) = %q", id, untick(tk))
		}
		_ = untick(id)
	})
}
