package routing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// Presence as routing sees it: what a rep set (through the API or by
// opening the inbox) is the router's, shared between nodes by its State;
// which inbox sockets are open is the inbox's, told through Connected,
// and (cluster) recorded per node so the grace period ends only when the
// rep has no socket on any live node.

type presenceChange struct {
	rep    string
	online bool
	check  bool // the grace period after the last socket closed is over
}

// Connected is told when a rep's first inbox socket on this node opens
// (online) and when their last one closes. It returns at once: the change
// is queued, in order. Opening the inbox makes a rep available; closing
// their last socket on every node sets them away once
// Config.PresenceGrace is over.
func (s *Service) Connected(rep string, online bool) {
	select {
	case s.presenceCh <- presenceChange{rep: rep, online: online}:
	case <-s.ctx.Done():
	}
}

// OnPresenceChange registers fn, called (on a routing goroutine; it must
// not block) after any rep's presence was set, so a channel can tell its
// customers whether someone is there.
func (s *Service) OnPresenceChange(fn func()) {
	s.mu.Lock()
	s.listeners = append(s.listeners, fn)
	s.mu.Unlock()
}

func (s *Service) notifyPresence() {
	s.mu.Lock()
	ls := s.listeners
	s.mu.Unlock()
	for _, fn := range ls {
		fn()
	}
	s.observe()
}

func (s *Service) presenceLoop() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case pc := <-s.presenceCh:
			s.presenceChanged(pc)
		}
	}
}

func (s *Service) presenceChanged(pc presenceChange) {
	s.mu.Lock()
	switch {
	case pc.check:
		if s.sockets[pc.rep] {
			s.mu.Unlock()
			return
		}
	case pc.online:
		s.sockets[pc.rep] = true
		if t := s.grace[pc.rep]; t != nil {
			t.Stop()
			delete(s.grace, pc.rep)
		}
	default:
		delete(s.sockets, pc.rep)
		if t := s.grace[pc.rep]; t != nil {
			t.Stop()
		}
		rep := pc.rep
		s.grace[rep] = time.AfterFunc(s.cfg.PresenceGrace, func() {
			select {
			case s.presenceCh <- presenceChange{rep: rep, check: true}:
			case <-s.ctx.Done():
			}
		})
	}
	s.mu.Unlock()

	if !pc.check && s.cluster != nil {
		if err := s.cluster.SetConnected(s.ctx, pc.rep, pc.online); err != nil {
			s.fail("record connection", err)
		}
	}
	st, err := s.r.Rep(pc.rep)
	if err != nil {
		return // not a routed rep
	}
	switch {
	case pc.online:
		if st.Presence == router.PresenceOffline || st.Presence == router.PresenceAway {
			s.apply(s.r.SetPresence(s.ctx, pc.rep, router.PresenceAvailable))
			s.notifyPresence()
		}
	case pc.check:
		s.mu.Lock()
		delete(s.grace, pc.rep)
		s.mu.Unlock()
		if s.cluster != nil {
			if on, err := s.cluster.Connected(s.ctx, pc.rep); err != nil || on {
				return // connected on another node (or unknown: leave it)
			}
		}
		if st.Presence != router.PresenceAway && st.Presence != router.PresenceOffline {
			s.apply(s.r.SetPresence(s.ctx, pc.rep, router.PresenceAway))
			s.notifyPresence()
		}
	}
}

// Available reports whether any rep who takes the channel is available
// (or in wrap-up, about to be): the widget offers chat or the offline
// form on it.
func (s *Service) Available(channel string) bool {
	for _, st := range s.r.Reps() {
		if st.Presence != router.PresenceAvailable && st.Presence != router.PresenceWrapUp {
			continue
		}
		if len(st.Channels) == 0 {
			return true
		}
		for _, ch := range st.Channels {
			if ch == channel {
				return true
			}
		}
	}
	return false
}

// Rep is the rep's status as the router sees it now (router.ErrUnknownRep
// for a rep it does not route).
func (s *Service) Rep(id string) (router.RepStatus, error) { return s.r.Rep(id) }

// SetPresence sets a routed rep's presence (router.ErrUnknownRep,
// wrapped in sessions.ErrNotFound, for another), and acts on what that
// decides: an available rep gets waiting work, an away one loses offers.
func (s *Service) SetPresence(_ context.Context, rep string, p router.Presence) error {
	// The service's context, not the caller's: the assignments this makes
	// are written even if the client hangs up.
	ds, err := s.r.SetPresence(s.ctx, rep, p)
	s.apply(ds)
	s.notifyPresence()
	if errors.Is(err, router.ErrUnknownRep) {
		return fmt.Errorf("%w: rep %s is not routed", sessions.ErrNotFound, rep)
	}
	return err
}
