package inbox

import (
	"bytes"
	"fmt"
	"net/http"
	"time"

	"github.com/omnigate/omnigate/internal/auth"
)

// frameWallboard is the supervisors' live KPI frame (server → client):
// {"type":"wallboard","at":<server time>,"wallboard":{...}}, the data as
// the source gives it (kpi.Snapshot); "at" lets the page count waits up
// on the server's clock. Only supervisor and admin sockets get it; reps never do.
const frameWallboard = "wallboard"

// WallboardSource is what the wallboard frame shows; *kpi.Engine is one.
type WallboardSource interface {
	// Version changes whenever the frame's data may have.
	Version() uint64
	// WallboardFrame is the frame's data as JSON: the same bytes while
	// nothing changed.
	WallboardFrame() []byte
}

const (
	// wallboardEvery is the most often the frame is pushed: often enough
	// that a change shows within a second (wallboardEvery plus one
	// check), seldom enough that a busy day costs supervisors' sockets
	// little. The data is also rebuilt this often when nothing changed, for
	// alerts that come with the clock (a wait passing reports.alert_wait).
	wallboardEvery = 750 * time.Millisecond
	// wallboardCheck is how often the source's version is looked at.
	wallboardCheck = 50 * time.Millisecond
)

// startWallboard pushes the wallboard frame to supervisor and admin
// sockets: when its data changed, at most once every wallboardEvery, and
// the latest to each socket that joined since.
func (h *Hub) startWallboard(src WallboardSource) {
	if src == nil {
		return
	}
	h.wg.Go(func() {
		t := time.NewTicker(wallboardCheck)
		defer t.Stop()
		var (
			version          uint64
			data, sentData   []byte
			built, pushed    time.Time
			sent, nowSending = map[*conn]bool{}, map[*conn]bool{}
		)
		for {
			select {
			case <-h.ctx.Done():
				return
			case now := <-t.C:
				clear(nowSending)
				h.mu.Lock()
				for c := range h.conns {
					if c.p.Role == auth.RoleSupervisor || c.p.Role == auth.RoleAdmin {
						nowSending[c] = true
					}
				}
				h.mu.Unlock()
				if len(nowSending) == 0 {
					clear(sent)
					continue // nobody watches: nothing is built
				}
				// Rebuilt when something changed and a push is due, and
				// every wallboardEvery besides (alerts that come with the
				// clock): never more than twice a wallboardEvery.
				due := now.Sub(pushed) >= wallboardEvery
				if v := src.Version(); (v != version && due) || data == nil || now.Sub(built) >= wallboardEvery {
					version, data, built = v, src.WallboardFrame(), now
				}
				changed := due && !bytes.Equal(data, sentData)
				if changed {
					sentData, pushed = data, now
				}
				var frame *outFrame
				for c := range nowSending {
					if sentData == nil || (!changed && sent[c]) {
						continue
					}
					if frame == nil {
						at, _ := now.UTC().MarshalJSON()
						frame = &outFrame{full: fmt.Appendf(nil, `{"type":%q,"at":%s,"wallboard":%s}`, frameWallboard, at, sentData)}
					}
					c.write(frame)
				}
				sent, nowSending = nowSending, sent
			}
		}
	})
}

// boardOnly reports whether the socket is the wallboard's (/inbox/ws?view=
// wallboard): a supervisor watching the board is not taking work, so it
// does not make them online for routing as an inbox socket does.
func boardOnly(r *http.Request) bool { return r.URL.Query().Get("view") == "wallboard" }

// countsPresence reports whether the socket makes its rep online.
func (c *conn) countsPresence() bool { return c.p.IsRep() && !c.boardOnly }
