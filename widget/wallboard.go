package widget

import (
	"embed"
	"net/http"
)

// wallboardFiles is the supervisors' wallboard: one page, one script, one
// style sheet, no chart library (the charts are SVG the script draws).
//
//go:embed wallboard/wallboard.html wallboard/wallboard.js wallboard/wallboard.css
var wallboardFiles embed.FS

// WallboardHandler serves the wallboard at /wallboard (and /wallboard/),
// its script and style under /wallboard/. The page signs in with a
// supervisor's or admin's token, reads GET /v1/reports/kpis and the
// directory, and follows the inbox socket (/inbox/ws), whose wallboard
// frames carry the live view; the same CSP as the inbox.
func WallboardHandler() http.Handler {
	return appHandler(wallboardFiles, map[string]appFile{
		"/wallboard":               {"wallboard/wallboard.html", "text/html; charset=utf-8"},
		"/wallboard/":              {"wallboard/wallboard.html", "text/html; charset=utf-8"},
		"/wallboard/wallboard.js":  {"wallboard/wallboard.js", "text/javascript; charset=utf-8"},
		"/wallboard/wallboard.css": {"wallboard/wallboard.css", "text/css; charset=utf-8"},
	})
}
