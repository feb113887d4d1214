package kpi

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/omnigate/omnigate/router"
	"github.com/omnigate/omnigate/sessions"
)

// BenchmarkHandle is the engine's cost per event of a busy day's feed:
// 10,000 open chats, most events a customer's message on a conversation
// already counted, one in 20 an assignment, a reply or a resolution. At
// 2,000 messages a second the KPIs cost 2,000 × this per second of one
// core (cmd/kpiload measures the whole gateway with them on and off).
func BenchmarkHandle(b *testing.B) {
	e, err := New(Config{}, Options{Store: NewMemoryStore(), Feed: sessions.NewMemoryStore(),
		Router: router.Config{Queues: []router.QueueConfig{{Name: "chat", Channels: []string{"webchat"}}}}})
	if err != nil {
		b.Fatal(err)
	}
	const convs = 10000
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	msg := json.RawMessage(`{"text":"hello"}`)
	mk := func(i int) sessions.Event {
		conv := i % convs
		ev := sessions.Event{CustomerID: fmt.Sprint("cus", conv), ConversationID: fmt.Sprint("cnv", conv),
			Time: t0.Add(time.Duration(i) * time.Millisecond), Channel: "webchat", Kind: sessions.KindMessageIn,
			Author: "customer", Payload: msg}
		switch i % 20 {
		case 5:
			d, _ := json.Marshal(router.Decision{Kind: router.KindAssign, Queue: "chat", RepID: fmt.Sprint("rep", conv%200), WaitedMS: int64(i % 30000)})
			ev.Kind, ev.Author, ev.Channel, ev.Payload = sessions.KindAssignment, sessions.AuthorRouter, sessions.ChannelSystem, d
		case 10:
			ev.Kind, ev.Author = sessions.KindMessageOut, fmt.Sprint("rep:rep", conv%200)
		case 15:
			ev.Kind, ev.Author, ev.Channel = sessions.KindStatusChange, fmt.Sprint("rep:rep", conv%200), sessions.ChannelSystem
			ev.Payload = json.RawMessage(`{"status":"resolved"}`)
		}
		return ev
	}
	all := make([]sessions.Event, b.N)
	for i := range all {
		all[i] = mk(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 256 {
		e.handleBatch(context.Background(), all[i:min(i+256, b.N)])
		if i%2048 == 0 {
			_ = e.Flush(context.Background())
		}
	}
}
