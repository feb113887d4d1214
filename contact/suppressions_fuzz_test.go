package contact

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// FuzzImportCSV feeds ImportCSV anything: it must not panic, must import
// all or nothing, and what it imported must survive an export and an
// import unchanged.
func FuzzImportCSV(f *testing.F) {
	for _, seed := range []string{
		"kind,value,channel,purpose,reason\nphone,+8613812345678,sms,,STOP\n",
		"email,Ann@Example.com,,sales,\"asked, by phone\"\r\ncustomer,cus_1\n",
		"wechat_openid,wx1:oAbC-123_x,wechat,notice,\"said \"\"no\"\"\"\n",
		"phone,+1 (415) 867-5309\nphone,+14158675309,voice\n",
		"customer,\"cus_3\n",
		"fax,1\ncustomer\n,,,,,\n",
		"\ufeffkind,value\ncustomer,客户一\n",
		"customer,c1,,,  spaced reason  \n\n\ncustomer,c2",
	} {
		f.Add(seed)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, in string) {
		a := NewMemorySuppressions()
		n, err := ImportCSV(ctx, a, strings.NewReader(in), "csv", t0)
		all, _, lerr := a.List(ctx, "", 1000)
		if lerr != nil {
			t.Fatal(lerr)
		}
		if err != nil {
			if n != 0 || len(all) != 0 {
				t.Fatalf("failed import kept %d entries (n %d): %v", len(all), n, err)
			}
			return
		}
		if len(all) > n {
			t.Fatalf("%d entries from %d lines", len(all), n)
		}
		var first, second bytes.Buffer
		if err := ExportCSV(ctx, a, &first); err != nil {
			t.Fatal(err)
		}
		b := NewMemorySuppressions()
		if _, err := ImportCSV(ctx, b, bytes.NewReader(first.Bytes()), "csv", t0); err != nil {
			t.Fatalf("importing an export: %v\n%s", err, &first)
		}
		if err := ExportCSV(ctx, b, &second); err != nil {
			t.Fatal(err)
		}
		if first.String() != second.String() {
			t.Fatalf("round trip changed the list:\n%s\n---\n%s", &first, &second)
		}
	})
}
