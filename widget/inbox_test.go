package widget_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/omnigate/omnigate/widget"
)

func TestInboxHandler(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(widget.InboxHandler())
	defer srv.Close()
	tests := []struct {
		path   string
		status int
		ctype  string
		has    []string
	}{
		{"/inbox", 200, "text/html; charset=utf-8", []string{`src="/inbox/inbox.js"`, `href="/inbox/inbox.css"`, `id="signin-token"`, `id="conversation-list"`, `id="timeline"`, `id="reply-text"`, `id="typing-indicator"`}},
		{"/inbox/", 200, "text/html; charset=utf-8", []string{`id="app"`}},
		{"/inbox/inbox.js", 200, "text/javascript; charset=utf-8", []string{"/inbox/ws", "'auth'", "sessionStorage", "textContent", "?after="}},
		{"/inbox/inbox.css", 200, "text/css; charset=utf-8", []string{":focus-visible"}},
		{"/inbox/tools.js", 200, "text/javascript; charset=utf-8", []string{"/v1/canned-responses", "OmnigateInbox", "textContent"}},
		{"/inbox/inbox.html", 404, "", nil},
		{"/inbox/nope.js", 404, "", nil},
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
			csp := resp.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "connect-src 'self';"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			for _, s := range tt.has {
				if !strings.Contains(string(body), s) {
					t.Errorf("body lacks %q", s)
				}
			}
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
	// The Host header never reaches the CSP, a well-formed one included:
	// it is the client's to set, and 'self' already covers the page's own
	// ws: and wss: origin.
	for _, host := range []string{"evil; script-src *", "evil.example:8080", "[::1]:9"} {
		req := httptest.NewRequest(http.MethodGet, "/inbox", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		widget.InboxHandler().ServeHTTP(rec, req)
		if csp := rec.Header().Get("Content-Security-Policy"); strings.Contains(csp, "evil") || strings.Contains(csp, "::1") {
			t.Errorf("CSP took the Host header %q: %q", host, csp)
		}
	}
}

// TestInboxRendersTextSafely keeps the inbox from building HTML out of
// strings: customer, rep and integrator text goes in with textContent.
func TestInboxRendersTextSafely(t *testing.T) {
	t.Parallel()
	h := widget.InboxHandler()
	for _, p := range []string{"/inbox/inbox.js", "/inbox", "/inbox/inbox.css"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		body := rec.Body.String()
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
			"http://", "https://", "//cdn", "@import", "url("} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
		if p == "/inbox" && regexp.MustCompile(`<script>|<style>|\son[a-z]+=`).MatchString(body) {
			t.Errorf("inbox.html has inline script, style or handlers (the CSP forbids them)")
		}
	}
}
