// Package wechattest is a fake WeChat API server for tests of the wechat
// channel and of gateways that embed it. It speaks the real formats (the
// token endpoint, customer-service send, typing, user info and media
// upload) with WeChat's real errcodes and errmsgs. It must not be used
// outside tests. A Server is safe for concurrent use.
package wechattest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Server is an httptest server that speaks the WeChat API. Like WeChat,
// it keeps older tokens valid after issuing a new one (the grace period)
// until a test revokes them.
type Server struct {
	// URL is the base URL to put in an account's api_base_url.
	URL string

	srv        *httptest.Server
	mu         sync.Mutex
	secrets    map[string]string            // appid -> secret
	valid      map[string]string            // token -> appid
	issued     map[string]int               // appid -> tokens issued
	unionIDs   map[string]map[string]string // appid -> openid -> unionid ("" = not bound)
	sends      []Call
	typings    []Call
	uploads    int
	calls      int              // every call but the token endpoint
	failNext   map[string][]int // path -> errcodes to answer next, in order
	tokenDelay time.Duration
}

// Call is one accepted customer-service message or typing command.
type Call struct {
	// AppID is the account whose access token the call carried.
	AppID string
	// AccessToken is the token the call carried.
	AccessToken string
	Body        map[string]any
}

// WeChat's errmsgs for the codes the fake answers with.
var errmsgs = map[int]string{
	40001: "invalid credential, access_token is invalid or not latest rid: 6582d0a0-1a2b3c4d-5e6f7a8b",
	40003: "invalid openid rid: 6582d0a0-1a2b3c4d-5e6f7a8c",
	40125: "invalid appsecret rid: 6582d0a0-1a2b3c4d-5e6f7a8d",
	41001: "access_token missing rid: 6582d0a0-1a2b3c4d-5e6f7a8e",
	43004: "require subscribe rid: 6582d0a0-1a2b3c4d-5e6f7a8f",
	45015: "response out of time limit or subscription is canceled rid: 6582d0a0-1a2b3c4d-5e6f7a90",
	45047: "out of response count limit rid: 6582d0a0-1a2b3c4d-5e6f7a91",
}

// New starts a fake WeChat API server, closed when the test ends.
func New(t testing.TB) *Server {
	f := &Server{secrets: map[string]string{}, valid: map[string]string{}, issued: map[string]int{},
		unionIDs: map[string]map[string]string{}, failNext: map[string][]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/token", f.token)
	mux.HandleFunc("POST /cgi-bin/message/custom/send", f.authed(f.send))
	mux.HandleFunc("POST /cgi-bin/message/custom/typing", f.authed(f.typing))
	mux.HandleFunc("GET /cgi-bin/user/info", f.authed(f.userInfo))
	mux.HandleFunc("POST /cgi-bin/media/upload", f.authed(f.upload))
	f.srv = httptest.NewServer(mux)
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// AddApp registers an official account, or changes its secret (as
// rotating the AppSecret in the console does).
func (f *Server) AddApp(appID, secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[appID] = secret
	if f.unionIDs[appID] == nil {
		f.unionIDs[appID] = map[string]string{}
	}
}

// Follower registers openID as a follower of appID, with a UnionID when
// the account is bound to an Open Platform.
func (f *Server) Follower(appID, openID, unionID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unionIDs[appID][openID] = unionID
}

// Revoke makes every token of appID invalid, as a token fetched elsewhere
// (another tool with the AppSecret) does after the grace period.
func (f *Server) Revoke(appID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for tok, app := range f.valid {
		if app == appID {
			delete(f.valid, tok)
		}
	}
}

// Fail makes the next calls to path answer the errcodes, in order.
func (f *Server) Fail(path string, codes ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[path] = append(f.failNext[path], codes...)
}

// SetTokenDelay makes the token endpoint wait d before answering, so
// concurrent fetches overlap.
func (f *Server) SetTokenDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenDelay = d
}

// TokensIssued is how many access tokens appID was given.
func (f *Server) TokensIssued(appID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued[appID]
}

// Sent is every customer-service message accepted, in order.
func (f *Server) Sent() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.sends...)
}

// Typed is every typing command accepted, in order.
func (f *Server) Typed() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.typings...)
}

// APICalls counts every call but those to the token endpoint.
func (f *Server) APICalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func errcode(w http.ResponseWriter, code int) {
	writeJSON(w, map[string]any{"errcode": code, "errmsg": errmsgs[code]})
}

func (f *Server) token(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	delay := f.tokenDelay
	f.mu.Unlock()
	time.Sleep(delay) // lets concurrent nodes overlap
	f.mu.Lock()
	defer f.mu.Unlock()
	secret, ok := f.secrets[q.Get("appid")]
	if q.Get("grant_type") != "client_credential" || !ok || secret != q.Get("secret") {
		errcode(w, 40125)
		return
	}
	app := q.Get("appid")
	f.issued[app]++
	tok := fmt.Sprintf("ACCESS_TOKEN_%s_%d", app, f.issued[app])
	f.valid[tok] = app
	writeJSON(w, map[string]any{"access_token": tok, "expires_in": 7200})
}

// authed checks the access token and scripted failures, then calls h with
// the token's AppID.
func (f *Server) authed(h func(w http.ResponseWriter, r *http.Request, c Call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls++
		tok := r.URL.Query().Get("access_token")
		app, ok := f.valid[tok]
		var scripted int
		if q := f.failNext[r.URL.Path]; ok && len(q) > 0 {
			scripted, f.failNext[r.URL.Path] = q[0], q[1:]
		}
		f.mu.Unlock()
		switch {
		case tok == "":
			errcode(w, 41001)
		case !ok:
			errcode(w, 40001)
		case scripted != 0:
			errcode(w, scripted)
		default:
			h(w, r, Call{AppID: app, AccessToken: tok})
		}
	}
}

func (f *Server) send(w http.ResponseWriter, r *http.Request, c Call) {
	if err := json.NewDecoder(r.Body).Decode(&c.Body); err != nil || c.Body["touser"] == "" {
		writeJSON(w, map[string]any{"errcode": 44002, "errmsg": "empty post data"})
		return
	}
	f.mu.Lock()
	f.sends = append(f.sends, c)
	f.mu.Unlock()
	writeJSON(w, map[string]any{"errcode": 0, "errmsg": "ok"})
}

func (f *Server) typing(w http.ResponseWriter, r *http.Request, c Call) {
	if err := json.NewDecoder(r.Body).Decode(&c.Body); err != nil {
		writeJSON(w, map[string]any{"errcode": 44002, "errmsg": "empty post data"})
		return
	}
	f.mu.Lock()
	f.typings = append(f.typings, c)
	f.mu.Unlock()
	writeJSON(w, map[string]any{"errcode": 0, "errmsg": "ok"})
}

func (f *Server) userInfo(w http.ResponseWriter, r *http.Request, c Call) {
	openID := r.URL.Query().Get("openid")
	f.mu.Lock()
	unionID, ok := f.unionIDs[c.AppID][openID]
	f.mu.Unlock()
	if !ok {
		errcode(w, 40003)
		return
	}
	info := map[string]any{"subscribe": 1, "openid": openID, "language": "zh_CN", "subscribe_time": 1382694957,
		"remark": "", "groupid": 0, "tagid_list": []int{}, "subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": 98765, "qr_scene_str": ""}
	if unionID != "" {
		info["unionid"] = unionID
	}
	writeJSON(w, info)
}

func (f *Server) upload(w http.ResponseWriter, r *http.Request, c Call) {
	file, _, err := r.FormFile("media")
	if err != nil || r.URL.Query().Get("type") != "image" {
		writeJSON(w, map[string]any{"errcode": 41005, "errmsg": "media data missing"})
		return
	}
	b, _ := io.ReadAll(file)
	f.mu.Lock()
	f.uploads++
	n := f.uploads
	f.mu.Unlock()
	writeJSON(w, map[string]any{"type": "image", "media_id": fmt.Sprintf("MEDIA_%d_%d", n, len(b)), "created_at": time.Now().Unix()})
}
