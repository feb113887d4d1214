package auth

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/omnigate/omnigate/channels/envsecret"
)

// MinTokenLen is the shortest token accepted, so no one deploys "admin".
const MinTokenLen = 16

// Config lists everyone who may call the API.
type Config struct {
	// AdminKeys are operators' API keys (role admin). Empty means no admin
	// access at all.
	AdminKeys []Key `yaml:"admin_keys"`
	// IntegratorKeys are back-end systems' API keys (role integrator).
	// Empty means no integrator access.
	IntegratorKeys []Key `yaml:"integrator_keys"`
	// Reps are the people who work conversations, with their tokens.
	// Empty means no rep can sign in. Rep ids are what conversations'
	// assignee and customers' owner refer to.
	Reps []Rep `yaml:"reps"`
}

// Key is one API key.
type Key struct {
	// Name identifies the key in timelines ("admin:<name>",
	// "integrator:<name>") and logs. Required.
	Name string `yaml:"name"`
	// Key is the secret itself, for demos and tests. Empty means take it
	// from KeyEnv; setting both is an error.
	Key string `yaml:"key"`
	// KeyEnv names the environment variable holding the secret, the way to
	// configure production (OMNIGATE_ADMIN_KEY, ...). Empty means use Key.
	KeyEnv string `yaml:"key_env"`
}

// Rep is one rep or supervisor.
type Rep struct {
	// ID is the rep id used in assignee and owner fields and in the
	// author "rep:<id>". Required: letters, digits, '.', '_', '-'.
	ID string `yaml:"id"`
	// Name is shown to customers and colleagues; empty means the id.
	Name string `yaml:"name"`
	// Role is "rep" or "supervisor"; empty means rep.
	Role Role `yaml:"role"`
	// Token is the rep's bearer token, for demos and tests. Empty means
	// take it from TokenEnv; setting both is an error.
	Token string `yaml:"token"`
	// TokenEnv names the environment variable holding the token. Empty
	// means use Token.
	TokenEnv string `yaml:"token_env"`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ResolveEnv fills every secret named by a *_env field from lookup
// (os.LookupEnv in production). Secrets come only from the environment or
// the file, never both, so there is one place to look when one is wrong.
func (c *Config) ResolveEnv(lookup func(string) (string, bool)) error {
	env := envsecret.New(lookup)
	for i := range c.AdminKeys {
		env.Resolve(fmt.Sprintf("admin_keys[%d].key_env", i), &c.AdminKeys[i].Key, c.AdminKeys[i].KeyEnv)
	}
	for i := range c.IntegratorKeys {
		env.Resolve(fmt.Sprintf("integrator_keys[%d].key_env", i), &c.IntegratorKeys[i].Key, c.IntegratorKeys[i].KeyEnv)
	}
	for i := range c.Reps {
		env.Resolve(fmt.Sprintf("reps[%d].token_env", i), &c.Reps[i].Token, c.Reps[i].TokenEnv)
	}
	return env.Err()
}

// Validate reports every problem at once. Call it after ResolveEnv.
func (c Config) Validate() error {
	var errs []error
	tokens := map[string]string{} // token -> field, to catch reuse
	checkSecret := func(field, secret string) {
		switch {
		case secret == "":
			errs = append(errs, fmt.Errorf("%s: missing", field))
		case len(secret) < MinTokenLen:
			errs = append(errs, fmt.Errorf("%s: shorter than %d characters", field, MinTokenLen))
		default:
			if other, dup := tokens[secret]; dup {
				errs = append(errs, fmt.Errorf("%s: same secret as %s", field, other))
			}
			tokens[secret] = field
		}
	}
	checkKeys := func(list string, keys []Key) {
		names := map[string]bool{}
		for i, k := range keys {
			field := fmt.Sprintf("%s[%d]", list, i)
			if !idPattern.MatchString(k.Name) {
				errs = append(errs, fmt.Errorf("%s.name: %q must be 1-64 letters, digits, '.', '_' or '-'", field, k.Name))
			} else if names[k.Name] {
				errs = append(errs, fmt.Errorf("%s.name: %q used twice", field, k.Name))
			}
			names[k.Name] = true
			checkSecret(field+".key", k.Key)
		}
	}
	checkKeys("admin_keys", c.AdminKeys)
	checkKeys("integrator_keys", c.IntegratorKeys)
	ids := map[string]bool{}
	for i, r := range c.Reps {
		field := fmt.Sprintf("reps[%d]", i)
		if !idPattern.MatchString(r.ID) {
			errs = append(errs, fmt.Errorf("%s.id: %q must be 1-64 letters, digits, '.', '_' or '-'", field, r.ID))
		} else if ids[r.ID] {
			errs = append(errs, fmt.Errorf("%s.id: %q used twice", field, r.ID))
		}
		ids[r.ID] = true
		if r.Role != "" && r.Role != RoleRep && r.Role != RoleSupervisor {
			errs = append(errs, fmt.Errorf("%s.role: %q must be rep or supervisor", field, r.Role))
		}
		checkSecret(field+".token", r.Token)
	}
	return errors.Join(errs...)
}
