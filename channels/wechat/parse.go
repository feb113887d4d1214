package wechat

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/silenceper/wechat/v2/officialaccount/message"

	"github.com/omnigate/omnigate/sessions"
)

// Payload is the payload of the message_in event a WeChat callback
// becomes: a sessions.Message (text, media), so every reader of messages
// understands it, plus what WeChat said in WeChat's terms.
type Payload struct {
	sessions.Message
	WeChat Inbound `json:"wechat"`
}

// Inbound is what WeChat delivered, beyond the text and media.
type Inbound struct {
	// Account is the key of the official account the customer wrote to.
	Account string `json:"account"`
	// MsgType is WeChat's MsgType: text, image, voice, video, shortvideo,
	// location, link, event, ...
	MsgType string `json:"msg_type"`
	// MsgID is WeChat's MsgId; empty for events.
	MsgID string `json:"msg_id,omitempty"`
	// CreateTime is WeChat's time of the message, Unix seconds. The
	// 48-hour window is counted from it.
	CreateTime int64 `json:"create_time"`
	// MediaID fetches an image, voice or video from WeChat's temporary
	// media API for three days; ThumbMediaID its thumbnail; Format the
	// voice codec.
	MediaID      string `json:"media_id,omitempty"`
	ThumbMediaID string `json:"thumb_media_id,omitempty"`
	Format       string `json:"format,omitempty"`
	// Event is set for events: subscribe, unsubscribe, SCAN, CLICK, VIEW.
	Event string `json:"event,omitempty"`
	// EventKey is the menu key (CLICK), the URL (VIEW) or the QR code's
	// key (subscribe "qrscene_...", SCAN).
	EventKey string `json:"event_key,omitempty"`
	// Scene is the QR code's scene value for a follow or scan through a
	// parametric QR code, recorded for attribution (campaign, store,
	// poster). Empty for a plain follow.
	Scene string `json:"scene,omitempty"`
	// Ticket identifies the QR code.
	Ticket string `json:"ticket,omitempty"`
	// Latitude, Longitude and Scale of a location message.
	Latitude  float64 `json:"latitude,omitempty"`
	Longitude float64 `json:"longitude,omitempty"`
	Scale     float64 `json:"scale,omitempty"`
}

// Events stored on the timeline; others (LOCATION reports, job-finished
// notices, ...) are acknowledged and dropped.
const (
	eventSubscribe   = string(message.EventSubscribe)
	eventUnsubscribe = string(message.EventUnsubscribe)
	eventScan        = string(message.EventScan)
	eventClick       = string(message.EventClick)
	eventView        = string(message.EventView)
)

var storedEvents = map[string]bool{
	eventSubscribe: true, eventUnsubscribe: true, eventScan: true, eventClick: true, eventView: true,
}

// opensWindow reports whether an inbound lets the account send
// customer-service messages for the next 48 hours: per WeChat, a message
// from the customer, a follow, a QR scan or a click menu (not a VIEW menu,
// which only opens a page).
func (in Inbound) opensWindow() bool {
	if in.MsgType != string(message.MsgTypeEvent) {
		return true
	}
	switch in.Event {
	case eventSubscribe, eventScan, eventClick:
		return true
	}
	return false
}

// opensConversation reports whether the inbound is something a rep should
// answer: a message. Events are recorded on the timeline only.
func (in Inbound) opensConversation() bool { return in.MsgType != string(message.MsgTypeEvent) }

var errXML = errors.New("wechat: malformed message")

// parseXML decodes one WeChat XML document strictly: well-formed UTF-8,
// one root element <xml>, nothing but whitespace, comments and an XML
// declaration around it, and no DTD (encoding/xml never expands external
// entities, and a DOCTYPE has no business in a callback). Unknown child
// elements are allowed: WeChat adds fields over time.
func parseXML(b []byte, v any) error {
	if !utf8.Valid(b) {
		return fmt.Errorf("%w: not UTF-8", errXML)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	root := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", errXML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root {
				return fmt.Errorf("%w: more than one root element", errXML)
			}
			if t.Name.Local != "xml" || t.Name.Space != "" {
				return fmt.Errorf("%w: root element is <%s>, not <xml>", errXML, t.Name.Local)
			}
			if err := d.DecodeElement(v, &t); err != nil {
				return fmt.Errorf("%w: %v", errXML, err)
			}
			root = true
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("%w: text outside the root element", errXML)
			}
		case xml.Directive:
			return fmt.Errorf("%w: DTDs and directives are not accepted", errXML)
		case xml.ProcInst:
			if t.Target != "xml" || root {
				return fmt.Errorf("%w: processing instruction <?%s?>", errXML, t.Target)
			}
		case xml.Comment:
		}
	}
	if !root {
		return fmt.Errorf("%w: no <xml> element", errXML)
	}
	return nil
}

// envelope is the outer document of an encrypted callback.
type envelope struct {
	XMLName    xml.Name `xml:"xml"`
	ToUserName string   `xml:"ToUserName"`
	Encrypt    string   `xml:"Encrypt"`
}

// parseMessage decodes and checks a (decrypted) message.
func parseMessage(b []byte) (*message.MixMessage, error) {
	var m message.MixMessage
	if err := parseXML(b, &m); err != nil {
		return nil, err
	}
	from := string(m.FromUserName)
	switch {
	case from == "" || len(from) > 128 || strings.ContainsAny(from, "|\r\n\t "):
		return nil, fmt.Errorf("%w: FromUserName is missing or not an OpenID", errXML)
	case m.ToUserName == "":
		return nil, fmt.Errorf("%w: ToUserName is missing", errXML)
	case m.MsgType == "":
		return nil, fmt.Errorf("%w: MsgType is missing", errXML)
	case m.CreateTime <= 0:
		return nil, fmt.Errorf("%w: CreateTime is missing", errXML)
	case m.MsgType == message.MsgTypeEvent && m.Event == "":
		return nil, fmt.Errorf("%w: event without Event", errXML)
	case len(m.UnionID) > 128 || strings.ContainsAny(m.UnionID, "|\r\n\t "):
		return nil, fmt.Errorf("%w: UnionId is not a UnionID", errXML)
	case !finite(m.LocationX) || !finite(m.LocationY) || !finite(m.Scale):
		return nil, fmt.Errorf("%w: a location is not a finite number", errXML)
	}
	return &m, nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// inbound turns a parsed message into the event payload. stored is false
// for events that are not recorded.
func inbound(account string, m *message.MixMessage) (p Payload, stored bool) {
	in := Inbound{Account: account, MsgType: string(m.MsgType), CreateTime: m.CreateTime}
	if m.MsgID != 0 {
		in.MsgID = strconv.FormatInt(m.MsgID, 10)
	}
	var msg sessions.Message
	switch m.MsgType {
	case message.MsgTypeText:
		msg.Text = m.Content
	case message.MsgTypeImage:
		msg.Media = []sessions.Media{{Type: "image", URL: m.PicURL}}
		in.MediaID = m.MediaID
	case message.MsgTypeVoice:
		// Recognition is present when the account turned on speech
		// recognition; reps then read the voice message.
		msg.Media = []sessions.Media{{Type: "voice", Text: m.Recognition}}
		in.MediaID, in.Format = m.MediaID, m.Format
	case message.MsgTypeVideo, message.MsgTypeShortVideo:
		msg.Media = []sessions.Media{{Type: "video"}}
		in.MediaID, in.ThumbMediaID = m.MediaID, m.ThumbMediaID
	case message.MsgTypeLocation:
		// A geo URI (RFC 5870) opens in any map.
		geo := "geo:" + strconv.FormatFloat(m.LocationX, 'f', -1, 64) + "," + strconv.FormatFloat(m.LocationY, 'f', -1, 64)
		msg.Media = []sessions.Media{{Type: "location", URL: geo, Text: m.Label}}
		in.Latitude, in.Longitude, in.Scale = m.LocationX, m.LocationY, m.Scale
	case message.MsgTypeLink:
		msg.Media = []sessions.Media{{Type: "link", URL: m.URL, Name: m.Title, Text: m.Description}}
	case message.MsgTypeEvent:
		in.Event = string(m.Event)
		if !storedEvents[in.Event] {
			return Payload{}, false
		}
		in.EventKey, in.Ticket = m.EventKey, m.Ticket
		switch in.Event {
		case eventSubscribe:
			in.Scene, _ = strings.CutPrefix(m.EventKey, "qrscene_")
		case eventScan:
			in.Scene = m.EventKey
		}
	default:
		// Another kind of message (a mini-program card, ...): recorded so
		// a rep sees the customer wrote, with its type.
	}
	return Payload{Message: msg, WeChat: in}, true
}

// externalID is the idempotency key of an inbound: the account and MsgId
// for messages; for events (which have no MsgId) the sender, CreateTime,
// event and key, as WeChat recommends, hashed so no OpenID sits in the
// key. The account is part of it because MsgIds are only promised unique
// per account, and after a UnionID merge one timeline holds several.
func externalID(account string, m *message.MixMessage) string {
	if m.MsgID != 0 {
		return account + ":msg:" + strconv.FormatInt(m.MsgID, 10)
	}
	h := sha256.New()
	for _, s := range []string{string(m.FromUserName), strconv.FormatInt(m.CreateTime, 10), string(m.MsgType), string(m.Event), m.EventKey} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return account + ":evt:" + hex.EncodeToString(h.Sum(nil)[:12])
}
