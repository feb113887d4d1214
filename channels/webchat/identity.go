package webchat

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/omnigate/omnigate/sessions"
)

// Sign returns the user_hash a site's back end puts in the widget tag for
// userID: hex HMAC-SHA256 of the user id, keyed with the site's secret.
func Sign(secret, userID string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(userID))
	return hex.EncodeToString(mac.Sum(nil))
}

// verifyUser checks hash against userID in constant time. A site without
// a secret verifies nothing.
func verifyUser(secret, userID, hash string) bool {
	if secret == "" || userID == "" || len(hash) != 2*sha256.Size {
		return false
	}
	got, err := hex.DecodeString(hash)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(userID))
	return hmac.Equal(got, mac.Sum(nil))
}

// evidenceVerifiedSiteUser is the merge evidence of a signed widget
// identity.
const evidenceVerifiedSiteUser = "verified_site_user"

// resolution is who a socket talks for.
type resolution struct {
	customerID string
	// merged is the customer the visitor had before this connection merged
	// it into the site user's; empty when nothing was merged.
	merged string
}

// resolve finds the customer a socket speaks for. Without a verified user
// id that is the visitor id's customer. With one, the site user's customer
// wins: the visitor id is linked to it, or the visitor's own customer is
// merged into it (a signature from the site's back end is evidence that
// can't be forged). Concurrent first contacts and merges elsewhere can
// move things between two reads; each step is retried a few times.
func resolve(ctx context.Context, st sessions.Store, site, visitor, userID string, seed sessions.Customer) (resolution, error) {
	vid := visitorIdentity(site, visitor)
	if userID == "" {
		c, _, err := st.ResolveCustomer(ctx, vid, seed)
		if err != nil {
			return resolution{}, fmt.Errorf("webchat: resolve visitor: %w", err)
		}
		return resolution{customerID: c.ID}, nil
	}
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
		other, err := hasOtherSiteUser(ctx, st, ownerV, uid)
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

// owner is the customer that owns id, "" when no one does.
func owner(ctx context.Context, st sessions.Store, id sessions.Identity) (string, error) {
	c, err := st.IdentityOwner(ctx, id)
	if errors.Is(err, sessions.ErrNotFound) {
		return "", nil
	}
	return c, err
}

func hasOtherSiteUser(ctx context.Context, st sessions.Store, customerID string, uid sessions.Identity) (bool, error) {
	ids, err := st.Identities(ctx, customerID)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if id.Kind == uid.Kind && id.Namespace == uid.Namespace && id.Verified && id.Value != uid.Value {
			return true, nil
		}
	}
	return false, nil
}
