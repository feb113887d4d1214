package gateway

import (
	"context"
	"time"

	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// Presence as routing sees it: what a rep set (through the API or by
// opening the inbox) is the router's, shared between nodes by its State;
// which inbox sockets are open is the inbox hub's, told through
// OnPresence, and (cluster) recorded per node so the grace period ends
// only when the rep has no socket on any live node.

type presenceChange struct {
	rep    string
	online bool
	check  bool // the grace period after the last socket closed is over
}

// onPresence is the inbox hub's OnPresence: it must return at once, so
// the change is queued, in order, for presenceLoop.
func (rt *routing) onPresence(rep string, online bool) {
	select {
	case rt.presenceCh <- presenceChange{rep: rep, online: online}:
	case <-rt.ctx.Done():
	}
}

// presenceLoop: opening the inbox makes a rep available (the inbox has no
// presence control yet); closing their last socket (on every node) sets
// them away once the grace period is over.
func (rt *routing) presenceLoop() {
	defer rt.wg.Done()
	for {
		select {
		case <-rt.ctx.Done():
			return
		case pc := <-rt.presenceCh:
			rt.presenceChanged(pc)
		}
	}
}

func (rt *routing) presenceChanged(pc presenceChange) {
	rt.mu.Lock()
	switch {
	case pc.check:
		if rt.sockets[pc.rep] {
			rt.mu.Unlock()
			return
		}
	case pc.online:
		rt.sockets[pc.rep] = true
		if t := rt.grace[pc.rep]; t != nil {
			t.Stop()
			delete(rt.grace, pc.rep)
		}
	default:
		delete(rt.sockets, pc.rep)
		if t := rt.grace[pc.rep]; t != nil {
			t.Stop()
		}
		rep := pc.rep
		rt.grace[rep] = time.AfterFunc(rt.cfg.PresenceGrace, func() {
			select {
			case rt.presenceCh <- presenceChange{rep: rep, check: true}:
			case <-rt.ctx.Done():
			}
		})
	}
	rt.mu.Unlock()

	if !pc.check && rt.cluster != nil {
		if err := rt.cluster.SetConnected(rt.ctx, pc.rep, pc.online); err != nil {
			rt.fail("record connection", err)
		}
	}
	st, err := rt.r.Rep(pc.rep)
	if err != nil {
		return // not a routed rep
	}
	switch {
	case pc.online:
		if st.Presence == router.PresenceOffline || st.Presence == router.PresenceAway {
			rt.apply(rt.r.SetPresence(rt.ctx, pc.rep, router.PresenceAvailable))
			rt.notifyPresence()
		}
	case pc.check:
		rt.mu.Lock()
		delete(rt.grace, pc.rep)
		rt.mu.Unlock()
		if rt.cluster != nil {
			if on, err := rt.cluster.Connected(rt.ctx, pc.rep); err != nil || on {
				return // connected on another node (or unknown: leave it)
			}
		}
		if st.Presence != router.PresenceAway && st.Presence != router.PresenceOffline {
			rt.apply(rt.r.SetPresence(rt.ctx, pc.rep, router.PresenceAway))
			rt.notifyPresence()
		}
	}
}

// available is webchat's Options.Available: is any rep who takes chats
// available (or in wrap-up, about to be)?
func (rt *routing) available(context.Context, string) bool {
	for _, st := range rt.r.Reps() {
		if st.Presence != router.PresenceAvailable && st.Presence != router.PresenceWrapUp {
			continue
		}
		if len(st.Channels) == 0 {
			return true
		}
		for _, ch := range st.Channels {
			if ch == sessions.ChannelWebchat {
				return true
			}
		}
	}
	return false
}
