package webchat

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/omnigate/omnigate/sessions"
)

// Sign returns the user_hash a site's back end puts in the widget tag for
// userID, valid until expires: hex HMAC-SHA256 of "user_id|expires"
// (expires in Unix seconds), keyed with the site's secret. The separator
// is '|' because no usable user id contains one (the store refuses it in
// an identity), so no signature of this form is also a signature of the
// deprecated form (SignForever) for another user id.
func Sign(secret, userID string, expires time.Time) string {
	return sign(secret, signedMessage(userID, expires.Unix()))
}

// SignForever returns the deprecated user_hash that never expires: hex
// HMAC-SHA256 of the user id alone. Sites still using it are accepted
// unless Site.RequireUserExpires is set.
func SignForever(secret, userID string) string { return sign(secret, userID) }

func signedMessage(userID string, expires int64) string {
	return userID + "|" + strconv.FormatInt(expires, 10)
}

func sign(secret, msg string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(msg))
	return hex.EncodeToString(mac.Sum(nil))
}

// signedUser is a user identity as the page presents it.
type signedUser struct {
	id   string
	hash string
	// expires is Unix seconds; 0 means the deprecated form without one.
	expires int64
}

// Why a signed identity was refused, for the log line (never the user id:
// it may be an email).
const (
	refusedNoSecret = "site has no secret"
	refusedNoUser   = "user_hash without user_id"
	refusedNoExpiry = "user_hash without user_expires, which the site requires"
	refusedExpired  = "signature expired"
	refusedBadHash  = "hash mismatch"
)

// verifyUser checks u's signature in constant time and its expiry against
// now. It returns "" when u verifies, else why not. A site without a
// secret verifies nothing.
func verifyUser(s Site, u signedUser, now time.Time) string {
	switch {
	case s.Secret == "":
		return refusedNoSecret
	case u.id == "":
		return refusedNoUser
	case u.expires == 0 && s.RequireUserExpires:
		return refusedNoExpiry
	}
	got, err := hex.DecodeString(u.hash)
	if err != nil || len(got) != sha256.Size {
		return refusedBadHash
	}
	msg := u.id
	if u.expires != 0 {
		msg = signedMessage(u.id, u.expires)
	}
	mac := hmac.New(sha256.New, []byte(s.Secret))
	mac.Write([]byte(msg))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return refusedBadHash
	}
	// Checked after the signature, so an expiry nobody signed is never
	// reported as merely expired.
	if u.expires != 0 && !now.Before(time.Unix(u.expires, 0)) {
		return refusedExpired
	}
	return ""
}

// evidenceVerifiedSiteUser is the merge evidence of a signed widget
// identity.
const evidenceVerifiedSiteUser = "verified_site_user"

// errSignedOnly: every identity an unsigned socket with this visitor id
// could speak for belongs to a customer with a verified site user.
var errSignedOnly = errors.New("webchat: visitor id is bound to signed-in users")

// resolution is who a socket talks for.
type resolution struct {
	customerID string
	// merged is the customer the visitor had before this connection merged
	// it into the site user's; empty when nothing was merged.
	merged string
}

// resolveSigned finds the customer a socket with a verified user id
// speaks for: the site user's customer wins. The visitor id is linked to
// it, or the visitor's own customer is merged into it (a signature from
// the site's back end is evidence that can't be forged). Concurrent first
// contacts and merges elsewhere can move things between two reads; each
// step is retried a few times.
func resolveSigned(ctx context.Context, st sessions.Store, site, visitor, userID string, seed sessions.Customer) (resolution, error) {
	vid := visitorIdentity(site, visitor)
	uid := sessions.Identity{Kind: sessions.IdentitySiteUser, Namespace: site, Value: userID, Verified: true}
	var err error
	for range 4 {
		var r resolution
		r, err = resolveVerified(ctx, st, vid, uid, seed)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, sessions.ErrIdentityTaken) && !errors.Is(err, sessions.ErrMerged) &&
			!errors.Is(err, sessions.ErrNotFound) {
			break
		}
	}
	return resolution{}, fmt.Errorf("webchat: resolve verified user: %w", err)
}

func resolveVerified(ctx context.Context, st sessions.Store, vid, uid sessions.Identity, seed sessions.Customer) (resolution, error) {
	ownerU, err := owner(ctx, st, uid)
	if err != nil {
		return resolution{}, err
	}
	ownerV, err := owner(ctx, st, vid)
	if err != nil {
		return resolution{}, err
	}
	const author = sessions.ChannelSystem
	switch {
	case ownerU == "" && ownerV == "":
		c, _, err := st.ResolveCustomer(ctx, uid, seed)
		if err != nil {
			return resolution{}, err
		}
		_, _, err = st.LinkIdentity(ctx, c.ID, vid, author)
		return resolution{customerID: c.ID}, err
	case ownerU == ownerV:
		return resolution{customerID: ownerU}, nil
	}
	// The visitor id already belongs to a customer with another verified
	// user of this site: two people share the browser (one logged out,
	// the other in). Never merge them; this socket speaks for the signed
	// user, and the visitor id stays where it is.
	if ownerV != "" {
		other, err := hasSiteUser(ctx, st, ownerV, func(id sessions.Identity) bool {
			return id.Namespace == uid.Namespace && id.Value != uid.Value
		})
		if err != nil {
			return resolution{}, err
		}
		if other {
			if ownerU != "" {
				return resolution{customerID: ownerU}, nil
			}
			c, _, err := st.ResolveCustomer(ctx, uid, seed)
			return resolution{customerID: c.ID}, err
		}
	}
	switch {
	case ownerU == "":
		_, _, err := st.LinkIdentity(ctx, ownerV, uid, author)
		return resolution{customerID: ownerV}, err
	case ownerV == "":
		_, _, err := st.LinkIdentity(ctx, ownerU, vid, author)
		return resolution{customerID: ownerU}, err
	default:
		if _, err := st.Merge(ctx, ownerU, ownerV, evidenceVerifiedSiteUser, author); err != nil {
			return resolution{}, err
		}
		return resolution{customerID: ownerU, merged: ownerV}, nil
	}
}

// resolveUnsigned finds the customer a socket without a verified user id
// speaks for. A visitor id alone is never proof of a signed-in user: the
// socket speaks for the first of the visitor's identity and its unsigned
// twin (unsignedIdentity) whose customer has no verified site user, of any
// site. A signed socket links (or merges) the visitor id into its user's
// customer, so after a sign-in the visitor id's own customer is the user's
// and unsigned sockets move to the twin, which signed sockets never use.
//
// With seed nil it only looks: "" means the customer is yet to be made (by
// the visitor's first message or form). With a seed it creates the twin's
// or the visitor's customer as needed. errSignedOnly when both belong to
// signed-in users (a rep merged the twin into one).
func resolveUnsigned(ctx context.Context, st sessions.Store, site, visitor string, seed *sessions.Customer) (string, error) {
	for _, id := range []sessions.Identity{visitorIdentity(site, visitor), unsignedIdentity(site, visitor)} {
		var cid string
		var err error
		if seed != nil {
			var c sessions.Customer
			c, _, err = st.ResolveCustomer(ctx, id, *seed)
			cid = c.ID
		} else {
			cid, err = owner(ctx, st, id)
		}
		if err != nil {
			return "", fmt.Errorf("webchat: resolve visitor: %w", err)
		}
		if cid == "" {
			return "", nil
		}
		signed, err := hasSiteUser(ctx, st, cid, func(sessions.Identity) bool { return true })
		if err != nil {
			return "", fmt.Errorf("webchat: resolve visitor: %w", err)
		}
		if !signed {
			return cid, nil
		}
	}
	return "", errSignedOnly
}

// owner is the customer that owns id, "" when no one does.
func owner(ctx context.Context, st sessions.Store, id sessions.Identity) (string, error) {
	c, err := st.IdentityOwner(ctx, id)
	if errors.Is(err, sessions.ErrNotFound) {
		return "", nil
	}
	return c, err
}

// hasSiteUser reports whether the customer has a verified site user that
// match accepts.
func hasSiteUser(ctx context.Context, st sessions.Store, customerID string, match func(sessions.Identity) bool) (bool, error) {
	ids, err := st.Identities(ctx, customerID)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if id.Kind == sessions.IdentitySiteUser && id.Verified && match(id) {
			return true, nil
		}
	}
	return false, nil
}
