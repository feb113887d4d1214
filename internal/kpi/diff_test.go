package kpi_test

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/omnigate/omnigate/internal/kpi"
)

// diff lists the JSON fields where got and want differ.
func diff(got, want kpi.Row) string {
	var g, w map[string]any
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	_ = json.Unmarshal(gb, &g)
	_ = json.Unmarshal(wb, &w)
	var out []string
	for k, wv := range w {
		if fmt.Sprint(g[k]) != fmt.Sprint(wv) {
			out = append(out, fmt.Sprintf("  %s = %v, want %v", k, g[k], wv))
		}
	}
	return strings.Join(out, "\n")
}
