package envsecret

import (
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SET": "s3cret", "EMPTY": ""}
	r := New(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	var fromEnv, fromFile, both, missing, empty string
	fromFile, both = "in-file", "in-file"
	r.Resolve("a_env", &fromEnv, "SET")
	r.Resolve("b_env", &fromFile, "")
	r.Resolve("c_env", &both, "SET")
	r.Resolve("d_env", &missing, "UNSET")
	r.Resolve("e_env", &empty, "EMPTY")
	if fromEnv != "s3cret" || fromFile != "in-file" || both != "in-file" || missing != "" {
		t.Fatalf("secrets = %q %q %q %q", fromEnv, fromFile, both, missing)
	}
	err := r.Err()
	for _, want := range []string{"c_env: set the secret or its _env variable, not both", "d_env: environment variable UNSET is not set", "e_env: environment variable EMPTY is not set"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "a_env") || strings.Contains(err.Error(), "b_env") {
		t.Errorf("error names a field that resolved: %v", err)
	}
}
