package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/dialer/callsim"
)

func TestTable(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := run([]string{"-reps", "5,8", "-seeds", "2", "-hours", "0.1", "-mode", "progressive,ratio:2"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2+4 {
		t.Fatalf("want a header and 4 rows:\n%s", out.String())
	}
	for i, want := range []string{"| 5 | progressive |", "| 5 | ratio:2 |", "| 8 | progressive |", "| 8 | ratio:2 |"} {
		if !strings.HasPrefix(lines[2+i], want) || !strings.HasSuffix(lines[2+i], "|") {
			t.Fatalf("row %d %q, want it to start %q", i, lines[2+i], want)
		}
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := run([]string{"-reps", "5", "-seeds", "3", "-hours", "0.1", "-mode", "progressive", "-answer", "0.35", "-drift-to", "0.15", "-json"}, &out); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	var seeds []uint64
	for sc.Scan() {
		var r callsim.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		if r.Mode != "progressive" || r.Reps != 5 || r.Dialed == 0 {
			t.Fatalf("result %+v", r)
		}
		seeds = append(seeds, r.Seed)
	}
	if len(seeds) != 3 || seeds[0] != 1 || seeds[2] != 3 {
		t.Fatalf("seeds %v, want 1, 2, 3", seeds)
	}
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-reps", "0"},
		{"-reps", "ten"},
		{"-mode", "ratio:0.5"},
		{"-mode", "turbo"},
		{"-seeds", "0"},
		{"-target-abandon", "0.05"},
		{"-answer", "0.3", "-machine", "0.3"},
		{"-ring-timeout", "0s"},
		{"extra"},
	} {
		if err := run(args, &strings.Builder{}); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
