// Package envsecret fills configuration secrets from environment variables
// named by *_env fields, the one way every section of the gateway's YAML
// takes secrets. A secret comes from the file or from the environment,
// never both, so there is one place to look when one is wrong.
package envsecret

import (
	"errors"
	"fmt"
)

// Resolver fills secrets and collects every problem, so a configuration
// reports them all at once.
type Resolver struct {
	lookup func(string) (string, bool)
	errs   []error
}

// New returns a Resolver reading variables with lookup (os.LookupEnv in
// production).
func New(lookup func(string) (string, bool)) *Resolver { return &Resolver{lookup: lookup} }

// Resolve sets *secret from the variable env names. field names the _env
// field in errors, e.g. "reps[2].token_env". An empty env leaves *secret
// as the file set it.
func (r *Resolver) Resolve(field string, secret *string, env string) {
	if env == "" {
		return
	}
	if *secret != "" {
		r.errs = append(r.errs, fmt.Errorf("%s: set the secret or its _env variable, not both", field))
		return
	}
	v, ok := r.lookup(env)
	if !ok || v == "" {
		r.errs = append(r.errs, fmt.Errorf("%s: environment variable %s is not set", field, env))
		return
	}
	*secret = v
}

// Err joins every problem found, nil when there was none.
func (r *Resolver) Err() error { return errors.Join(r.errs...) }
