package dialer

import (
	"context"
	"log/slog"
	"time"
)

// tickEvery is how often campaigns are paced.
const tickEvery = time.Second

// Run paces every campaign this node holds (or takes) the lease of, once
// a second of the clock, until ctx ends; then it gives its campaigns'
// leases up and waits for the calls it follows to end. Calls outlive a
// pause or a stop of their campaign: they are finished, not cut. A
// process that exits before they end leaves them to the node that next
// runs their campaign, which concludes them as interrupted.
func (s *Service) Run(ctx context.Context) error {
	for {
		s.Tick(ctx)
		select {
		case <-ctx.Done():
			s.unleaseAll()
			s.finishCalls()
			return nil
		case <-s.o.Clock.After(tickEvery):
		}
	}
}

// finishCalls waits for the calls this node follows to end, renewing
// its heartbeat meanwhile so no other node concludes them; then it gives
// the heartbeat up.
func (s *Service) finishCalls() {
	ctx := context.Background()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			_ = s.o.Store.Unlease(ctx, nodeLease(s.o.Node), s.o.Node)
			return
		case <-s.o.Clock.After(tickEvery):
			_, _ = s.o.Store.Lease(ctx, nodeLease(s.o.Node), s.o.Node, s.o.LeaseTTL)
		}
	}
}

// Tick is one round of Run: leases taken or renewed, runners started
// for campaigns newly held (concluding what a crash interrupted) and
// stopped for those lost, and each runner's calls placed. Tests call it
// to step a Service without Run's loop.
func (s *Service) Tick(ctx context.Context) {
	if _, err := s.o.Store.Lease(ctx, nodeLease(s.o.Node), s.o.Node, s.o.LeaseTTL); err != nil {
		s.log.Warn("dialer: node heartbeat", slog.Any("error", err))
	}
	cs, err := s.o.Store.Campaigns(ctx)
	if err != nil {
		s.log.Warn("dialer: listing campaigns", slog.Any("error", err))
		return
	}
	for _, c := range cs {
		if ctx.Err() != nil {
			return
		}
		if !c.State.dialing() && c.State != StatePaused {
			s.drop(ctx, c.ID(), false)
			continue
		}
		held, err := s.o.Store.Lease(ctx, c.ID(), s.o.Node, s.o.LeaseTTL)
		if err != nil || !held {
			if err != nil {
				s.log.Warn("dialer: campaign lease", slog.String("campaign", c.ID()), slog.Any("error", err))
			}
			s.drop(ctx, c.ID(), false)
			continue
		}
		r := s.runner(c.ID())
		if r == nil {
			if r, err = s.newRunner(ctx, c); err != nil {
				s.log.Warn("dialer: starting a campaign", slog.String("campaign", c.ID()), slog.Any("error", err))
				continue
			}
			s.mu.Lock()
			s.runners[c.ID()] = r
			s.mu.Unlock()
			s.log.Info("dialer: running campaign", slog.String("campaign", c.ID()), slog.String("node", s.o.Node))
		}
		r.tick(ctx, c)
	}
}

// drop forgets the campaign's runner; unlease gives its lease up too.
func (s *Service) drop(ctx context.Context, id string, unlease bool) {
	s.mu.Lock()
	_, ok := s.runners[id]
	delete(s.runners, id)
	s.mu.Unlock()
	if ok && unlease {
		_ = s.o.Store.Unlease(context.WithoutCancel(ctx), id, s.o.Node)
	}
}

func (s *Service) unleaseAll() {
	s.mu.Lock()
	ids := make([]string, 0, len(s.runners))
	for id := range s.runners {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.drop(context.Background(), id, true)
	}
}

func (s *Service) runner(campaign string) *runner {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runners[campaign]
}

// following reports whether this node follows the attempt's call.
func (s *Service) following(attempt string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.calls[attempt]
	return ok
}

// liveCalls copies the campaign's calls followed here.
func (s *Service) liveCalls(campaign string) []liveCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []liveCall
	for _, lc := range s.calls {
		if lc.a.Campaign == campaign {
			out = append(out, *lc)
		}
	}
	return out
}
