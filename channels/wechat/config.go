package wechat

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/omnigate/omnigate/channels/envsecret"
)

// Config is the wechat section of the gateway's configuration: the
// official accounts of the matrix and the limits of their callbacks. Every
// field's comment says what its zero value means.
type Config struct {
	// Accounts are the official accounts answered through this gateway,
	// each at its own callback URL /channels/wechat/{key}. Empty means the
	// channel is off: every callback is 404 and Send finds no account.
	Accounts []Account `yaml:"accounts"`
	// MaxBodyBytes caps one callback request body, encrypted or not. Zero
	// means 32 KiB (a WeChat message is at most a few KiB); at most 60 KiB,
	// below the store's event payload cap. A larger body is refused with
	// 413 and nothing is stored.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxSkew is how far a callback's timestamp may be from this server's
	// clock, either way, and how long its nonce is remembered to refuse a
	// replay. Zero means 5m; at most 15m.
	MaxSkew time.Duration `yaml:"max_skew"`
	// StoreTimeout bounds the store work of one callback (resolve the
	// customer, open the conversation, append). WeChat waits 5 seconds
	// for an answer and then retries, so it must stay well below that.
	// Zero means 3s; at most 4s. On timeout the callback answers 503,
	// nothing half-written stays, and WeChat's retry tries again.
	StoreTimeout time.Duration `yaml:"store_timeout"`
	// APITimeout bounds one call to the WeChat API (token, send, user
	// info, typing, media upload). Zero means 10s.
	APITimeout time.Duration `yaml:"api_timeout"`
	// Window is how long after the customer's last message (or menu
	// click, follow or scan) customer-service messages may be sent.
	// Zero means 48h, WeChat's rule; a smaller value leaves a margin. Send
	// refuses outside it with ErrWindowClosed before calling WeChat.
	Window time.Duration `yaml:"window"`
	// TokenRefreshBefore is how long before an access token expires one
	// node fetches the next one (under a lock shared by all nodes), so no
	// send ever waits on an expired token. Zero means 5m.
	TokenRefreshBefore time.Duration `yaml:"token_refresh_before"`
}

// Mode is an account's message encryption mode, as set in the official
// account's console (消息加解密方式).
type Mode string

const (
	// ModePlain (明文模式): bodies are plain XML; only the URL signature
	// authenticates a request.
	ModePlain Mode = "plain"
	// ModeCompatible (兼容模式): bodies carry both the plain fields and an
	// AES-encrypted copy; the encrypted copy is checked and used.
	ModeCompatible Mode = "compatible"
	// ModeSafe (安全模式): bodies are AES-encrypted and signed
	// (msg_signature); plain bodies are refused. Recommended.
	ModeSafe Mode = "safe"
)

// Account is one official account.
type Account struct {
	// Key names the account in its callback URL (/channels/wechat/{key})
	// and namespaces its customers' OpenIDs, which are per account.
	// Required: 1 to 64 letters, digits, '-' or '_'. Changing it later
	// splits existing customers from their OpenIDs: choose it once.
	Key string `yaml:"key"`
	// AppID is the account's AppID (开发者ID), "wx" and 16 characters.
	// Required. Two accounts may not share one.
	AppID string `yaml:"app_id"`
	// AppSecret is the account's AppSecret, used to fetch access tokens.
	// Set it from the environment through AppSecretEnv, not in the file.
	// Required (one of the two).
	AppSecret    string `yaml:"app_secret"`
	AppSecretEnv string `yaml:"app_secret_env"`
	// Token is the callback token (令牌) entered in the account's server
	// configuration, 3 to 32 letters or digits; it signs every callback.
	// Required (directly or through TokenEnv).
	Token    string `yaml:"token"`
	TokenEnv string `yaml:"token_env"`
	// EncodingAESKey is the 43-character message key (消息加解密密钥).
	// Required in compatible and safe modes; empty in plain mode.
	EncodingAESKey    string `yaml:"encoding_aes_key"`
	EncodingAESKeyEnv string `yaml:"encoding_aes_key_env"`
	// Mode is plain, compatible or safe, as chosen in the console. Empty
	// means plain, WeChat's own default; safe is recommended.
	Mode Mode `yaml:"mode"`
	// APIBaseURL is where the WeChat API is reached. Empty means
	// https://api.weixin.qq.com; tests point it at a fake server, and a
	// deployment behind an egress proxy with a fixed IP (for the
	// account's IP allow-list) may point it at the proxy.
	APIBaseURL string `yaml:"api_base_url"`
}

// DefaultAPIBaseURL is the WeChat API used when an account sets none.
const DefaultAPIBaseURL = "https://api.weixin.qq.com"

const maxBodyCap = 60 << 10

var (
	keyRe   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	appIDRe = regexp.MustCompile(`^wx[0-9A-Za-z]{16}$`)
	tokenRe = regexp.MustCompile(`^[A-Za-z0-9]{3,32}$`)
)

// ResolveEnv fills every secret named by a *_env field from lookup
// (os.LookupEnv in production). A secret comes from the file or the
// environment, never both. Call it before Validate.
func (c *Config) ResolveEnv(lookup func(string) (string, bool)) error {
	env := envsecret.New(lookup)
	for i := range c.Accounts {
		a := &c.Accounts[i]
		f := fmt.Sprintf("wechat: accounts[%d].", i)
		env.Resolve(f+"app_secret_env", &a.AppSecret, a.AppSecretEnv)
		env.Resolve(f+"token_env", &a.Token, a.TokenEnv)
		env.Resolve(f+"encoding_aes_key_env", &a.EncodingAESKey, a.EncodingAESKeyEnv)
	}
	return env.Err()
}

// Validate returns every problem in the configuration at once. Call it
// after ResolveEnv.
func (c Config) Validate() error {
	var errs []error
	keys, apps := map[string]int{}, map[string]int{}
	for i, a := range c.Accounts {
		if err := a.validate(); err != nil {
			errs = append(errs, fmt.Errorf("wechat: accounts[%d]: %w", i, err))
		}
		if j, dup := keys[a.Key]; dup && a.Key != "" {
			errs = append(errs, fmt.Errorf("wechat: accounts[%d]: key %q is also accounts[%d]'s", i, a.Key, j))
		}
		keys[a.Key] = i
		if j, dup := apps[a.AppID]; dup && a.AppID != "" {
			errs = append(errs, fmt.Errorf("wechat: accounts[%d]: app_id %s is also accounts[%d]'s; one account, one key", i, a.AppID, j))
		}
		apps[a.AppID] = i
	}
	if c.MaxBodyBytes < 0 || c.MaxBodyBytes > maxBodyCap {
		errs = append(errs, fmt.Errorf("wechat: max_body_bytes %d is not between 0 and %d", c.MaxBodyBytes, maxBodyCap))
	}
	if c.MaxSkew < 0 || c.MaxSkew > 15*time.Minute {
		errs = append(errs, fmt.Errorf("wechat: max_skew %v is not between 0 and 15m", c.MaxSkew))
	}
	if c.StoreTimeout < 0 || c.StoreTimeout > 4*time.Second {
		errs = append(errs, fmt.Errorf("wechat: store_timeout %v is not between 0 and 4s (WeChat gives up after 5s)", c.StoreTimeout))
	}
	if c.APITimeout < 0 {
		errs = append(errs, fmt.Errorf("wechat: api_timeout %v is negative", c.APITimeout))
	}
	if c.Window < 0 || c.Window > 48*time.Hour {
		errs = append(errs, fmt.Errorf("wechat: window %v is not between 0 and 48h", c.Window))
	}
	if c.TokenRefreshBefore < 0 || c.TokenRefreshBefore > time.Hour {
		errs = append(errs, fmt.Errorf("wechat: token_refresh_before %v is not between 0 and 1h", c.TokenRefreshBefore))
	}
	return errors.Join(errs...)
}

func (a Account) validate() error {
	var errs []error
	if !keyRe.MatchString(a.Key) {
		errs = append(errs, fmt.Errorf("key %q must be 1 to 64 letters, digits, '-' or '_'", a.Key))
	}
	if !appIDRe.MatchString(a.AppID) {
		errs = append(errs, fmt.Errorf("app_id %q is not wx and 16 letters or digits", a.AppID))
	}
	if a.AppSecret == "" {
		errs = append(errs, errors.New("app_secret is missing (set app_secret_env)"))
	}
	if !tokenRe.MatchString(a.Token) {
		errs = append(errs, errors.New("token must be 3 to 32 letters or digits"))
	}
	switch a.Mode {
	case "", ModePlain:
		if a.EncodingAESKey != "" {
			if _, err := aesKey(a.EncodingAESKey); err != nil {
				errs = append(errs, err)
			}
		}
	case ModeCompatible, ModeSafe:
		if _, err := aesKey(a.EncodingAESKey); err != nil {
			errs = append(errs, fmt.Errorf("mode %s: %w", a.Mode, err))
		}
	default:
		errs = append(errs, fmt.Errorf("mode %q is not plain, compatible or safe", a.Mode))
	}
	if a.APIBaseURL != "" {
		u, err := url.Parse(a.APIBaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("api_base_url %q is not an http(s) URL without a query", a.APIBaseURL))
		}
	}
	return errors.Join(errs...)
}

// aesKey decodes an EncodingAESKey: 43 base64 characters for 32 bytes.
func aesKey(s string) ([]byte, error) {
	if len(s) != 43 {
		return nil, errors.New("encoding_aes_key must be 43 characters")
	}
	k, err := base64.StdEncoding.DecodeString(s + "=")
	if err != nil || len(k) != 32 {
		return nil, errors.New("encoding_aes_key is not 43 base64 characters")
	}
	return k, nil
}

// withDefaults returns c with zero values replaced by their documented
// meanings.
func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 32 << 10
	}
	def(&c.MaxSkew, 5*time.Minute)
	def(&c.StoreTimeout, 3*time.Second)
	def(&c.APITimeout, 10*time.Second)
	def(&c.Window, 48*time.Hour)
	def(&c.TokenRefreshBefore, 5*time.Minute)
	accts := make([]Account, len(c.Accounts))
	for i, a := range c.Accounts {
		if a.Mode == "" {
			a.Mode = ModePlain
		}
		if a.APIBaseURL == "" {
			a.APIBaseURL = DefaultAPIBaseURL
		}
		accts[i] = a
	}
	c.Accounts = accts
	return c
}
