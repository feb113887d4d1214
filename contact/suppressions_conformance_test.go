package contact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/internal/testredis"
)

type openSuppressions func(t *testing.T) Suppressions

func memorySuppressions(t *testing.T) Suppressions { return NewMemorySuppressions() }

func boltSuppressions(t *testing.T) Suppressions {
	s, err := OpenBoltSuppressions(filepath.Join(t.TempDir(), "suppressions.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func valkeySuppressionsOpener(t *testing.T) openSuppressions {
	addr := testredis.Addr(t)
	return func(t *testing.T) Suppressions {
		s, err := NewValkeySuppressions(valkeyClient(t, addr), testPrefix())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestSuppressionsMemory(t *testing.T) { runSuppressionsConformance(t, memorySuppressions) }
func TestSuppressionsBolt(t *testing.T)   { runSuppressionsConformance(t, boltSuppressions) }
func TestSuppressionsValkey(t *testing.T) {
	runSuppressionsConformance(t, valkeySuppressionsOpener(t))
}

// entries names suppressions "kind:value/channel/purpose" for comparing.
func entries(ss []Suppression) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Kind+":"+s.Value+"/"+s.Channel+"/"+s.Purpose)
	}
	return strings.Join(out, " ")
}

func runSuppressionsConformance(t *testing.T, open openSuppressions) {
	ctx := context.Background()
	add := func(t *testing.T, s Suppressions, e Suppression) {
		t.Helper()
		if e.At.IsZero() {
			e.At = t0
		}
		if err := s.Add(ctx, e); err != nil {
			t.Fatalf("Add %+v: %v", e, err)
		}
	}
	match := func(t *testing.T, s Suppressions, keys []Key, channel, purpose, want string) {
		t.Helper()
		got, err := s.Match(ctx, keys, channel, purpose)
		if err != nil {
			t.Fatal(err)
		}
		if entries(got) != want {
			t.Fatalf("Match %v on %s for %s: %q, want %q", keys, channel, purpose, entries(got), want)
		}
	}

	t.Run("match by key, channel and purpose", func(t *testing.T) {
		s := open(t)
		add(t, s, Suppression{Kind: KindPhone, Value: "+86 138 1234 5678", Reason: "STOP", Source: "sms_stop"})
		add(t, s, Suppression{Kind: KindCustomer, Value: "cus_1", Purpose: "sales"})
		add(t, s, Suppression{Kind: KindEmail, Value: "Ann@Example.COM", Channel: "email", Purpose: "sales"})
		add(t, s, Suppression{Kind: KindWeChatOpenID, Value: "acct:o123", Channel: "wechat"})
		keys := []Key{{KindCustomer, "cus_1"}, {KindPhone, "+8613812345678"}, {KindEmail, "ann@example.com"},
			{KindWeChatOpenID, "acct:o123"}, {"visitor", "v1"}, {KindPhone, "not a number"}}
		match(t, s, keys, "sms", "service", "phone:+8613812345678//")
		match(t, s, keys, "sms", "sales", "customer:cus_1//sales phone:+8613812345678//")
		match(t, s, keys, "email", "sales", "customer:cus_1//sales email:ann@example.com/email/sales phone:+8613812345678//")
		match(t, s, keys, "wechat", "notice", "phone:+8613812345678// wechat_openid:acct:o123/wechat/")
		match(t, s, keys[:1], "sms", "service", "")
		match(t, s, []Key{{KindWeChatOpenID, "other:o123"}}, "wechat", "notice", "")
		got, _ := s.Match(ctx, keys[1:2], "sms", "service")
		if len(got) != 1 || got[0].Reason != "STOP" || got[0].Source != "sms_stop" || !got[0].At.Equal(t0) {
			t.Fatalf("%+v", got)
		}
	})

	t.Run("add is idempotent and keeps the first", func(t *testing.T) {
		s := open(t)
		add(t, s, Suppression{Kind: KindPhone, Value: "+8613812345678", Reason: "first"})
		add(t, s, Suppression{Kind: KindPhone, Value: "+86 13812345678", Reason: "second"})
		add(t, s, Suppression{Kind: KindPhone, Value: "+8613812345678", Channel: "sms", Reason: "narrower"})
		all, next, err := s.List(ctx, "", 0)
		if err != nil || next != "" || len(all) != 2 || all[0].Reason != "first" || all[1].Reason != "narrower" {
			t.Fatalf("%+v %q %v", all, next, err)
		}
	})

	t.Run("remove", func(t *testing.T) {
		s := open(t)
		add(t, s, Suppression{Kind: KindEmail, Value: "ann@example.com"})
		add(t, s, Suppression{Kind: KindEmail, Value: "ann@example.com", Purpose: "sales"})
		if err := s.Remove(ctx, KindEmail, "ANN@example.com", "", "sales"); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(ctx, KindEmail, "ann@example.com", "", "sales"); !errors.Is(err, ErrNoSuppression) {
			t.Fatalf("removing again: %v, want ErrNoSuppression", err)
		}
		match(t, s, []Key{{KindEmail, "ann@example.com"}}, "email", "sales", "email:ann@example.com//")
		if err := s.Remove(ctx, "fax", "1", "", ""); !errors.Is(err, ErrInvalidSuppression) {
			t.Fatalf("unknown kind: %v", err)
		}
	})

	t.Run("list pages in order", func(t *testing.T) {
		s := open(t)
		var want []string
		for i := range 25 {
			v := fmt.Sprintf("cus_%02d", 24-i)
			add(t, s, Suppression{Kind: KindCustomer, Value: v})
			want = append([]string{"customer:" + v + "//"}, want...)
		}
		var got []string
		cursor, pages := "", 0
		for {
			page, next, err := s.List(ctx, cursor, 10)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			got = append(got, entries(page))
			if next == "" {
				break
			}
			cursor = next
		}
		if pages != 3 || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%d pages: %v", pages, got)
		}
		if _, _, err := s.List(ctx, "!!", 10); !errors.Is(err, ErrInvalidSuppression) {
			t.Fatalf("bad cursor: %v", err)
		}
		page, next, _ := s.List(ctx, "", 25)
		if len(page) != 25 || next != "" {
			t.Fatalf("a page of exactly the rest: %d, next %q", len(page), next)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		s := open(t)
		for _, e := range []Suppression{
			{Kind: "fax", Value: "1"},
			{Kind: KindPhone, Value: "13812345678"},
			{Kind: KindEmail, Value: "nobody"},
			{Kind: KindWeChatOpenID, Value: "o123"},
			{Kind: KindCustomer, Value: ""},
			{Kind: KindCustomer, Value: "c{1}"},
			{Kind: KindCustomer, Value: "c1", Channel: "SMS!"},
			{Kind: KindCustomer, Value: "c1", Purpose: "sales team"},
			{Kind: KindCustomer, Value: "c1", Reason: "two\nlines"},
		} {
			if e.At.IsZero() {
				e.At = t0
			}
			if err := s.Add(ctx, e); !errors.Is(err, ErrInvalidSuppression) {
				t.Errorf("Add %+v: %v, want ErrInvalidSuppression", e, err)
			}
		}
		if err := s.Add(ctx, Suppression{Kind: KindCustomer, Value: "c1"}); !errors.Is(err, ErrInvalidSuppression) {
			t.Errorf("Add without a time: %v", err)
		}
		if all, _, _ := s.List(ctx, "", 0); len(all) != 0 {
			t.Fatalf("%+v", all)
		}
	})

	t.Run("csv round trip", func(t *testing.T) {
		a, b := open(t), open(t)
		in := "\ufeffKind,Value,Channel,Purpose,Reason\n" + // as a spreadsheet saves it
			"phone,+86 138 1234 5678,sms,,STOP\n" +
			"email,Ann@Example.com,,sales,\"asked, by phone\"\n" +
			"customer,cus_1\n" +
			"wechat_openid,acct:o1,wechat,notice,\"said \"\"no\"\"\"\n"
		n, err := ImportCSV(ctx, a, strings.NewReader(in), "csv", t0)
		if err != nil || n != 4 {
			t.Fatalf("import: %d, %v", n, err)
		}
		var first, second bytes.Buffer
		if err := ExportCSV(ctx, a, &first); err != nil {
			t.Fatal(err)
		}
		if _, err := ImportCSV(ctx, b, bytes.NewReader(first.Bytes()), "csv", t0); err != nil {
			t.Fatal(err)
		}
		if err := ExportCSV(ctx, b, &second); err != nil {
			t.Fatal(err)
		}
		want := "kind,value,channel,purpose,reason\n" +
			"customer,cus_1,,,\n" +
			"email,ann@example.com,,sales,\"asked, by phone\"\n" +
			"phone,+8613812345678,sms,,STOP\n" +
			"wechat_openid,acct:o1,wechat,notice,\"said \"\"no\"\"\"\n"
		if first.String() != want || second.String() != want {
			t.Fatalf("export:\n%s\nafter a round trip:\n%s\nwant:\n%s", &first, &second, want)
		}
		got, _ := a.Match(ctx, []Key{{KindCustomer, "cus_1"}}, "sms", "sales")
		if len(got) != 1 || got[0].Source != "csv" || !got[0].At.Equal(t0) {
			t.Fatalf("%+v", got)
		}
	})

	t.Run("csv with bad lines imports nothing", func(t *testing.T) {
		s := open(t)
		in := "customer,cus_1\n" +
			"fax,123\n" +
			"phone,13812345678\n" +
			"customer\n" +
			"customer,cus_2,sms,sales,reason,extra\n" +
			"customer,\"cus_3\n"
		n, err := ImportCSV(ctx, s, strings.NewReader(in), "csv", t0)
		if n != 0 || !errors.Is(err, ErrInvalidSuppression) {
			t.Fatalf("%d, %v", n, err)
		}
		for _, line := range []string{"line 2:", "line 3:", "line 4:", "line 5:", "line 6:"} {
			if !strings.Contains(err.Error(), line) {
				t.Errorf("error does not name %s\n%v", line, err)
			}
		}
		if strings.Contains(err.Error(), "line 1:") {
			t.Errorf("error names the good line 1:\n%v", err)
		}
		if all, _, _ := s.List(ctx, "", 0); len(all) != 0 {
			t.Fatalf("half imported: %+v", all)
		}
	})
}
