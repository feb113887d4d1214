package wechat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/silenceper/wechat/v2/officialaccount/message"

	"github.com/omnigate/omnigate/sessions"
	"github.com/omnigate/omnigate/sessions/redact"
)

// evidenceUnionID is the merge evidence of a shared UnionID: WeChat itself
// says two OpenIDs of accounts bound to one Open Platform are one person.
const evidenceUnionID = "wechat_unionid"

// unionRetryAfter is how long a failed UnionID lookup waits before the
// OpenID's next message tries again.
const unionRetryAfter = 10 * time.Minute

// afterStore links the sender's UnionID once the message is safely
// stored. A UnionID in the message (some callbacks carry one) is linked at
// once, within the request's store deadline. Otherwise, for a new OpenID,
// a follow, or an OpenID whose last lookup failed, the user-info API is
// asked in the background, so the answer to WeChat never waits on
// WeChat's API. Failures here cost nothing but the merge, which the next
// lookup does: the message is stored either way.
func (a *Adapter) afterStore(ctx context.Context, acct *account, m *message.MixMessage, p Payload, res stored) {
	openID := string(m.FromUserName)
	if m.UnionID != "" {
		if err := a.linkUnion(ctx, acct.Key, openID, m.UnionID); err != nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "wechat: linking UnionID failed", slog.String("account", acct.Key),
				slog.String("openid", redact.OpenID(openID)), slog.Any("error", err))
		}
		return
	}
	if !a.wantLookup(acct.Key, openID, res.created || p.WeChat.Event == eventSubscribe) {
		return
	}
	select {
	case a.lookups <- struct{}{}:
	default:
		a.lookupFailed(acct.Key, openID) // busy (a follow wave): the next message tries
		return
	}
	if !a.background() {
		<-a.lookups
		return
	}
	go func() {
		defer a.wg.Done()
		defer func() { <-a.lookups }()
		ctx, cancel := context.WithTimeout(a.ctx, a.cfg.APITimeout+a.cfg.StoreTimeout)
		defer cancel()
		if err := a.lookupUnion(ctx, acct, openID); err != nil {
			a.lookupFailed(acct.Key, openID)
			a.log.LogAttrs(ctx, slog.LevelWarn, "wechat: UnionID lookup failed", slog.String("account", acct.Key),
				slog.String("openid", redact.OpenID(openID)), slog.Any("error", err))
		}
	}()
}

// wantLookup reports whether to ask the user-info API about an OpenID:
// always when asked to (new OpenID, follow), else only when an earlier
// lookup failed and its retry time has come.
func (a *Adapter) wantLookup(account, openID string, always bool) bool {
	k := account + "|" + openID
	a.mu.Lock()
	defer a.mu.Unlock()
	at, failed := a.unionRetry[k]
	if always || (failed && !a.now().Before(at)) {
		delete(a.unionRetry, k)
		return true
	}
	return false
}

func (a *Adapter) lookupFailed(account, openID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.unionRetry) > 10000 {
		clear(a.unionRetry) // bounded: forgetting only delays a merge
	}
	a.unionRetry[account+"|"+openID] = a.now().Add(unionRetryAfter)
}

// lookupUnion asks WeChat for the OpenID's UnionID and links it. An
// account not bound to an Open Platform has none: nothing to do.
func (a *Adapter) lookupUnion(ctx context.Context, acct *account, openID string) error {
	info, err := acct.api.userInfo(ctx, openID)
	if err != nil {
		return err
	}
	if info.UnionID == "" {
		return nil
	}
	return a.linkUnion(ctx, acct.Key, openID, info.UnionID)
}

// linkUnion makes the customer of the OpenID and the customer of the
// UnionID one: it links the UnionID to the OpenID's customer when no one
// has it, or merges the OpenID's customer into the UnionID's (evidence
// "wechat_unionid", recorded on the timeline by the store), so one person
// across the matrix is one customer with one open conversation. A
// customer that already has another UnionID is left alone: that is two
// people, whatever linked them.
func (a *Adapter) linkUnion(ctx context.Context, account, openID, unionID string) error {
	if len(unionID) > 128 {
		return fmt.Errorf("wechat: UnionID longer than 128 bytes")
	}
	oid := openIDIdentity(account, openID)
	uid := sessions.Identity{Kind: sessions.IdentityWeChatUnionID, Value: unionID, Verified: true}
	var err error
	for range 4 {
		var cust, owner string
		if cust, err = identityOwner(ctx, a.store, oid); err != nil || cust == "" {
			return err
		}
		if owner, err = identityOwner(ctx, a.store, uid); err != nil {
			return err
		}
		if owner == cust {
			return nil
		}
		var other bool
		if other, err = hasOtherUnionID(ctx, a.store, cust, unionID); err != nil {
			return err
		}
		if other {
			a.log.LogAttrs(ctx, slog.LevelWarn, "wechat: customer already has another UnionID; not merged",
				slog.String("account", account), slog.String("customer_id", cust))
			return nil
		}
		if owner == "" {
			_, _, err = a.store.LinkIdentity(ctx, cust, uid, sessions.ChannelSystem)
		} else {
			_, err = a.store.Merge(ctx, owner, cust, evidenceUnionID, sessions.ChannelSystem)
			if err == nil {
				a.log.LogAttrs(ctx, slog.LevelInfo, "wechat: customers merged on UnionID",
					slog.String("account", account), slog.String("into", owner), slog.String("from", cust))
			}
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, sessions.ErrIdentityTaken) && !errors.Is(err, sessions.ErrMerged) && !errors.Is(err, sessions.ErrNotFound) {
			return err
		}
		// Someone linked or merged in between: look again.
	}
	return err
}

// identityOwner is the customer that owns id, "" when no one does.
func identityOwner(ctx context.Context, st sessions.Store, id sessions.Identity) (string, error) {
	c, err := st.IdentityOwner(ctx, id)
	if errors.Is(err, sessions.ErrNotFound) {
		return "", nil
	}
	return c, err
}

func hasOtherUnionID(ctx context.Context, st sessions.Store, customerID, unionID string) (bool, error) {
	ids, err := st.Identities(ctx, customerID)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if id.Kind == sessions.IdentityWeChatUnionID && id.Value != unionID {
			return true, nil
		}
	}
	return false, nil
}
