package inbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/omnigate/omnigate/internal/auth"
	"github.com/omnigate/omnigate/internal/inbox"
	"github.com/omnigate/omnigate/sessions"
)

// BenchmarkFeedBurst opens b.N conversations (status change, a message,
// and for half an assignment to one of the reps) at 1,000 a second,
// twice issue 15's 5,000 in 10 s, while 200 rep sockets follow the
// unassigned view over loopback, and reports what each socket got and
// how many were cut off. It measures the hub, not the store's
// durability: the store is in memory.
//
//	go test -run '^$' -bench FeedBurst -benchtime 5000x ./internal/inbox/
func BenchmarkFeedBurst(b *testing.B) {
	const reps = 200
	cfg := authConfig
	for i := range reps {
		cfg.Reps = append(cfg.Reps, auth.Rep{ID: repID(i), Role: auth.RoleRep, Token: "bench-token-0123456789-" + repID(i)})
	}
	store := sessions.NewMemoryStore()
	defer store.Close()
	hub, err := inbox.New(inbox.Config{}, inbox.Options{Store: store, Auth: auth.New(cfg)})
	if err != nil {
		b.Fatal(err)
	}
	defer hub.Close()
	mux := http.NewServeMux()
	mux.Handle("GET /inbox/ws", hub)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	h := struct {
		store *sessions.MemoryStore
		hub   *inbox.Hub
		srv   *httptest.Server
	}{store, hub, srv}
	var frames, bytes, pongs, closed, views atomic.Int64
	socks := make([]*websocket.Conn, reps)
	for i := range reps {
		ws, _, err := websocket.DefaultDialer.Dial("ws"+h.srv.URL[len("http"):]+"/inbox/ws", nil)
		if err != nil {
			b.Fatal(err)
		}
		socks[i] = ws
		for _, f := range []string{`{"type":"auth","token":"bench-token-0123456789-` + repID(i) + `"}`, `{"type":"view","views":["unassigned"]}`} {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
				b.Fatal(err)
			}
		}
		go func() {
			for {
				_, m, err := ws.ReadMessage()
				if err != nil {
					closed.Add(1)
					return
				}
				switch {
				case strings.Contains(string(m), `"type":"pong"`):
					pongs.Add(1)
					continue
				case strings.Contains(string(m), `"type":"views"`):
					views.Add(1)
					continue
				}
				frames.Add(1)
				bytes.Add(int64(len(m)))
			}
		}()
	}
	defer func() {
		for _, ws := range socks {
			ws.Close()
		}
	}()
	for views.Load() < reps { // every socket follows the view
		time.Sleep(time.Millisecond)
	}
	ctx := context.Background()
	var last []sessions.Event
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		c, _, err := h.store.ResolveCustomer(ctx, sessions.Identity{Kind: sessions.IdentityVisitor, Namespace: "b", Value: sessions.NewID("v")}, sessions.Customer{})
		if err != nil {
			b.Fatal(err)
		}
		cv, _, err := h.store.OpenConversation(ctx, c.ID, "", sessions.ChannelWebchat)
		if err != nil {
			b.Fatal(err)
		}
		ev, _, err := h.store.Append(ctx, sessions.Event{CustomerID: c.ID, ConversationID: cv.ID, Kind: sessions.KindMessageIn,
			Channel: sessions.ChannelWebchat, Author: "customer", Payload: json.RawMessage(`{"text":"hello"}`)})
		if err != nil {
			b.Fatal(err)
		}
		if i%2 == 0 { // half are routed at once, half wait
			to := repID(i % reps)
			if _, ev, err = h.store.UpdateConversation(ctx, cv.ID, sessions.ConversationUpdate{Assignee: &to, Event: sessions.Event{Author: "system"}}); err != nil {
				b.Fatal(err)
			}
		}
		last = append(last, ev)
	}
	for _, ev := range last {
		if err := h.hub.WaitHandled(ctx, ev.CustomerID, ev.Seq); err != nil {
			b.Fatal(err)
		}
	}
	h.hub.Flush()
	for _, ws := range socks { // what was queued before the ping comes before its pong
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
			b.Fatal(err)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); pongs.Load()+closed.Load() < reps; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d pongs, %d sockets closed, of %d", pongs.Load(), closed.Load(), reps)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(closed.Load()), "cut-off")
	b.ReportMetric(float64(frames.Load())/reps, "frames/socket")
	b.ReportMetric(float64(bytes.Load())/reps/float64(b.N), "bytes/socket/conv")
	b.ReportMetric(float64(h.hub.MaxQueueDepth(false)), "max-queue")
}

func repID(i int) string {
	return "r" + string(rune('a'+i/26%26)) + string(rune('a'+i%26)) + string(rune('0'+i/676))
}
