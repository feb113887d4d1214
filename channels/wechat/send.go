package wechat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"time"

	"github.com/silenceper/wechat/v2/officialaccount/customerservice"
	"github.com/silenceper/wechat/v2/officialaccount/message"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/sessions"
)

// maxImageBytes is WeChat's limit for a temporary image.
const maxImageBytes = 10 << 20

// typingLasts is how long WeChat shows "typing" after one Typing command;
// a second one within it is refused, so it is not sent.
const typingLasts = 15 * time.Second

// Send delivers a rep's message as customer-service messages (客服消息):
// the text, then each image (uploaded as temporary media), from the
// account the customer last wrote to among those whose 48-hour window is
// open. With no open window it sends nothing and returns an
// *UnreachableError (ErrWindowClosed or ErrUnsubscribed) naming the next
// best channel; WeChat's own 45015 and 43004 give the same. A customer
// without an OpenID of a configured account gets channels.ErrNoAdapter.
//
// Text goes before images; if an image fails after the text went out,
// the error says so and the text is not sent again by a retry of the
// caller's, which records one delivery status per message.
func (a *Adapter) Send(ctx context.Context, o channels.Outbound) (channels.Receipt, error) {
	if a.closed.Load() {
		return channels.Receipt{}, ErrClosed
	}
	if o.Message.Text == "" && len(o.Message.Media) == 0 {
		return channels.Receipt{}, fmt.Errorf("%w: wechat: empty message", sessions.ErrInvalid)
	}
	for _, m := range o.Message.Media {
		if m.Type != "image" || a.media == nil {
			a.met.sends.WithLabelValues(resultFailed).Inc()
			return channels.Receipt{}, fmt.Errorf("%w: %s attachment (only images, and only when the gateway provides them)", ErrNoMedia, m.Type)
		}
	}
	acct, openID, err := a.route(ctx, o.CustomerID, o.Identities)
	if err != nil {
		a.countSend(err)
		return channels.Receipt{}, err
	}
	var receipt channels.Receipt
	if o.Message.Text != "" {
		id, err := acct.api.sendMessage(ctx, message.NewCustomerTextMessage(openID, o.Message.Text))
		if err != nil {
			return receipt, a.sendFailed(o, acct, err)
		}
		receipt.ID = id
	}
	for i, m := range o.Message.Media {
		id, err := a.sendImage(ctx, acct, openID, m)
		if err != nil {
			if i > 0 || o.Message.Text != "" {
				err = fmt.Errorf("%w (the parts before this one were delivered)", err)
			}
			return receipt, a.sendFailed(o, acct, err)
		}
		if receipt.ID == "" {
			receipt.ID = id
		}
	}
	a.met.sends.WithLabelValues(resultSent).Inc()
	a.clearTyping(acct.Key, openID) // a message ends WeChat's typing state
	return receipt, nil
}

func (a *Adapter) sendImage(ctx context.Context, acct *account, openID string, m sessions.Media) (string, error) {
	rc, err := a.media(ctx, m)
	if err != nil {
		return "", fmt.Errorf("wechat: opening image: %w", err)
	}
	defer rc.Close()
	img, err := io.ReadAll(io.LimitReader(rc, maxImageBytes+1))
	if err != nil {
		return "", fmt.Errorf("wechat: reading image: %w", err)
	}
	if len(img) > maxImageBytes {
		return "", fmt.Errorf("%w: image larger than 10 MiB", ErrNoMedia)
	}
	name := m.Name
	if name == "" {
		name = path.Base(m.URL)
	}
	if name == "" || name == "." || name == "/" {
		name = "image.jpg"
	}
	mediaID, err := acct.api.uploadImage(ctx, name, img)
	if err != nil {
		return "", err
	}
	return acct.api.sendMessage(ctx, message.NewCustomerImgMessage(openID, mediaID))
}

// sendFailed completes an error from the API: WeChat's "window closed"
// and "unsubscribed" get the account and the next best channel.
func (a *Adapter) sendFailed(o channels.Outbound, acct *account, err error) error {
	var ue *UnreachableError
	if errors.As(err, &ue) {
		ue.Account, ue.Next = acct.Key, nextChannel(o.Identities)
	}
	a.countSend(err)
	a.log.LogAttrs(context.Background(), slog.LevelWarn, "wechat: send failed", slog.String("account", acct.Key),
		slog.String("customer_id", o.CustomerID), slog.Any("error", err))
	return fmt.Errorf("wechat: send to customer %s: %w", o.CustomerID, err)
}

func (a *Adapter) countSend(err error) {
	r := resultFailed
	switch {
	case errors.Is(err, ErrWindowClosed):
		r = resultClosed
	case errors.Is(err, ErrUnsubscribed):
		r = resultUnsub
	case errors.Is(err, ErrTooManyMessages):
		r = resultTooMany
	}
	a.met.sends.WithLabelValues(r).Inc()
}

// CanSend returns the error Send would return without calling WeChat
// (ErrNoAdapter, or an *UnreachableError for a closed window or an
// unfollowed account), or nil when Send would try (channels.Adapter).
func (a *Adapter) CanSend(ctx context.Context, customerID string, ids []sessions.Identity) error {
	if a.closed.Load() {
		return ErrClosed
	}
	_, _, err := a.route(ctx, customerID, ids)
	return err
}

// route picks the account and OpenID to reach the customer: among the
// customer's OpenIDs of configured accounts, the account with an open
// window the customer wrote to last.
func (a *Adapter) route(ctx context.Context, customerID string, ids []sessions.Identity) (*account, string, error) {
	openIDs := map[string]string{}
	for _, id := range ids {
		if id.Kind == sessions.IdentityWeChatOpenID && a.accounts[id.Namespace] != nil {
			openIDs[id.Namespace] = id.Value
		}
	}
	if len(openIDs) == 0 {
		return nil, "", fmt.Errorf("wechat: customer %s has no OpenID of a configured official account: %w", customerID, channels.ErrNoAdapter)
	}
	reaches, err := a.Windows(ctx, customerID)
	if err != nil {
		return nil, "", fmt.Errorf("wechat: reading the window of customer %s: %w", customerID, err)
	}
	for _, r := range reaches {
		if oid, ok := openIDs[r.Account]; ok && r.Open {
			return a.accounts[r.Account], oid, nil
		}
	}
	// Closed everywhere. Say where and when the customer last wrote, which
	// may be long before the window: read further back for that.
	ue := &UnreachableError{Reason: ErrWindowClosed, Next: nextChannel(ids)}
	if older, err := a.windows(ctx, customerID, true); err == nil {
		reaches = older
	}
	for _, r := range reaches {
		if _, ok := openIDs[r.Account]; ok { // the first is the one last written to
			ue.Account, ue.LastInbound = r.Account, r.LastInbound
			if r.Unsubscribed {
				ue.Reason = ErrUnsubscribed
			}
			break
		}
	}
	return nil, "", fmt.Errorf("wechat: customer %s: %w", customerID, ue)
}

// nextChannel is where to reach a customer WeChat can't: SMS when a phone
// number is known, else the web chat widget they used, else nothing.
func nextChannel(ids []sessions.Identity) string {
	next := ""
	for _, id := range ids {
		switch id.Kind {
		case sessions.IdentityPhone:
			return sessions.ChannelSMS
		case sessions.IdentityVisitor, sessions.IdentitySiteUser:
			next = sessions.ChannelWebchat
		}
	}
	return next
}

// SetTyping shows the customer that a rep is typing (on) or stops
// showing it (off), from the account replies would go out from. WeChat
// allows it only within the window and shortly after the customer wrote,
// shows it for 15 seconds, and refuses a repeat within them, so repeats
// within 15 seconds are not sent and the inbox may call this on every
// keystroke burst. Errors are only worth a debug log: typing is a hint.
func (a *Adapter) SetTyping(ctx context.Context, customerID string, ids []sessions.Identity, on bool) error {
	if a.closed.Load() {
		return ErrClosed
	}
	acct, openID, err := a.route(ctx, customerID, ids)
	if err != nil {
		return err
	}
	k := acct.Key + "|" + openID
	now := a.now()
	a.mu.Lock()
	last, recent := a.typingAt[k]
	recent = recent && now.Sub(last) < typingLasts
	switch {
	case on && recent, !on && !recent:
		a.mu.Unlock()
		return nil
	case on:
		if len(a.typingAt) > 10000 {
			clear(a.typingAt)
		}
		a.typingAt[k] = now
	default:
		delete(a.typingAt, k)
	}
	a.mu.Unlock()
	cmd := customerservice.Typing
	if !on {
		cmd = customerservice.CancelTyping
	}
	if err := acct.api.typing(ctx, openID, string(cmd)); err != nil {
		if on {
			a.clearTyping(acct.Key, openID)
		}
		return fmt.Errorf("wechat: typing for customer %s: %w", customerID, err)
	}
	return nil
}

func (a *Adapter) clearTyping(account, openID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.typingAt, account+"|"+openID)
}
