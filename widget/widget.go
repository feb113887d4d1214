package widget

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"time"
)

// files holds everything served. To add a folder (the rep inbox), name it
// here and route to it in Handler.
//
//go:embed widget.js widget.css demo.html
var files embed.FS

// Options configure the demo page.
type Options struct {
	// DemoSite is the data-site of the widget on the demo page: a site of
	// the webchat configuration whose allowed origins include the gateway
	// itself (an empty allowed_origins list does). Empty means "demo".
	DemoSite string
	// DemoLang is the demo page's data-lang: "zh", "en", or empty for the
	// browser's language.
	DemoLang string
}

// asset is one file ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
	cache string
}

// Handler serves GET and HEAD of /widget.js, /widget.css and / (the demo
// page); anything else is 404. Mount it for exactly those paths, e.g.
//
//	mux.Handle("GET /widget.js", h)
//	mux.Handle("GET /widget.css", h)
//	mux.Handle("GET /{$}", h)
func Handler(o Options) (http.Handler, error) {
	if o.DemoSite == "" {
		o.DemoSite = "demo"
	}
	tpl, err := template.ParseFS(files, "demo.html")
	if err != nil {
		return nil, fmt.Errorf("widget: demo page: %w", err)
	}
	var demo bytes.Buffer
	if err := tpl.Execute(&demo, struct{ Site, Lang string }{o.DemoSite, o.DemoLang}); err != nil {
		return nil, fmt.Errorf("widget: demo page: %w", err)
	}
	h := handler{}
	for name, ctype := range map[string]string{
		"widget.js":  "text/javascript; charset=utf-8",
		"widget.css": "text/css; charset=utf-8",
	} {
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		// Sites embed a fixed URL, so these can't be cached for long; the
		// ETag makes a revalidation cheap.
		h["/"+name] = newAsset(b, ctype, "public, max-age=300")
	}
	h["/"] = newAsset(demo.Bytes(), "text/html; charset=utf-8", "no-cache")
	return h, nil
}

func newAsset(b []byte, ctype, cache string) asset {
	sum := sha256.Sum256(b)
	return asset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, cache: cache}
}

type handler map[string]asset

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := h[r.URL.Path]
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
	hd.Set("Content-Type", a.ctype)
	hd.Set("Cache-Control", a.cache)
	hd.Set("ETag", a.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path == "/" {
		// The demo page may not be framed by other sites.
		hd.Set("Content-Security-Policy", "frame-ancestors 'self'")
	}
	// ServeContent answers If-None-Match from the ETag and handles ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
