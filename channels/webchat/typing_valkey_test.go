package webchat

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/omnigate/omnigate/internal/testredis"
)

// TestValkeyTypingAcrossNodes: two nodes, each with its own client and
// subscription, as two gateways would have. A signal typed on one node
// reaches the customer's subscribers on both, once each, and the
// every-customer subscribers; another customer's subscribers get nothing;
// a cancelled subscriber gets nothing more.
func TestValkeyTypingAcrossNodes(t *testing.T) {
	addr := testredis.Addr(t)
	channel := "test:typing:" + t.Name() + time.Now().Format("150405.000000000")
	node := func() *ValkeyTyping {
		c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
		if err != nil {
			t.Fatal(err)
		}
		tp := NewValkeyTyping(c, channel, nil)
		t.Cleanup(func() { tp.Close(); c.Close() })
		return tp
	}
	a, b := node(), node()

	var mu sync.Mutex
	got := map[string][]TypingSignal{}
	record := func(name string) func(TypingSignal) {
		return func(s TypingSignal) {
			mu.Lock()
			got[name] = append(got[name], s)
			mu.Unlock()
		}
	}
	count := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(got[name])
	}
	a.Subscribe("cus_1", record("a-cus1"))
	cancelB := b.Subscribe("cus_1", record("b-cus1"))
	b.Subscribe("", record("b-all"))
	b.Subscribe("cus_2", record("b-cus2"))

	// Subscriptions are confirmed asynchronously: a probe on another
	// customer is repeated until both nodes hear it, as a typist repeats
	// "on".
	a.Subscribe("probe", record("a-probe"))
	b.Subscribe("probe", record("b-probe"))
	deadline := time.Now().Add(10 * time.Second)
	for count("a-probe") == 0 || count("b-probe") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the subscriptions never came up")
		}
		if err := a.Publish(context.Background(), TypingSignal{CustomerID: "probe", From: "customer", On: true}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	want := TypingSignal{CustomerID: "cus_1", From: "rep:alice", RepName: "Alice", On: true}
	if err := a.Publish(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	for count("a-cus1") < 1 || count("b-cus1") < 1 || count("b-all") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("signal not delivered: %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancelB()
	if err := b.Publish(context.Background(), TypingSignal{CustomerID: "cus_1", From: "customer", On: false}); err != nil {
		t.Fatal(err)
	}
	for count("a-cus1") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("second signal not delivered on a: %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got["a-cus1"]) != 2 || got["a-cus1"][0] != want || got["a-cus1"][1].On {
		t.Errorf("node a, cus_1: %+v", got["a-cus1"])
	}
	if len(got["b-cus1"]) != 1 || got["b-cus1"][0] != want {
		t.Errorf("node b, cus_1 (cancelled after the first): %+v", got["b-cus1"])
	}
	heard := false
	for _, s := range got["b-all"] {
		heard = heard || s == want
	}
	if !heard {
		t.Errorf("node b, every customer, did not hear cus_1: %+v", got["b-all"])
	}
	if len(got["b-cus2"]) != 0 {
		t.Errorf("node b, cus_2 heard another customer: %+v", got["b-cus2"])
	}
}
