package gateway

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/omnigate/omnigate/dialer"
)

// dialLog is dialer.dial_log: one line per call, the attempt id,
// appended and synced before the trunk is asked to place the call, so
// the file holds every call placed even after a SIGKILL (and perhaps
// one more that the kill stopped between the line and the call). A line
// without its newline at the end of the file is one a crash cut short.
type dialLog struct {
	mu sync.Mutex
	f  *os.File
}

func openDialLog(path string) (*dialLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("gateway: dialer.dial_log: %w", err)
	}
	return &dialLog{f: f}, nil
}

func (l *dialLog) append(attemptID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.WriteString(attemptID + "\n"); err != nil {
		return fmt.Errorf("gateway: dial log: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("gateway: dial log: %w", err)
	}
	return nil
}

func (l *dialLog) Close() error { return l.f.Close() }

// wrap returns t with every Dial logged first. A call that cannot be
// logged is not placed: the dialer records it as failed.
func (l *dialLog) wrap(t dialer.Trunk) dialer.Trunk { return loggedTrunk{Trunk: t, log: l} }

type loggedTrunk struct {
	dialer.Trunk
	log *dialLog
}

func (t loggedTrunk) Dial(ctx context.Context, d dialer.Dial) (dialer.Call, error) {
	if err := t.log.append(d.AttemptID); err != nil {
		return nil, err
	}
	return t.Trunk.Dial(ctx, d)
}
