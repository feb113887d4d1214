package sessions

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// IdentityKind says what an identity value is.
type IdentityKind string

const (
	// IdentityVisitor is the widget's random visitor id, kept in the browser.
	IdentityVisitor IdentityKind = "visitor"
	// IdentitySiteUser is the integrator's own user id, verified when signed
	// with the site's secret. Namespace is the site id.
	IdentitySiteUser IdentityKind = "site_user"
	// IdentityPhone is a phone number in E.164.
	IdentityPhone IdentityKind = "phone"
	// IdentityEmail is an email address, lower-cased.
	IdentityEmail IdentityKind = "email"
	// IdentityWeChatOpenID is a WeChat OpenID; Namespace is the official
	// account key, because OpenIDs are per account.
	IdentityWeChatOpenID IdentityKind = "wechat_openid"
	// IdentityWeChatUnionID is the WeChat UnionID shared by the accounts
	// bound to one Open Platform.
	IdentityWeChatUnionID IdentityKind = "wechat_unionid"
)

// Identity is one way to recognise a customer.
type Identity struct {
	Kind IdentityKind `json:"kind"`
	// Namespace scopes Value: the site id for visitors and site users, the
	// official account key for OpenIDs; empty for global kinds.
	Namespace string `json:"namespace,omitempty"`
	Value     string `json:"value"`
	// Verified identities were proven (a signed widget identity, a UnionID
	// from WeChat, a phone number an SMS or call came from). Only verified
	// identities may merge customers.
	Verified   bool      `json:"verified"`
	CustomerID string    `json:"customer_id,omitempty"`
	LinkedAt   time.Time `json:"linked_at"`
}

// Key is the identity's unique index key: kind, namespace and value.
func (i Identity) Key() string {
	return string(i.Kind) + "|" + i.Namespace + "|" + i.Value
}

// Validate checks the kind and that the value is present and sane. A phone
// must already be what NormalizePhone returns (channels normalise what
// customers type; the store only checks).
func (i Identity) Validate() error {
	switch i.Kind {
	case IdentityVisitor, IdentitySiteUser, IdentityWeChatOpenID:
		if i.Namespace == "" {
			return fmt.Errorf("%w: %s identity needs a namespace", ErrInvalid, i.Kind)
		}
	case IdentityPhone:
		if err := CheckPhone(i.Value); err != nil {
			return err
		}
	case IdentityEmail:
		if !strings.Contains(i.Value, "@") || i.Value != strings.ToLower(i.Value) {
			return fmt.Errorf("%w: email must be lower case and contain @", ErrInvalid)
		}
	case IdentityWeChatUnionID:
	default:
		return fmt.Errorf("%w: unknown identity kind %q", ErrInvalid, i.Kind)
	}
	if i.Value == "" || len(i.Value) > 256 || strings.ContainsAny(i.Value, "|\n\r") {
		return fmt.Errorf("%w: %s identity value is empty, too long or has a control character", ErrInvalid, i.Kind)
	}
	if len(i.Namespace) > 128 || strings.ContainsAny(i.Namespace, "|\n\r") {
		return fmt.Errorf("%w: identity namespace is too long or has a control character", ErrInvalid)
	}
	return nil
}

// SortIdentities orders identities by kind, namespace and value, so every
// store lists them the same way.
func SortIdentities(ids []Identity) {
	slices.SortFunc(ids, func(a, b Identity) int { return strings.Compare(a.Key(), b.Key()) })
}
