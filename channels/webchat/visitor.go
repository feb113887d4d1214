package webchat

import (
	"context"
	"net/url"
	"regexp"
	"strings"

	"github.com/omnigate/omnigate/sessions"
)

// What the gateway knows of an anonymous visitor, kept on a new
// customer's attributes so the inbox can call them something better than
// an id ("Visitor · Shanghai · Chrome") and show the page they wrote
// from. Nothing here is a location: there is no GeoIP database offline,
// so the city is the browser's time zone's (Intl's "Asia/Shanghai" gives
// "Shanghai", for every browser set to China's time), the browser and
// system come from the User-Agent header, and the page from the widget's
// hello (origin and path only: query strings carry tokens and personal
// data).
const (
	AttrBrowser = "visitor_browser"
	AttrOS      = "visitor_os"
	AttrCity    = "visitor_city"
	AttrPage    = "visitor_page"
)

// visitorHints is what a hello and its socket's request say of the
// visitor, each checked or empty.
type visitorHints struct {
	timeZone, page, userAgent string
}

// seed is the customer a new visitor gets.
func (h visitorHints) seed(lang string) sessions.Customer {
	c := sessions.Customer{Locale: lang, TimeZone: h.timeZone, Attributes: map[string]string{}}
	set := func(k, v string) {
		if v != "" {
			c.Attributes[k] = v
		}
	}
	browser, os := parseUserAgent(h.userAgent)
	set(AttrBrowser, browser)
	set(AttrOS, os)
	set(AttrCity, zoneCity(h.timeZone))
	set(AttrPage, h.page)
	if len(c.Attributes) == 0 {
		c.Attributes = nil
	}
	return c
}

var zoneRe = regexp.MustCompile(`^[A-Za-z]+(/[A-Za-z0-9_+-]+){1,2}$`)

// checkZone keeps an IANA zone name ("Asia/Shanghai"), else "".
func checkZone(tz string) string {
	if len(tz) > 64 || !zoneRe.MatchString(tz) || strings.HasPrefix(tz, "Etc/") {
		return ""
	}
	return tz
}

// zoneCity is the zone's city, readable: "America/New_York" → "New York".
func zoneCity(tz string) string {
	if tz == "" {
		return ""
	}
	return strings.ReplaceAll(tz[strings.LastIndex(tz, "/")+1:], "_", " ")
}

// checkPage keeps an http(s) page's origin and path, at most 300 bytes,
// else "".
func checkPage(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return ""
	}
	p := u.Scheme + "://" + u.Host + u.EscapedPath()
	if len(p) > 300 {
		return ""
	}
	return p
}

// parseUserAgent names the browser and system, the common ones only; ""
// for what it does not know. Order matters: Edge and Opera say Chrome
// too, Chrome says Safari, WeChat's browser says both.
func parseUserAgent(ua string) (browser, os string) {
	for _, b := range []struct{ token, name string }{
		{"MicroMessenger/", "WeChat"}, {"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"},
		{"Chrome/", "Chrome"}, {"CriOS/", "Chrome"}, {"Safari/", "Safari"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	for _, o := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iOS"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			return browser, o.name
		}
	}
	return browser, ""
}

// notePage records the page a returning visitor's widget is on, when it
// changed: a profile_changed event on the timeline, which tells the rep
// where the customer went. Failing to is not worth the socket.
func (c *conn) notePage(ctx context.Context, page string) {
	cust, err := c.a.store.Customer(ctx, c.customerID)
	if err != nil || cust.MergedInto != "" || cust.Attributes[AttrPage] == page {
		return
	}
	if _, err := c.a.store.UpdateCustomer(ctx, c.customerID, sessions.CustomerUpdate{
		Attributes: map[string]string{AttrPage: page}, Author: "customer"}); err != nil {
		c.log.Debug("webchat: recording the visitor's page", "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
