package api_test

import (
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/internal/api"
	"github.com/omnigate/omnigate/sessions"
)

func (f *contactFixture) list(token string) []contact.Suppression {
	f.t.Helper()
	r := f.do("GET", "/v1/suppressions", token, "")
	if r.status != 200 {
		f.t.Fatalf("list = %d %s", r.status, r.body)
	}
	var page api.Page[contact.Suppression]
	must(f.t, json.Unmarshal(r.body, &page))
	return page.Data
}

func TestSuppressionsCRUD(t *testing.T) {
	t.Parallel()
	f := newContactFixture(t, contact.Config{})
	r := f.do("POST", "/v1/suppressions", integratorToken, `{"kind":"phone","value":"+86 138 1234 5678","channel":"sms","reason":"asked by letter"}`)
	if r.status != 201 {
		t.Fatalf("add = %d %s", r.status, r.body)
	}
	want := contact.Suppression{Kind: "phone", Value: phone, Channel: "sms", Reason: "asked by letter", Source: "api", At: f.clock.Now().UTC()}
	var got contact.Suppression
	if must(t, json.Unmarshal(r.body, &got)); !reflect.DeepEqual(got, want) {
		t.Errorf("added %+v, want %+v", got, want)
	}
	f.clock.Set(f.clock.Now().Add(time.Hour))
	if r := f.do("POST", "/v1/suppressions", adminToken, `{"kind":"phone","value":"+8613812345678","channel":"sms"}`); r.status != 200 ||
		!strings.Contains(string(r.body), "asked by letter") {
		t.Errorf("adding it again = %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/v1/suppressions", carolToken, `{"kind":"customer","value":"{cust}","purpose":"sales"}`); r.status != 201 {
		t.Errorf("add customer = %d %s", r.status, r.body)
	}
	if l := f.list(carolToken); len(l) != 2 || l[0].Kind != "customer" || l[1].Value != phone {
		t.Errorf("list = %+v", l)
	}

	for _, tt := range []struct{ name, token, body, code string }{
		{"unknown purpose", adminToken, `{"kind":"phone","value":"+8613812345678","purpose":"slaes"}`, "invalid"},
		{"unknown channel", adminToken, `{"kind":"phone","value":"+8613812345678","channel":"fax"}`, "invalid"},
		{"bad phone", adminToken, `{"kind":"phone","value":"12"}`, "invalid"},
		{"bad kind", adminToken, `{"kind":"visitor","value":"v-1"}`, "invalid"},
		{"no such customer", adminToken, `{"kind":"customer","value":"cus_nope"}`, "not_found"},
		{"rep", aliceToken, `{"kind":"phone","value":"+8613812345678"}`, "forbidden"},
	} {
		if r := f.do("POST", "/v1/suppressions", tt.token, tt.body); r.errorCode(t) != tt.code {
			t.Errorf("%s: add = %d %s, want %s", tt.name, r.status, r.body, tt.code)
		}
	}
	// Reps do not read the whole list; they see their customer's entries.
	if r := f.do("GET", "/v1/suppressions", aliceToken, ""); r.status != 403 {
		t.Errorf("rep list = %d %s", r.status, r.body)
	}
	if len(f.list(adminToken)) != 2 {
		t.Error("a refused add changed the list")
	}

	q := "kind=phone&value=" + url.QueryEscape("+8613812345678") + "&channel=sms"
	if r := f.do("DELETE", "/v1/suppressions?"+q, adminToken, ""); r.status != 204 {
		t.Errorf("delete = %d %s", r.status, r.body)
	}
	if r := f.do("DELETE", "/v1/suppressions?"+q, adminToken, ""); r.status != 404 || r.errorCode(t) != "not_found" {
		t.Errorf("delete again = %d %s", r.status, r.body)
	}
	if r := f.do("DELETE", "/v1/suppressions?kind=customer", adminToken, `{"kind":"customer","value":"{cust}","purpose":"sales"}`); r.status != 400 {
		t.Errorf("query and body = %d %s", r.status, r.body)
	}
	if r := f.do("DELETE", "/v1/suppressions", integratorToken, `{"kind":"customer","value":"{cust}","purpose":"sales"}`); r.status != 204 {
		t.Errorf("delete by body = %d %s", r.status, r.body)
	}
	if l := f.list(adminToken); len(l) != 0 {
		t.Errorf("list after deletes = %+v", l)
	}
}

func TestSuppressionsCSV(t *testing.T) {
	t.Parallel()
	f := newContactFixture(t, contact.Config{})
	bad := "kind,value,channel,purpose,reason\nphone,+8613812345678,sms,,STOP\nphone,12\nemail,wang@example.com,,sales,\nfax,123\n"
	r := f.doType("POST", "/v1/suppressions/import", adminToken, bad, "text/csv")
	if r.status != 400 || r.errorCode(t) != "invalid" {
		t.Fatalf("bad import = %d %s", r.status, r.body)
	}
	msg := r.json(t)["error"].(map[string]any)["message"].(string)
	if !strings.Contains(msg, "line 3:") || !strings.Contains(msg, "line 5:") || strings.Contains(msg, "line 2:") || !strings.Contains(msg, "nothing imported") {
		t.Errorf("message = %q", msg)
	}
	if l := f.list(adminToken); len(l) != 0 {
		t.Fatalf("a bad file imported %+v", l)
	}
	if r := f.doType("POST", "/v1/suppressions/import", adminToken, "phone,+8613812345678\n", "application/json"); r.status != 415 {
		t.Errorf("import as JSON = %d %s", r.status, r.body)
	}
	if r := f.doType("POST", "/v1/suppressions/import", aliceToken, "phone,+8613812345678\n", "text/csv"); r.status != 403 {
		t.Errorf("import by a rep = %d %s", r.status, r.body)
	}
	if r := f.doType("POST", "/v1/suppressions/import", adminToken, strings.Repeat("phone,+8613812345678\n", 300), "text/csv"); r.status != 413 {
		t.Errorf("import over the body cap = %d", r.status)
	}

	good := "\ufeffphone,+86 138 1234 5678,sms,,STOP by letter\nemail,Wang@Example.com,,sales,\ncustomer,{cust},wechat\n"
	r = f.doType("POST", "/v1/suppressions/import", integratorToken, good, "text/csv")
	if r.status != 200 || r.json(t)["imported"] != 3.0 {
		t.Fatalf("import = %d %s", r.status, r.body)
	}
	exported := f.do("GET", "/v1/suppressions/export", carolToken, "")
	if exported.status != 200 || !strings.HasPrefix(exported.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("export = %d %v %s", exported.status, exported.header, exported.body)
	}
	wantCSV := "kind,value,channel,purpose,reason\n" + "customer," + f.cust.ID + ",wechat,,\n" +
		"email,wang@example.com,,sales,\n" + "phone,+8613812345678,sms,,STOP by letter\n"
	if string(exported.body) != wantCSV {
		t.Errorf("export =\n%s\nwant\n%s", exported.body, wantCSV)
	}

	// Round trip: the export imported elsewhere is the same list.
	other := newContactFixture(t, contact.Config{})
	other.cust = f.cust // the export names f's customer id; import does not look it up
	if r := other.doType("POST", "/v1/suppressions/import", adminToken, string(exported.body), "text/csv"); r.status != 200 {
		t.Fatalf("import of the export = %d %s", r.status, r.body)
	}
	if a, b := f.list(adminToken), other.list(adminToken); !reflect.DeepEqual(a, b) {
		t.Errorf("round trip:\n%+v\n%+v", a, b)
	}
	if r := f.do("GET", "/v1/suppressions/export", aliceToken, ""); r.status != 403 {
		t.Errorf("export by a rep = %d", r.status)
	}
	if r := newContactFixture(t, contact.Config{}).do("GET", "/v1/suppressions/export", adminToken, ""); string(r.body) != "kind,value,channel,purpose,reason\n" {
		t.Errorf("empty export = %d %q", r.status, r.body)
	}
}

// TestCustomerSuppressions: the entries that apply to one customer, for
// the inbox's panel; a rep may read them, masked.
func TestCustomerSuppressions(t *testing.T) {
	t.Parallel()
	f := newContactFixture(t, contact.Config{})
	ctx := context.Background()
	for _, s := range []contact.Suppression{
		{Kind: contact.KindPhone, Value: phone, Channel: sessions.ChannelSMS},
		{Kind: contact.KindEmail, Value: "wang@example.com", Purpose: contact.PurposeSales},
		{Kind: contact.KindCustomer, Value: f.cust.ID},
		{Kind: contact.KindPhone, Value: "+8613900000000"}, // someone else
		{Kind: contact.KindCustomer, Value: f.cust.ID, Purpose: "unknown"},
	} {
		s.Source, s.At = "test", f.clock.Now()
		must(t, f.sups.Add(ctx, s))
	}
	r := f.do("GET", "/v1/customers/{cust}/suppressions", aliceToken, "")
	if r.status != 200 {
		t.Fatalf("customer suppressions = %d %s", r.status, r.body)
	}
	var page api.Page[contact.Suppression]
	must(t, json.Unmarshal(r.body, &page))
	var got []string
	for _, s := range page.Data {
		got = append(got, s.Kind+" "+s.Value+" "+s.Channel+" "+s.Purpose)
	}
	want := []string{"customer " + f.cust.ID + "  ", "email wang@example.com  sales", "phone " + maskedPhone + " sms "}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries = %q, want %q", got, want)
	}
	if r := f.do("GET", "/v1/customers/cus_nope/suppressions", aliceToken, ""); r.status != 404 {
		t.Errorf("no such customer = %d", r.status)
	}
}
