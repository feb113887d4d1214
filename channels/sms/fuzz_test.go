package sms

import (
	"net/url"
	"testing"
	"unicode/utf8"
)

// FuzzParseTwilioForm feeds arbitrary form bodies and queries to the Twilio
// webhook decoder (what runs after the signature check): it must never
// panic, and what it accepts must be self-consistent.
func FuzzParseTwilioForm(f *testing.F) {
	// Real shapes: an inbound SMS, an MMS, a status callback, a voice call.
	f.Add("ToCountry=CN&ToState=&SmsMessageSid=SM1&NumMedia=0&ToCity=&FromZip=&SmsSid=SM1&FromState=&SmsStatus=received&FromCity=&Body=%E4%BD%A0%E5%A5%BD&FromCountry=CN&To=%2B8610690000&ToZip=&NumSegments=1&MessageSid=SM1&AccountSid=ACtest&From=%2B8613812345678&ApiVersion=2010-04-01", "")
	f.Add("MessageSid=MM1&From=%2B14158675309&To=%2B18005551212&Body=&NumMedia=2&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fm0&MediaContentType0=image%2Fjpeg&MediaUrl1=https%3A%2F%2Fx%2Fm1&MediaContentType1=audio%2Famr", "")
	f.Add("SmsSid=SM2&SmsStatus=delivered&MessageStatus=delivered&To=%2B8613812345678&MessageSid=SM2&AccountSid=ACtest&From=%2B8610690000&ApiVersion=2010-04-01", "event_id=evt_1&conversation_id=cnv_1&segments=2")
	f.Add("MessageSid=SM3&MessageStatus=undelivered&ErrorCode=30005&To=%2B1", "segments=-1")
	f.Add("CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212", "foo=1&bar=2")
	f.Add("NumMedia=99999999999999999999&MessageSid=x&From=y", "")
	f.Fuzz(func(t *testing.T, body, query string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		q, _ := url.ParseQuery(query)
		wh, err := ParseTwilioForm(form, q)
		if err != nil {
			return
		}
		if wh.MessageID == "" || len(wh.MessageID) > 64 {
			t.Fatalf("accepted message id %q", wh.MessageID)
		}
		switch wh.Kind {
		case WebhookMessage:
			if wh.From == "" || len(wh.Media) > 10 {
				t.Fatalf("accepted message %+v", wh)
			}
		case WebhookStatus:
			if wh.Status == "" || len(wh.Status) > 32 || len(wh.ErrorCode) > 32 {
				t.Fatalf("accepted status %+v", wh)
			}
		default:
			t.Fatalf("kind %d", wh.Kind)
		}
		_ = Count(wh.Text)
		_, _ = matchKeyword(wh.Text, []string{"STOP", "退订"}, []string{"START"})
	})
}

// FuzzParseJSONWebhook feeds arbitrary bodies to the json provider's
// decoder.
func FuzzParseJSONWebhook(f *testing.F) {
	f.Add(`{"type":"message","id":"gw-1","from":"+8613812345678","to":"+8610690000","text":"你好"}`)
	f.Add(`{"type":"message","id":"gw-2","from":"13812345678","media":[{"type":"image","url":"https://x/1.jpg"}]}`)
	f.Add(`{"type":"status","id":"gw-3","to":"+8613812345678","status":"delivered","ref":{"event_id":"evt_1","conversation_id":"cnv_1","segments":1}}`)
	f.Add(`{"type":"status","id":"gw-4","status":"FAILED","error_code":"E42"}`)
	f.Add(`{"type":"message","id":"gw-5","from":"+1","extra":true}`)
	f.Add(`{"type":"message","id":"gw-6","from":"+1"} trailing`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		wh, err := ParseJSONWebhook([]byte(body))
		if err != nil {
			return
		}
		if wh.MessageID == "" || len(wh.MessageID) > 128 {
			t.Fatalf("accepted id %q", wh.MessageID)
		}
		if wh.Kind == WebhookMessage && wh.From == "" {
			t.Fatal("accepted a message without a sender")
		}
		if wh.Kind == WebhookStatus && (wh.Status == "" || len(wh.Status) > 32) {
			t.Fatalf("accepted status %q", wh.Status)
		}
		if utf8.ValidString(wh.Text) {
			_ = Count(wh.Text)
		}
	})
}

// FuzzCount checks Count's invariants on any text.
func FuzzCount(f *testing.F) {
	for _, s := range []string{"", "hello", "€€€", "您好", "😀a", "a\x00b", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seg := Count(s)
		if s == "" {
			if seg.Count != 0 {
				t.Fatal("empty text has segments")
			}
			return
		}
		if seg.Count < 1 || seg.Units < 1 {
			t.Fatalf("%+v", seg)
		}
		per := 153
		if seg.Encoding == UCS2 {
			per = 67
		}
		// Never splitting a character wastes at most one unit per part.
		if seg.Count > 1 && seg.Count > (seg.Units+per-2)/(per-1)+1 {
			t.Fatalf("%+v: too many segments for %d units", seg, seg.Units)
		}
	})
}
