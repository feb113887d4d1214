package wechat_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnigate/omnigate/channels/wechat"
)

// FuzzIntake drives the whole POST path (signature, freshness, replay
// guard, size limit, decryption, strict XML, persisting) with arbitrary
// bodies, plain (to a plain-mode account) or encrypted for a safe-mode
// account so the fuzzer reaches the parser behind the AES layer. Every
// answer must be "success" or a catalogued 4xx (never a 5xx or a panic),
// and delivering the same body again (WeChat's retry) must get the same
// answer.
func FuzzIntake(f *testing.F) {
	now := time.Now()
	seeds := []string{
		docTextSample,
		textXML("oFuzz", now, 1, "我的快递还没到"),
		"<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[this is a url]]></PicUrl><MediaId><![CDATA[media_id]]></MediaId><MsgId>1234567890123456</MsgId></xml>",
		"<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName><CreateTime>1357290913</CreateTime><MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[Format]]></Format><Recognition><![CDATA[腾讯微信团队]]></Recognition><MsgId>1234567890123456</MsgId></xml>",
		"<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName><CreateTime>1351776360</CreateTime><MsgType><![CDATA[location]]></MsgType><Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[位置信息]]></Label><MsgId>1234567890123456</MsgId></xml>",
		"<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName><CreateTime>1351776360</CreateTime><MsgType><![CDATA[link]]></MsgType><Title><![CDATA[公众平台官网链接]]></Title><Description><![CDATA[公众平台官网链接]]></Description><Url><![CDATA[url]]></Url><MsgId>1234567890123456</MsgId></xml>",
		"<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]></FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>",
		"<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]></FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[www.qq.com]]></EventKey></xml>",
		"<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>location</MsgType><Location_X>NaN</Location_X></xml>",
		`<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e "x">]><xml>&e;</xml>`,
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	e := newEnv(f, []wechat.Account{acctA, acctB}, func(_ *wechat.Config, o *wechat.Options) { o.Logger = nil })
	f.Fuzz(func(t *testing.T, body []byte, encrypted bool) {
		post := func() *httptest.ResponseRecorder {
			acct, payload := acctB, string(body)
			q := signedQuery(acct.Token, time.Now(), nonce())
			if encrypted {
				acct = acctA
				q = signedQuery(acct.Token, time.Now(), nonce())
				payload, q = encrypt(t, acct, q, payload, "")
			}
			r := httptest.NewRequest(http.MethodPost, "/channels/wechat/"+acct.Key+"?"+q.Encode(), strings.NewReader(payload))
			r.Header.Set("Content-Type", "text/xml")
			w := httptest.NewRecorder()
			e.mux.ServeHTTP(w, r)
			return w
		}
		first := post()
		switch first.Code {
		case http.StatusOK:
			if first.Body.String() != "success" {
				t.Fatalf("200 with %q", first.Body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d %s for %q", first.Code, first.Body, body)
		}
		if again := post(); again.Code != first.Code {
			t.Fatalf("redelivery answered %d, first %d, for %q", again.Code, first.Code, body)
		}
	})
}
