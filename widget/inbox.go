package widget

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

// inboxFiles is the rep inbox web app: one page, one script, one style
// sheet, plain files edited as they are. It lives apart from the widget's
// files (and this file apart from widget.go) so the two apps change
// independently.
//
//go:embed inbox/inbox.html inbox/inbox.js inbox/inbox.css
//go:embed inbox/dialer.js inbox/campaigns.js inbox/dialer.css
//go:embed inbox/tools.js inbox/call.js
var inboxFiles embed.FS

type inboxFile struct {
	body  []byte
	ctype string
	etag  string
}

// InboxHandler serves the rep inbox app: the page at /inbox (and
// /inbox/), its script at /inbox/inbox.js and style at /inbox/inbox.css;
// any other path is 404. Mount it as
//
//	mux.Handle("GET /inbox", h)
//	mux.Handle("GET /inbox/", h)
//
// next to the rep socket at GET /inbox/ws (package internal/inbox), which
// is the more specific pattern and wins. The page talks to /v1 and
// /inbox/ws of the same origin only; its Content-Security-Policy says so.
func InboxHandler() http.Handler {
	return appHandler(inboxFiles, map[string]appFile{
		"/inbox":           {"inbox/inbox.html", "text/html; charset=utf-8"},
		"/inbox/":          {"inbox/inbox.html", "text/html; charset=utf-8"},
		"/inbox/inbox.js":  {"inbox/inbox.js", "text/javascript; charset=utf-8"},
		"/inbox/inbox.css": {"inbox/inbox.css", "text/css; charset=utf-8"},
		"/inbox/tools.js":  {"inbox/tools.js", "text/javascript; charset=utf-8"},
		// The dialer's pages: the rep's preview card, the supervisors'
		// campaigns page.
		"/inbox/dialer.js":    {"inbox/dialer.js", "text/javascript; charset=utf-8"},
		"/inbox/campaigns.js": {"inbox/campaigns.js", "text/javascript; charset=utf-8"},
		"/inbox/dialer.css":   {"inbox/dialer.css", "text/css; charset=utf-8"},
		// Inbound calls: the ringing card and the outcome form.
		"/inbox/call.js": {"inbox/call.js", "text/javascript; charset=utf-8"},
	})
}

// appFile is an embedded file of a page app and its content type.
type appFile struct{ name, ctype string }

// appHandler serves an app's embedded files by URL path (the inbox, the
// wallboard), with the inbox's headers and CSP.
func appHandler(fsys embed.FS, files map[string]appFile) inboxHandler {
	h := inboxHandler{}
	for path, f := range files {
		b, err := fsys.ReadFile(f.name)
		if err != nil {
			panic(err) // the embed directive names every file; a miss is a build bug
		}
		sum := sha256.Sum256(b)
		h[path] = inboxFile{body: b, ctype: f.ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return h
}

type inboxHandler map[string]inboxFile

// inboxCSP keeps the page to its own origin: no inline script or style,
// no framing. It is the same for every request: nothing the client sends
// (the Host header least of all) goes into it. connect-src 'self' covers
// the page's /v1 calls and its ws: or wss: socket to the same host and
// port, as CSP Level 3 browsers (all current ones) read 'self'.
const inboxCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (h inboxHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := h[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	// Revalidate every time (cheap with the ETag), so a deploy reaches
	// every rep on their next reload.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", inboxCSP)
	hd.Set("X-Frame-Options", "DENY")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
