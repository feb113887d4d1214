package inbox

import (
	"testing"

	"github.com/omnigate/omnigate/sessions"
)

// The routing service's offer events name the rep twice (the decision's
// rep_id, the offer's rep); an answer names it once: each is one rep.
func TestRoutedRep(t *testing.T) {
	for payload, want := range map[string]string{
		`{"kind":"offer","rep_id":"alice","rep":"alice"}`: "alice",
		`{"kind":"assign","rep_id":"bob"}`:                "bob",
		`{"rep":"carol","response":"accepted"}`:           "carol",
	} {
		if got := routed(sessions.Event{Kind: sessions.KindOffer, Payload: []byte(payload)}); got != want {
			t.Errorf("routed(%s) = %q, want %q", payload, got, want)
		}
	}
}
