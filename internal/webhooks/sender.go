package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/omnigate/omnigate/channels/signing"
)

// sender attempts due deliveries: at most Concurrency (or the endpoint's
// own MaxConcurrency) in flight per endpoint, each attempt signed afresh
// with the delivery's fixed webhook-id and the current time.
type sender struct {
	cfg       Config
	ob        Outbox
	client    *http.Client
	log       *slog.Logger
	now       func() time.Time
	m         *metrics
	onDisable func(Endpoint)

	wake chan struct{}

	mu       sync.Mutex
	inflight map[string]bool // delivery ids
	perEP    map[string]int
	wg       sync.WaitGroup
}

// maxInFlight caps attempts in flight across every endpoint.
const maxInFlight = 64

func (s *sender) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sender) run(ctx context.Context) {
	defer s.wg.Wait()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	s.pruneOnce(ctx)
	for {
		s.dispatchDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		case <-prune.C:
			s.pruneOnce(ctx)
		}
	}
}

func (s *sender) pruneOnce(ctx context.Context) {
	now := s.now()
	n, err := s.ob.Prune(ctx, now.Add(-s.cfg.Retention), now.Add(-s.cfg.DeadRetention))
	if err != nil && ctx.Err() == nil {
		s.log.Warn("webhooks: pruning the outbox failed", slog.Any("error", err))
	} else if n > 0 {
		s.log.Info("webhooks: pruned old deliveries", slog.Int("deliveries", n))
	}
}

func (s *sender) dispatchDue(ctx context.Context) {
	due, err := s.ob.Due(ctx, s.now(), 512)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("webhooks: reading due deliveries failed", slog.Any("error", err))
		}
		return
	}
	eps := map[string]Endpoint{}
	for _, d := range due {
		ep, ok := eps[d.EndpointID]
		if !ok {
			ep, err = s.ob.Endpoint(ctx, d.EndpointID)
			if err != nil {
				continue // deleted meanwhile; DeleteEndpoint dropped its deliveries
			}
			eps[d.EndpointID] = ep
		}
		if ep.Disabled {
			// Enqueued from an endpoint list read just before it was
			// disabled: dead-letter it like the rest.
			a := Attempt{DeliveryID: d.ID, EndpointID: ep.ID, EventID: d.EventID, N: d.Attempts, At: s.now(), Error: "endpoint disabled"}
			if err := s.ob.Record(ctx, killed(d, a.At), a); err != nil && ctx.Err() == nil {
				s.log.Warn("webhooks: dead-lettering for a disabled endpoint failed", slog.String("delivery_id", d.ID), slog.Any("error", err))
			}
			continue
		}
		limit := ep.MaxConcurrency
		if limit <= 0 {
			limit = s.cfg.Concurrency
		}
		s.mu.Lock()
		busy := s.inflight[d.ID] || s.perEP[ep.ID] >= limit || len(s.inflight) >= maxInFlight
		if !busy {
			s.inflight[d.ID] = true
			s.perEP[ep.ID]++
		}
		s.mu.Unlock()
		if busy {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.attempt(ctx, d, ep)
			s.mu.Lock()
			delete(s.inflight, d.ID)
			s.perEP[ep.ID]--
			s.mu.Unlock()
			s.kick() // a slot is free: look again without waiting for the tick
		}()
	}
}

// attempt POSTs one delivery and records the outcome. A crash after the
// receiver answered and before Record leaves the delivery pending: it is
// sent again with the same webhook-id (at least once; receivers dedupe).
func (s *sender) attempt(ctx context.Context, d Delivery, ep Endpoint) {
	// d came from a Due read that may predate an attempt that has finished
	// since (it was in flight then): re-read it now that it is marked in
	// flight, so one success is never followed by a second send.
	d, err := s.ob.Delivery(ctx, d.ID)
	if err != nil || d.State != StatePending || d.NextAttempt.After(s.now()) {
		return
	}
	secret, err := signing.ParseSecret(ep.Secret)
	if err != nil {
		s.log.Error("webhooks: endpoint has an unusable secret", slog.String("endpoint", ep.ID))
		return
	}
	start := s.now()
	// An attempt under way finishes (bounded by the endpoint timeout) and
	// is recorded even when shutdown starts: cancelling it could cut off
	// the receiver's 2xx after it acted, and the next start would deliver
	// again. Close waits for it.
	status, sendErr := s.post(context.WithoutCancel(ctx), ep, secret, d)
	end := s.now()
	d.Attempts++
	d.LastAttemptAt, d.LastStatus = end, status
	a := Attempt{DeliveryID: d.ID, EndpointID: ep.ID, EventID: d.EventID, N: d.Attempts, At: end,
		DurationMS: end.Sub(start).Milliseconds(), Status: status, OK: sendErr == nil}
	if sendErr == nil {
		d.State, d.DeliveredAt, d.NextAttempt, d.LastError = StateDelivered, end, time.Time{}, ""
		s.m.attempts.WithLabelValues("delivered").Inc()
	} else {
		a.Error = sendErr.Error()
		d.LastError = a.Error
		delay := backoff(s.cfg.RetryBase, s.cfg.RetryMax, d.Attempts)
		if end.Add(delay).Sub(d.WindowStart) > s.cfg.MaxAge {
			d.State, d.NextAttempt, d.DeadAt = StateDead, time.Time{}, end
			d.DeadReason = fmt.Sprintf("no success in %v (%d attempts)", s.cfg.MaxAge, d.Attempts)
			s.m.attempts.WithLabelValues("dead").Inc()
			s.log.Warn("webhooks: delivery dead-lettered", slog.String("endpoint", ep.ID), slog.String("delivery_id", d.ID),
				slog.Int("attempts", d.Attempts), slog.String("last_error", a.Error))
		} else {
			d.NextAttempt = end.Add(delay)
			s.m.attempts.WithLabelValues("failed").Inc()
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.ob.Record(rctx, d, a); err != nil {
		s.log.Error("webhooks: recording an attempt failed", slog.String("delivery_id", d.ID), slog.Any("error", err))
		return
	}
	cur, disabled, err := s.ob.MarkEndpoint(rctx, ep.ID, sendErr == nil, end, s.cfg.DisableAfter)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			s.log.Warn("webhooks: recording endpoint health failed", slog.String("endpoint", ep.ID), slog.Any("error", err))
		}
		return
	}
	if disabled {
		s.m.disabled.Inc()
		s.log.Error("webhooks: endpoint disabled after failing continuously; its pending deliveries are dead letters",
			slog.String("endpoint", ep.ID), slog.String("reason", cur.DisabledReason))
		if s.onDisable != nil {
			s.onDisable(cur)
		}
	}
}

// post sends one attempt: 2xx is success; anything else, including a
// redirect (not followed), is a failure.
func (s *sender) post(ctx context.Context, ep Endpoint, secret signing.Secret, d Delivery) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0, fmt.Errorf("bad url: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Omnigate-Webhooks/1")
	secret.SetHeaders(req.Header, d.ID, s.now(), d.Payload)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, errors.New(describeNetErr(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// describeNetErr is a short reason for the log, without the URL (it may
// hold a token in its query).
func describeNetErr(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timeout"
	case errors.Is(err, errRedirect):
		return "redirect not followed"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Op + ": " + op.Err.Error()
	}
	return "request failed"
}

var errRedirect = errors.New("webhooks: redirect")

// backoff is the delay before retry n (1-based): base·2^(n-1), capped at
// max, then half of it fixed and half random ("equal jitter"), so a
// receiver that comes back is not hit by every sender at once.
func backoff(base, maxDelay time.Duration, n int) time.Duration {
	d := maxDelay
	if n-1 < 40 {
		if v := base << (n - 1); v > 0 && v < maxDelay {
			d = v
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
