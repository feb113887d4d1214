package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/silenceper/wechat/v2/officialaccount/message"
	"github.com/silenceper/wechat/v2/officialaccount/user"
	"github.com/silenceper/wechat/v2/util"
)

// client calls the WeChat API for one account.
//
// It is written here rather than taken from silenceper's officialaccount
// managers because those fetch tokens through the library's own
// credential package (one token per process, refreshed by whichever
// process notices first, through a cache.Cache interface with no lock or
// context) and call a package-global HTTP client with no per-call
// deadline. The request and response types are the library's.
type client struct {
	base   string
	hc     *http.Client
	tokens *tokenSource
	appID  string
	secret string
	now    func() time.Time
	// fetched counts token fetches, for metrics.
	onFetch func(ok bool)
}

// maxAPIResponse caps what is read of one API answer.
const maxAPIResponse = 1 << 20

// fetchToken asks WeChat for a new access token (GET /cgi-bin/token).
func (c *client) fetchToken(ctx context.Context) (Token, error) {
	q := url.Values{"grant_type": {"client_credential"}, "appid": {c.appID}, "secret": {c.secret}}
	var resp struct {
		util.CommonError
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	const api = "/cgi-bin/token"
	err := c.do(ctx, http.MethodGet, api, q, nil, "", &resp)
	if err == nil && resp.ErrCode != 0 {
		err = &APIError{API: api, Code: resp.ErrCode, Message: resp.ErrMsg}
	}
	if err == nil && (resp.AccessToken == "" || resp.ExpiresIn <= 0) {
		err = fmt.Errorf("wechat: %s answered without a token", api)
	}
	if c.onFetch != nil {
		c.onFetch(err == nil)
	}
	if err != nil {
		return Token{}, fmt.Errorf("%w for %s: %w", ErrTokenUnavailable, c.appID, err)
	}
	return Token{Value: resp.AccessToken, Expires: c.now().Add(time.Duration(resp.ExpiresIn) * time.Second)}, nil
}

// call makes an API call with the account's access token, and when WeChat
// refuses the token (40001, 40014, 42001: another fetch replaced it, or it
// expired early), refreshes it once, through the shared lock, and retries
// once. body, when not nil, is sent as JSON, or as is when it is []byte
// (with contentType).
func (c *client) call(ctx context.Context, method, api string, q url.Values, body any, contentType string, out commonErr) error {
	tok, err := c.tokens.get(ctx)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		qq.Set("access_token", tok)
		if err := c.do(ctx, method, api, qq, body, contentType, out); err != nil {
			return err
		}
		code, msg := out.common()
		if code == 0 {
			return nil
		}
		if tokenRejected(code) && attempt == 0 {
			if tok, err = c.tokens.refresh(ctx, tok, true); err != nil {
				return err
			}
			out.reset()
			continue
		}
		return apiError(api, code, msg)
	}
}

// apiError maps an errcode to this package's errors.
func apiError(api string, code int64, msg string) error {
	switch code {
	case codeOutOfWindow:
		return &UnreachableError{Reason: ErrWindowClosed}
	case codeRequireSubscribe:
		return &UnreachableError{Reason: ErrUnsubscribed}
	case codeTooManyMessages:
		return fmt.Errorf("%w: %s", ErrTooManyMessages, api)
	}
	return &APIError{API: api, Code: code, Message: msg}
}

// do sends one request and decodes the JSON answer into out.
func (c *client) do(ctx context.Context, method, api string, q url.Values, body any, contentType string, out any) error {
	var rd io.Reader
	if body != nil {
		if raw, ok := body.([]byte); ok {
			rd = bytes.NewReader(raw) // a fresh reader per attempt
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				return err
			}
			rd, contentType = bytes.NewReader(b), "application/json"
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+api+"?"+q.Encode(), rd)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// The URL holds the access token or the AppSecret: keep it out.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("wechat: %s: %w", api, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse))
	if err != nil {
		return fmt.Errorf("wechat: %s: reading the answer: %w", api, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("wechat: %s: HTTP %d", api, resp.StatusCode)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("wechat: %s: answer is not JSON: %w", api, err)
	}
	return nil
}

// commonErr is a response type that embeds util.CommonError.
type commonErr interface {
	common() (int64, string)
	reset()
}

type sendResp struct {
	util.CommonError
	MsgID int64 `json:"msgid"`
}

func (r *sendResp) common() (int64, string) { return r.ErrCode, r.ErrMsg }
func (r *sendResp) reset()                  { *r = sendResp{} }

type userResp struct{ user.Info }

func (r *userResp) common() (int64, string) { return r.ErrCode, r.ErrMsg }
func (r *userResp) reset()                  { *r = userResp{} }

type uploadResp struct {
	util.CommonError
	Type    string `json:"type"`
	MediaID string `json:"media_id"`
}

func (r *uploadResp) common() (int64, string) { return r.ErrCode, r.ErrMsg }
func (r *uploadResp) reset()                  { *r = uploadResp{} }

// sendMessage posts a customer-service message (/cgi-bin/message/custom/send)
// and returns WeChat's msgid, "" when it gives none.
func (c *client) sendMessage(ctx context.Context, m *message.CustomerMessage) (string, error) {
	var r sendResp
	if err := c.call(ctx, http.MethodPost, "/cgi-bin/message/custom/send", nil, m, "", &r); err != nil {
		return "", err
	}
	if r.MsgID == 0 {
		return "", nil
	}
	return strconv.FormatInt(r.MsgID, 10), nil
}

// typing sends "Typing" or "CancelTyping" (/cgi-bin/message/custom/typing).
func (c *client) typing(ctx context.Context, openID, command string) error {
	var r sendResp
	body := map[string]string{"touser": openID, "command": command}
	return c.call(ctx, http.MethodPost, "/cgi-bin/message/custom/typing", nil, body, "", &r)
}

// userInfo fetches a follower's profile (/cgi-bin/user/info); its UnionID
// is set when the account is bound to an Open Platform account.
func (c *client) userInfo(ctx context.Context, openID string) (user.Info, error) {
	var r userResp
	q := url.Values{"openid": {openID}, "lang": {"zh_CN"}}
	if err := c.call(ctx, http.MethodGet, "/cgi-bin/user/info", q, nil, "", &r); err != nil {
		return user.Info{}, err
	}
	return r.Info, nil
}

// uploadImage uploads a temporary image (/cgi-bin/media/upload, valid 3
// days) and returns its media_id. The image is buffered so the retry
// after a token refresh can send it again.
func (c *client) uploadImage(ctx context.Context, name string, img []byte) (string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("media", name)
	if err != nil {
		return "", err
	}
	if _, err := fw.Write(img); err != nil {
		return "", err
	}
	if err := mw.Close(); err != nil {
		return "", err
	}
	var r uploadResp
	q := url.Values{"type": {"image"}}
	if err := c.call(ctx, http.MethodPost, "/cgi-bin/media/upload", q, buf.Bytes(), mw.FormDataContentType(), &r); err != nil {
		return "", err
	}
	if r.MediaID == "" {
		return "", errors.New("wechat: /cgi-bin/media/upload answered without a media_id")
	}
	return r.MediaID, nil
}
