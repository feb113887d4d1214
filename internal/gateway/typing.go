package gateway

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/channels/webchat"
	"github.com/omnigate/omnigate/channels/wechat"
	"github.com/omnigate/omnigate/sessions"
)

// wechatTyping forwards reps' typing (published by the inbox on the shared
// typing channel) to WeChat, for customers a message would go to on WeChat
// (channels.ReplyChannel, the Sender's rule); the adapter itself refuses
// outside the 48-hour window and suppresses repeats. Typing is a hint: a
// full queue drops signals and errors are debug-logged.
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
	// Signals name no conversation: the customer's last message anywhere.
	ch, err := channels.ReplyChannel(ctx, w.store, s.CustomerID, "", "")
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
