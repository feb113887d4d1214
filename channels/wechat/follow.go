package wechat

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/sessions"
)

// Sources of the do-not-contact entries this package writes
// (contact.Suppression.Source).
const SourceUnsubscribe = "wechat_unsubscribe"

// follow keeps the do-not-contact list in step with a follow or an
// unfollow: an unsubscribe event lists "<account>:<openid>" on channel
// wechat (the customer said no more from this account), a subscribe takes
// it off. Both are idempotent, so WeChat's retry of a callback whose
// first delivery was stored but not answered finishes the change. Other
// messages change nothing. Without Options.Suppressions there is no list.
func (a *Adapter) follow(ctx context.Context, account, openID, event string, at time.Time) error {
	if a.sups == nil || (event != eventSubscribe && event != eventUnsubscribe) {
		return nil
	}
	value := account + ":" + openID
	if event == eventUnsubscribe {
		err := a.sups.Add(ctx, contact.Suppression{Kind: contact.KindWeChatOpenID, Value: value,
			Channel: sessions.ChannelWeChat, Source: SourceUnsubscribe, Reason: "unfollowed the official account", At: at})
		if err != nil {
			return fmt.Errorf("wechat: listing an unfollow: %w", err)
		}
		return nil
	}
	err := a.sups.Remove(ctx, contact.KindWeChatOpenID, value, sessions.ChannelWeChat, "")
	if err != nil && !errors.Is(err, contact.ErrNoSuppression) {
		return fmt.Errorf("wechat: unlisting a follow: %w", err)
	}
	return nil
}
