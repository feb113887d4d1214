package main

import (
	"fmt"
	"path/filepath"
)

// gatewayConfig is the run's configuration: no routing
// reps, so chats wait and the wallboard has a queue to show; a supervisor
// for loadgen's rep socket and the wallboard.
func gatewayConfig(dir string, o options) ([]byte, error) {
	perMinute := (o.rate*60 + o.conns - 1) / o.conns
	return fmt.Appendf(nil, `listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 10s
log: {format: text, level: warn}
store: {kind: bolt}
auth:
  reps:
    - {id: loadrep, name: Load Rep, role: supervisor, token: %s}
webchat:
  sites:
    - id: %s
      allowed_origins: [%q]
      rate_per_minute: %d
      new_visitors_burst: %d
http:
  max_connections: %d
routing:
  queues:
    - {name: chat, channels: [webchat]}
`, filepath.Join(dir, "data"), token, site, origin, max(120, 2*perMinute), maxConns+100, maxConns+1000), nil
}
