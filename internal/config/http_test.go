package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/internal/config"
)

// TestHTTPLimits: the http section's defaults, and negative values are
// refused by name.
func TestHTTPLimits(t *testing.T) {
	t.Parallel()
	c, err := config.Parse(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.MaxConnections != 10000 || c.HTTP.BodyTimeout != 10*time.Second {
		t.Errorf("http defaults = %+v", c.HTTP)
	}
	_, err = config.Parse([]byte("http: {max_connections: -1, body_timeout: -1s}\n"), noEnv)
	for _, want := range []string{"http.max_connections", "http.body_timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("negative http limits: %v, want it to name %s", err, want)
		}
	}
}
