package api_test

import (
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/omnigate/omnigate/internal/api"
)

// FuzzRequestBody sends arbitrary bodies to every route that takes one and
// checks what any client may rely on: the answer is JSON; a refusal is a
// catalogued error and changes nothing in the store.
func FuzzRequestBody(f *testing.F) {
	routes := []struct{ method, path string }{
		{http.MethodPatch, "/v1/customers/{cust}"},
		{http.MethodPost, "/v1/customers/{cust}/merge"},
		{http.MethodPost, "/v1/conversations/{conv}/messages"},
		{http.MethodPost, "/v1/conversations/{conv}/notes"},
		{http.MethodPost, "/v1/conversations/{conv}/assign"},
		{http.MethodPost, "/v1/conversations/{convAlice}/resolve"},
		{http.MethodPost, "/v1/conversations/{conv}/reopen"},
	}
	for i, body := range []string{
		`{"tier":"A","vip":true,"tags":["gold"]}`,
		`{"from":"{other}","evidence":"admin"}`,
		`{"text":"hello","client_id":"c-1"}`,
		`{"text":"internal"}`,
		`{"assignee":"bob"}`,
		``,
		`{}`,
		`{"tier":"Z"}`,
		`{"text":"x","client_id":"c-1","extra":1}`,
		`[1,2,3]`,
		`{"assignee":null}`,
		`{"time_zone":"Asia/Shanghai","attributes":{"a":""}}`,
		`{"text":"fail","client_id":"c-2"}`,
	} {
		f.Add(uint8(i), body)
	}
	codes := api.Codes()
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		fx := newFixture(t)
		r := routes[int(route)%len(routes)]
		before := fx.snapshot()
		res := fx.do(r.method, r.path, adminToken, body)
		if res.status < 400 {
			res.json(t)
			return
		}
		code := api.Code(res.errorCode(t))
		if !slices.Contains(codes, code) {
			t.Fatalf("%s %s: error code %q is not in the catalogue", r.method, r.path, code)
		}
		if code == api.CodeSendFailed {
			return // by design: the message is recorded, as failed
		}
		if after := fx.snapshot(); !reflect.DeepEqual(before, after) {
			t.Fatalf("%s %s answered %d but changed the store\nbody: %q\n%s", r.method, r.path, res.status, body, res.body)
		}
	})
}
