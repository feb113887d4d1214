package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"
)

// Role is what a caller may do; see the package doc.
type Role string

const (
	RoleAdmin      Role = "admin"
	RoleSupervisor Role = "supervisor"
	RoleRep        Role = "rep"
	RoleIntegrator Role = "integrator"
)

// Errors from Authenticate; the API answers 401 to both.
var (
	ErrNoToken  = errors.New("auth: missing bearer token")
	ErrBadToken = errors.New("auth: unknown token")
)

// Principal is an authenticated caller.
type Principal struct {
	Role Role
	// ID is the rep id for reps and supervisors, the key name for admin and
	// integrator keys.
	ID string
}

// Author is how the principal appears on timeline events: "rep:<id>",
// "admin:<name>" or "integrator:<name>".
func (p Principal) Author() string {
	switch p.Role {
	case RoleRep, RoleSupervisor:
		return "rep:" + p.ID
	}
	return string(p.Role) + ":" + p.ID
}

// IsRep reports whether the principal is a person working conversations
// (rep or supervisor), as opposed to an API key.
func (p Principal) IsRep() bool { return p.Role == RoleRep || p.Role == RoleSupervisor }

// SeesPhonesMasked is the one decision of what a principal sees of
// personal data: reps (not supervisors, not keys) get every phone-like
// sequence masked, in the API's answers and the inbox's frames alike, so
// a rep sees the same thing live and on reload.
func (p Principal) SeesPhonesMasked() bool { return p.Role == RoleRep }

// Authenticator checks tokens against the configured ones.
type Authenticator struct {
	entries []entry
	reps    map[string]Rep
}

type entry struct {
	sum [sha256.Size]byte
	p   Principal
}

// New builds an Authenticator from a validated Config.
func New(c Config) *Authenticator {
	a := &Authenticator{reps: make(map[string]Rep, len(c.Reps))}
	add := func(secret string, p Principal) {
		a.entries = append(a.entries, entry{sum: sha256.Sum256([]byte(secret)), p: p})
	}
	for _, k := range c.AdminKeys {
		add(k.Key, Principal{Role: RoleAdmin, ID: k.Name})
	}
	for _, k := range c.IntegratorKeys {
		add(k.Key, Principal{Role: RoleIntegrator, ID: k.Name})
	}
	for _, r := range c.Reps {
		if r.Role == "" {
			r.Role = RoleRep
		}
		add(r.Token, Principal{Role: r.Role, ID: r.ID})
		r.Token, r.TokenEnv = "", "" // the directory keeps no secrets
		a.reps[r.ID] = r
	}
	return a
}

// Authenticate returns the principal owning token. It hashes the token so
// every comparison has the same length, and compares against every entry
// without stopping at a match.
func (a *Authenticator) Authenticate(token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrNoToken
	}
	sum := sha256.Sum256([]byte(token))
	var found Principal
	matched := 0
	for _, e := range a.entries {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
			found = e.p
			matched = 1
		}
	}
	if matched == 0 {
		return Principal{}, ErrBadToken
	}
	return found, nil
}

// Request authenticates an "Authorization: Bearer <token>" header.
func (a *Authenticator) Request(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, ErrNoToken
	}
	return a.Authenticate(strings.TrimSpace(token))
}

// Rep returns a rep or supervisor by id, without the token.
func (a *Authenticator) Rep(id string) (Rep, bool) {
	r, ok := a.reps[id]
	return r, ok
}

// Reps lists every rep and supervisor, without tokens, sorted by id.
func (a *Authenticator) Reps() []Rep {
	out := make([]Rep, 0, len(a.reps))
	for _, r := range a.reps {
		out = append(out, r)
	}
	slices.SortFunc(out, func(x, y Rep) int { return strings.Compare(x.ID, y.ID) })
	return out
}
