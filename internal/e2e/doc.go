// Package e2e holds end-to-end tests that run the real gateway binary and
// drive it the way people do: a visitor's page with the chat widget and a
// rep's inbox, in a real headless Chromium (github.com/chromedp/chromedp).
//
// It has no non-test code and nothing may import it. The tests build
// ./cmd/gateway into a temporary directory, start it as a child process on a
// free loopback port with a temporary configuration and data directory, and
// stop it by its PID, so they can restart it in the middle of a
// conversation. They are skipped with -short, and skipped when chromium is
// not installed unless CI=true, where a missing browser is a failure
// (scripts/test installs it).
//
// With OMNIGATE_SCREENSHOTS=1 the browser test also writes
// docs/screenshots/widget.png and docs/screenshots/inbox.png; otherwise the
// screenshots go to the test's temporary directory only, so a test run does
// not change the repository.
package e2e
