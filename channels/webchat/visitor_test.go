package webchat

import (
	"strings"
	"testing"
)

func TestVisitorHints(t *testing.T) {
	t.Parallel()
	uas := []struct{ ua, browser, os string }{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", "Chrome", "Windows"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0", "Edge", "Windows"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "Safari", "iOS"},
		{"Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116 Mobile Safari/537.36 MicroMessenger/8.0.42", "WeChat", "Android"},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox", "Linux"},
		{"curl/8.0", "", ""},
	}
	for _, tt := range uas {
		if b, o := parseUserAgent(tt.ua); b != tt.browser || o != tt.os {
			t.Errorf("%s: %q %q, want %q %q", tt.ua, b, o, tt.browser, tt.os)
		}
	}
	for in, want := range map[string]string{"Asia/Shanghai": "Asia/Shanghai", "America/Argentina/Buenos_Aires": "America/Argentina/Buenos_Aires",
		"UTC": "", "Etc/GMT+8": "", "../../etc/passwd": "", "Asia/<b>": ""} {
		if got := checkZone(in); got != want {
			t.Errorf("checkZone(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"https://shop.example.com/orders/42?token=secret#x": "https://shop.example.com/orders/42",
		"javascript:alert(1)": "", "https://user:pw@example.com/": "", "/relative": ""} {
		if got := checkPage(in); got != want {
			t.Errorf("checkPage(%q) = %q, want %q", in, got, want)
		}
	}
	c := visitorHints{timeZone: "America/New_York", page: "https://shop.example.com/cart", userAgent: uas[0].ua}.seed("en-US")
	want := map[string]string{AttrBrowser: "Chrome", AttrOS: "Windows", AttrCity: "New York", AttrPage: "https://shop.example.com/cart"}
	for k, v := range want {
		if c.Attributes[k] != v {
			t.Errorf("seed attribute %s = %q, want %q", k, c.Attributes[k], v)
		}
	}
	if c.TimeZone != "America/New_York" || c.Locale != "en-US" {
		t.Errorf("seed %+v", c)
	}
	if c := (visitorHints{}).seed(""); c.Attributes != nil {
		t.Errorf("empty hints gave attributes %v", c.Attributes)
	}
}

// FuzzVisitorHints: hello's tz and page and the User-Agent header come
// from any browser; what is kept is a zone name or an http(s) origin and
// path, never anything else.
func FuzzVisitorHints(f *testing.F) {
	f.Add("Asia/Shanghai", "https://shop.example.com/a?b=c#d", "Mozilla/5.0 Chrome/1 Safari/1")
	f.Add("../x", "javascript:alert(1)", "")
	f.Add("America/Argentina/Buenos_Aires", "http://[::1]:8080/%2e%2e/", "MicroMessenger/8")
	f.Fuzz(func(t *testing.T, tz, page, ua string) {
		if z := checkZone(tz); z != "" && (z != tz || !zoneRe.MatchString(z)) {
			t.Fatalf("checkZone(%q) = %q", tz, z)
		}
		if p := checkPage(page); p != "" && (len(p) > 300 || strings.ContainsAny(p, "?#") ||
			!(strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://"))) {
			t.Fatalf("checkPage(%q) = %q", page, p)
		}
		b, o := parseUserAgent(ua)
		_ = visitorHints{timeZone: checkZone(tz), page: checkPage(page), userAgent: ua}.seed("")
		if len(b) > 10 || len(o) > 10 {
			t.Fatalf("parseUserAgent(%q) = %q, %q", ua, b, o)
		}
	})
}
