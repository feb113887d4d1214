package wechat

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// Reach is whether a customer can get customer-service messages from one
// official account now.
type Reach struct {
	// Account is the account's key.
	Account string `json:"account"`
	// LastInbound is when the customer last wrote to the account, clicked
	// its menu, followed it or scanned its QR code (what opens the
	// window); zero when not within the window.
	LastInbound time.Time `json:"last_inbound,omitzero"`
	// Unsubscribed is set when the customer unfollowed the account after
	// LastInbound: nothing can be sent until they follow again.
	Unsubscribed bool `json:"unsubscribed,omitempty"`
	// Closes is when the window ends, LastInbound plus the window (48 h);
	// zero when there is no LastInbound.
	Closes time.Time `json:"closes,omitzero"`
	// Open: a customer-service message sent now is allowed.
	Open bool `json:"open"`
}

// Scan limits: the window plus a margin for clock skew between nodes, and
// at most maxScan events of the timeline, newest first.
const (
	scanMargin = 10 * time.Minute
	scanPage   = 200
	maxScan    = 5000
)

// Windows reports, for every account the customer interacted with within
// the window, whether it may send to them now: open windows first, then
// by last inbound, newest first. The first element, when Open, is the
// account replies go out from. The router uses it for the reachable
// channels of a task and the inbox to show when the window closes.
//
// It is derived from the timeline, the one source of truth, which also
// carries it through merges: the customer's wechat message_in events
// (messages and events) of the last 48 hours, read newest first. Events
// keep the account key and WeChat's CreateTime in their payload. Cost: a
// few one-event reads to find the head of the timeline, then one page
// read per 200 events of the last 48 hours.
func (a *Adapter) Windows(ctx context.Context, customerID string) ([]Reach, error) {
	return a.windows(ctx, customerID, false)
}

// windows is Windows; deep reads past the window (up to maxScan events) so
// a closed window can say when the customer last wrote. Then LastInbound
// may be older than the window, and Closes in the past.
func (a *Adapter) windows(ctx context.Context, customerID string, deep bool) ([]Reach, error) {
	customerID, err := a.current(ctx, customerID)
	if err != nil {
		return nil, err
	}
	now := a.now()
	cutoff := now.Add(-a.cfg.Window - scanMargin)
	if deep {
		cutoff = time.Time{}
	}
	head, err := a.store.LastSeq(ctx, customerID)
	if err != nil {
		return nil, err
	}
	type mark struct {
		t   time.Time
		seq uint64
	}
	later := func(x, y mark) bool { return x.t.After(y.t) || (x.t.Equal(y.t) && x.seq > y.seq) }
	in, out := map[string]mark{}, map[string]mark{}
	scanned := 0
scan:
	for head > 0 && scanned < maxScan {
		from := head - min(head, scanPage)
		evs, err := a.store.Timeline(ctx, customerID, from, scanPage)
		if err != nil {
			return nil, err
		}
		for i := len(evs) - 1; i >= 0; i-- {
			ev := evs[i]
			scanned++
			// Copies made by a merge keep their original time and may be
			// older than what precedes them: only originals end the scan.
			if ev.Origin == "" && ev.Time.Before(cutoff) {
				break scan
			}
			if ev.Channel != sessions.ChannelWeChat || ev.Kind != sessions.KindMessageIn {
				continue
			}
			var p Payload
			if json.Unmarshal(ev.Payload, &p) != nil || p.WeChat.Account == "" {
				continue
			}
			mk := mark{t: inboundTime(ev, p.WeChat), seq: ev.Seq}
			acct := p.WeChat.Account
			switch {
			case p.WeChat.Event == eventUnsubscribe:
				if later(mk, out[acct]) {
					out[acct] = mk
				}
			case p.WeChat.opensWindow():
				if later(mk, in[acct]) {
					in[acct] = mk
				}
			default:
				if _, ok := in[acct]; !ok {
					in[acct] = mark{} // seen (a VIEW), so listed
				}
			}
		}
		head = from
	}
	var reaches []Reach
	for acct := range mergeKeys(in, out) {
		r := Reach{Account: acct}
		last, unsub := in[acct], out[acct]
		r.Unsubscribed = !unsub.t.IsZero() && later(unsub, last)
		if !last.t.IsZero() && last.t.After(cutoff) {
			r.LastInbound = last.t
			r.Closes = last.t.Add(a.cfg.Window)
			r.Open = !r.Unsubscribed && now.Before(r.Closes)
		}
		reaches = append(reaches, r)
	}
	slices.SortFunc(reaches, func(x, y Reach) int {
		if x.Open != y.Open {
			if x.Open {
				return -1
			}
			return 1
		}
		if c := y.LastInbound.Compare(x.LastInbound); c != 0 {
			return c
		}
		return cmp.Compare(x.Account, y.Account)
	})
	return reaches, nil
}

// Reachable reports whether account may send the customer a
// customer-service message now, and when the customer last wrote to it.
// An account the customer never wrote to within the window is closed.
func (a *Adapter) Reachable(ctx context.Context, customerID, account string) (Reach, error) {
	rs, err := a.Windows(ctx, customerID)
	if err != nil {
		return Reach{}, err
	}
	for _, r := range rs {
		if r.Account == account {
			return r, nil
		}
	}
	return Reach{Account: account}, nil
}

// inboundTime is when an inbound happened for the window: WeChat's
// CreateTime, but never later than the store received it.
func inboundTime(ev sessions.Event, in Inbound) time.Time {
	t := ev.Time
	if in.CreateTime > 0 {
		ct := time.Unix(in.CreateTime, 0)
		if t.IsZero() || ct.Before(t) {
			t = ct
		}
	}
	return t
}

func mergeKeys[V any](ms ...map[string]V) map[string]struct{} {
	out := map[string]struct{}{}
	for _, m := range ms {
		for k := range m {
			out[k] = struct{}{}
		}
	}
	return out
}

// current follows merges to the customer that now holds id's timeline.
func (a *Adapter) current(ctx context.Context, id string) (string, error) {
	for range 8 {
		c, err := a.store.Customer(ctx, id)
		if err != nil {
			return "", err
		}
		if c.MergedInto == "" {
			return id, nil
		}
		id = c.MergedInto
	}
	return id, nil
}
