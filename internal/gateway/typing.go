package gateway

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/omnigate/omnigate/channels/webchat"
	"github.com/omnigate/omnigate/channels/wechat"
	"github.com/omnigate/omnigate/sessions"
)

// typingTail bounds how far back the forwarder looks for the channel the
// customer last wrote on.
const typingTail = 50

// wechatTyping forwards reps' typing (published by the inbox on the shared
// typing channel) to WeChat, for customers whose last message came from
// WeChat; the adapter itself refuses outside the 48-hour window and
// suppresses repeats. Typing is a hint: a full queue drops signals and
// errors are debug-logged.
//
// Typing subscribers must return at once, so signals go through a small
// queue to one worker goroutine.
type wechatTyping struct {
	store  sessions.Store
	wechat *wechat.Adapter
	log    *slog.Logger

	queue       chan webchat.TypingSignal
	unsubscribe func()
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

func startWeChatTyping(t webchat.Typing, store sessions.Store, a *wechat.Adapter, log *slog.Logger) *wechatTyping {
	w := &wechatTyping{store: store, wechat: a, log: log, queue: make(chan webchat.TypingSignal, 64)}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.unsubscribe = t.Subscribe("", func(s webchat.TypingSignal) {
		if !strings.HasPrefix(s.From, "rep:") {
			return
		}
		select {
		case w.queue <- s:
		default: // full: the next repeat of the signal will do
		}
	})
	w.wg.Add(1)
	go w.run()
	return w
}

// close stops forwarding and waits for the signal in flight.
func (w *wechatTyping) close() {
	w.unsubscribe()
	w.cancel()
	w.wg.Wait()
}

func (w *wechatTyping) run() {
	defer w.wg.Done()
	for {
		select {
		case <-w.ctx.Done():
			return
		case s := <-w.queue:
			w.forward(s)
		}
	}
}

func (w *wechatTyping) forward(s webchat.TypingSignal) {
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	ch, err := lastInboundChannel(ctx, w.store, s.CustomerID)
	if err != nil || ch != sessions.ChannelWeChat {
		return
	}
	ids, err := w.store.Identities(ctx, s.CustomerID)
	if err == nil {
		err = w.wechat.SetTyping(ctx, s.CustomerID, ids, s.On)
	}
	if err != nil {
		w.log.Debug("wechat typing not sent", slog.String("customer", s.CustomerID), slog.Any("error", err))
	}
}

// lastInboundChannel is the channel of the customer's newest message_in
// among their last typingTail events; "" when there is none.
func lastInboundChannel(ctx context.Context, store sessions.Store, customerID string) (string, error) {
	last, err := store.LastSeq(ctx, customerID)
	if err != nil {
		return "", err
	}
	evs, err := store.Timeline(ctx, customerID, last-min(last, typingTail), typingTail)
	if err != nil {
		return "", err
	}
	for _, ev := range slices.Backward(evs) {
		if ev.Kind == sessions.KindMessageIn {
			return ev.Channel, nil
		}
	}
	return "", nil
}
