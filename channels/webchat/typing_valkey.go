package webchat

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/valkey-io/valkey-go"
)

// ValkeyTyping is the cluster's Typing: every signal is published on one
// Valkey pub/sub channel, every node subscribes to it once and hands what
// arrives to its own subscribers (a MemoryTyping). A node's own signals
// come back the same way, so each subscriber gets each signal once, from
// whichever node it was typed on. Signals published while a node's
// subscription is down are lost to that node, which Typing allows: "on"
// is repeated every few seconds while someone types.
type ValkeyTyping struct {
	client  valkey.Client
	channel string
	local   *MemoryTyping
	log     *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{}
}

var _ Typing = (*ValkeyTyping)(nil)

// NewValkeyTyping subscribes to channel through client and returns at
// once; Close stops it. The client stays the caller's.
func NewValkeyTyping(client valkey.Client, channel string, log *slog.Logger) *ValkeyTyping {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &ValkeyTyping{client: client, channel: channel, local: NewMemoryTyping(), log: log,
		cancel: cancel, done: make(chan struct{})}
	go t.run(ctx)
	return t
}

// run holds the subscription, resubscribing after a lost connection.
func (t *ValkeyTyping) run(ctx context.Context) {
	defer close(t.done)
	delay := 100 * time.Millisecond
	for {
		start := time.Now()
		err := t.client.Receive(ctx, t.client.B().Subscribe().Channel(t.channel).Build(), t.deliver)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			delay = 100 * time.Millisecond
		}
		t.log.Warn("webchat: typing subscription lost; resubscribing", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (t *ValkeyTyping) deliver(m valkey.PubSubMessage) {
	var s TypingSignal
	if err := json.Unmarshal([]byte(m.Message), &s); err != nil || s.CustomerID == "" {
		return // not ours; an indicator is not worth a log line per message
	}
	_ = t.local.Publish(context.Background(), s)
}

// Publish sends s to every node's subscribers.
func (t *ValkeyTyping) Publish(ctx context.Context, s TypingSignal) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return t.client.Do(ctx, t.client.B().Publish().Channel(t.channel).Message(string(b)).Build()).Error()
}

// Subscribe registers fn on this node; see Typing.
func (t *ValkeyTyping) Subscribe(customerID string, fn func(TypingSignal)) func() {
	return t.local.Subscribe(customerID, fn)
}

// Close ends the subscription.
func (t *ValkeyTyping) Close() {
	t.cancel()
	<-t.done
}
