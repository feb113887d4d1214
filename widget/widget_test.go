package widget_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/widget"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	h, err := widget.Handler(widget.Options{DemoSite: `shop"><script>`, DemoLang: "zh"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	tests := []struct {
		path   string
		status int
		ctype  string
		has    []string
	}{
		{"/widget.js", 200, "text/javascript; charset=utf-8", []string{"channels/webchat/ws", `"hello"`, "data-site", "aria-live", "localStorage"}},
		{"/widget.css", 200, "text/css; charset=utf-8", []string{".og-launcher", "max-width: 480px"}},
		{"/", 200, "text/html; charset=utf-8", []string{`src="widget.js"`, `data-site="shop&#34;&gt;&lt;script&gt;"`, `data-lang="zh"`}},
		{"/demo.html", 404, "", nil},
		{"/widget.go", 404, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if tt.status != 200 {
				return
			}
			if got := resp.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type %q", got)
			}
			for _, s := range tt.has {
				if !strings.Contains(string(body), s) {
					t.Errorf("body lacks %q", s)
				}
			}
			// Revalidation by ETag.
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
			req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
			again, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			again.Body.Close()
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("revalidation status %d", again.StatusCode)
			}
		})
	}
	resp, err := http.Post(srv.URL+"/widget.js", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status %d", resp.StatusCode)
	}
}

func TestWidgetHasNoExternalURLs(t *testing.T) {
	t.Parallel()
	h, err := widget.Handler(widget.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/widget.js", "/widget.css", "/"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		// The placeholder in the embed instructions is the one URL allowed.
		body := strings.ReplaceAll(rec.Body.String(), "https://GATEWAY/", "")
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "url("} {
			if strings.Contains(body, bad) {
				t.Errorf("%s refers to %q: no CDN, nothing external", p, bad)
			}
		}
	}
}
