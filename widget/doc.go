// Package widget serves the embeddable chat widget, its demo page and the
// rep inbox, from files compiled into the binary with go:embed: no Node.js, no build step,
// no CDN. The files are plain JS, CSS and HTML and are edited as they are.
//
// What it serves (see Handler): /widget.js, the one script a site embeds;
// /widget.css, which widget.js loads into its shadow root; and / , a demo
// page with the widget on it. The widget talks to channels/webchat over
// the protocol in docs/webchat-protocol.md.
//
// The rep inbox (InboxHandler, files in inbox/) is served at /inbox; it
// talks to internal/inbox's socket (docs/inbox-protocol.md) and the REST
// API.
//
// What it must not do: hold state or talk to the store. It is static files
// and one template; everything live goes over the WebSockets.
//
// Concurrency: the Handler is read-only after construction and safe for
// concurrent use.
package widget
