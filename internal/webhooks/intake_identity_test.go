package webhooks

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// TestIntakeUnknownNamespace: an event may name a customer by an OpenID
// only under a configured official account, and by a site user only on a
// configured web site. Anything else is refused with a clear 400, and
// nothing is stored: no customer, no identity, and the webhook-id is
// still free.
func TestIntakeUnknownNamespace(t *testing.T) {
	t.Parallel()
	r := newIntake(t) // wechat account brand-a, site shop
	tests := []struct {
		name string
		id   sessions.Identity
		ref  string
		code int
		want string
	}{
		{"known account", sessions.Identity{Kind: sessions.IdentityWeChatOpenID, Namespace: "brand-a", Value: "oKnown"},
			`{"wechat_openid":{"account":"brand-a","openid":"oKnown"}}`, 200, `"customer_id"`},
		{"unknown account", sessions.Identity{Kind: sessions.IdentityWeChatOpenID, Namespace: "nope", Value: "oNope"},
			`{"wechat_openid":{"account":"nope","openid":"oNope"}}`, 400, `customer.wechat_openid.account: no official account \"nope\"`},
		{"known site", sessions.Identity{Kind: sessions.IdentitySiteUser, Namespace: "shop", Value: "u-1"},
			`{"site_user":{"site":"shop","id":"u-1"}}`, 200, `"customer_id"`},
		{"unknown site", sessions.Identity{Kind: sessions.IdentitySiteUser, Namespace: "elsewhere", Value: "u-2"},
			`{"site_user":{"site":"elsewhere","id":"u-2"}}`, 400, `customer.site_user.site: no site \"elsewhere\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			webhookID := "wh_ns_" + strings.ReplaceAll(tt.name, " ", "_")
			w := r.post(webhookID, `{"customer":`+tt.ref+`,"type":"coupon.used"}`, time.Now(), nil)
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("%d %s, want %d containing %s", w.Code, w.Body, tt.code, tt.want)
			}
			_, err := r.store.IdentityOwner(context.Background(), tt.id)
			if stored := err == nil; stored != (tt.code == 200) {
				t.Fatalf("answered %d, identity stored: %v (%v)", w.Code, stored, err)
			}
			if tt.code == 200 {
				return
			}
			if !errors.Is(err, sessions.ErrNotFound) {
				t.Fatal(err)
			}
			// The refused request used nothing up: its webhook-id still
			// takes another event.
			w = r.post(webhookID, `{"customer":{"email":"x@example.com"},"type":"coupon.used"}`, time.Now(), nil)
			if w.Code != http.StatusOK || w.Header().Get("Omnigate-Duplicate") != "" {
				t.Fatalf("the refused webhook-id then: %d %v %s", w.Code, w.Header(), w.Body)
			}
		})
	}
}
