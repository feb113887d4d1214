// Package config assembles the gateway's one YAML file from the Config
// structs the packages own (auth.Config, api.Config, the store's options)
// and loads it the way livekit does:
//
//  1. defaults (Default);
//  2. the YAML file, decoded with KnownFields: a misspelt key is an error,
//     never silently ignored;
//  3. the environment, for secrets only;
//  4. Validate, which reports every problem at once (errors.Join).
//
// Secrets and the environment: a secret field has a companion "_env" field
// naming the environment variable that holds it (key_env, token_env,
// password_env). Production files set only the _env fields and keep
// secrets out of the file and out of version control; demo files may set
// the secret itself. Setting both is an error, so there is one place to look
// when a key is wrong. Nothing else is read from the environment: no
// ${VAR} expansion (a "$" in a value stays a "$"), no OMNIGATE_* overrides
// of ordinary settings, so the file says what runs.
//
// Relative paths are relative to the gateway's working directory.
//
// Every field's comment says what its zero value means; those comments are
// the reference for configs/*.yaml.
package config
