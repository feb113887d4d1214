package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestBannerURLsAnswer: every URL the start-up banner prints answers 200
// to a plain GET, as someone who copies it into a browser would send.
func TestBannerURLsAnswer(t *testing.T) {
	t.Parallel()
	g, _ := runGateway(t, routedConfig(t, t.TempDir()))
	for _, line := range g.URLs() {
		u := strings.Fields(line)[0]
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("banner line %q: GET %s = %d", line, u, resp.StatusCode)
		}
	}
}
