package wechat

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/silenceper/wechat/v2/officialaccount/message"
	"github.com/silenceper/wechat/v2/util"

	"github.com/omnigate/omnigate/sessions"
	"github.com/omnigate/omnigate/sessions/redact"
)

var (
	timestampRe = regexp.MustCompile(`^[0-9]{1,12}$`)
	nonceRe     = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
	sigRe       = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// signed is a callback whose URL signature checked out.
type signed struct {
	timestamp string
	nonce     string
}

// verify checks the URL signature, sha1 of the sorted token, timestamp and
// nonce, and that the timestamp is within MaxSkew of now.
func (a *Adapter) verify(q url.Values, acct *account) (signed, *callbackError) {
	s := signed{timestamp: q.Get("timestamp"), nonce: q.Get("nonce")}
	sig := q.Get("signature")
	if !timestampRe.MatchString(s.timestamp) || !nonceRe.MatchString(s.nonce) || sig == "" {
		return s, &errBadQuery
	}
	if !sigEqual(util.Signature(acct.Token, s.timestamp, s.nonce), sig) {
		return s, &errBadSignature
	}
	ts, _ := strconv.ParseInt(s.timestamp, 10, 64)
	if skew := a.now().Sub(time.Unix(ts, 0)); skew > a.cfg.MaxSkew || skew < -a.cfg.MaxSkew {
		return s, &errStale
	}
	return s, nil
}

func sigEqual(want, got string) bool {
	return sigRe.MatchString(got) && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// handshake answers WeChat's server check (服务器配置): a signed GET whose
// echostr is echoed back. The same in every mode.
func (a *Adapter) handshake(w http.ResponseWriter, r *http.Request, acct *account) {
	q := r.URL.Query()
	if _, cerr := a.verify(q, acct); cerr != nil {
		a.refuse(w, acct, cerr)
		return
	}
	echo := q.Get("echostr")
	if echo == "" || len(echo) > 256 {
		a.refuse(w, acct, &errBadQuery)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.WriteString(w, echo)
}

// receive takes one message or event: check, decrypt, parse, persist, and
// only then answer "success". Anything refused is refused before the
// store is touched.
func (a *Adapter) receive(w http.ResponseWriter, r *http.Request, acct *account) {
	q := r.URL.Query()
	s, cerr := a.verify(q, acct)
	if cerr != nil {
		a.refuse(w, acct, cerr)
		return
	}
	if a.closed.Load() {
		errShutdown.write(w)
		return
	}
	if !xmlContentType(r.Header.Get("Content-Type")) {
		a.refuse(w, acct, &errContentType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(a.cfg.MaxBodyBytes)))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			a.refuse(w, acct, &errTooLarge)
		} else {
			a.refuse(w, acct, &errBadQuery)
		}
		return
	}
	// The store work gets its own deadline, and is not cut short if WeChat
	// hangs up: its retry then finds the message stored.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), a.cfg.StoreTimeout)
	defer cancel()

	digest := sha256.Sum256(body)
	fresh, err := a.nonces.RememberNonce(ctx, acct.Key+":"+s.timestamp+":"+s.nonce, hex.EncodeToString(digest[:]), 2*a.cfg.MaxSkew)
	if err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "wechat: nonce cache unavailable", slog.String("account", acct.Key), slog.Any("error", err))
		a.met.callbacks.WithLabelValues(resultFailed).Inc()
		errStore.write(w)
		return
	}
	if !fresh {
		a.refuse(w, acct, &errReplay)
		return
	}

	plain, cerr := a.open(q, s, acct, body)
	if cerr != nil {
		a.refuse(w, acct, cerr)
		return
	}
	m, err := parseMessage(plain)
	if err != nil {
		a.log.LogAttrs(ctx, slog.LevelInfo, "wechat: callback refused", slog.String("account", acct.Key),
			slog.String("reason", errMalformed.code), slog.String("detail", err.Error()))
		a.met.callbacks.WithLabelValues(resultRefused).Inc()
		errMalformed.write(w)
		return
	}
	p, stored := inbound(acct.Key, m)
	if !stored {
		a.log.LogAttrs(ctx, slog.LevelDebug, "wechat: event not recorded", slog.String("account", acct.Key), slog.String("event", string(m.Event)))
		a.met.callbacks.WithLabelValues(resultIgnored).Inc()
		success(w)
		return
	}
	res, err := a.persist(ctx, acct, m, p)
	if err == nil {
		// Also for a duplicate: a retry finishes what a failure cut short.
		err = a.follow(ctx, acct.Key, string(m.FromUserName), p.WeChat.Event, a.now())
	}
	if err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "wechat: message not stored; WeChat will retry",
			slog.String("account", acct.Key), slog.String("openid", redact.OpenID(string(m.FromUserName))), slog.Any("error", err))
		a.met.callbacks.WithLabelValues(resultFailed).Inc()
		errStore.write(w)
		return
	}
	if !res.appended {
		a.met.callbacks.WithLabelValues(resultDuplicate).Inc()
		success(w)
		return
	}
	a.met.callbacks.WithLabelValues(resultStored).Inc()
	a.afterStore(ctx, acct, m, p, res)
	success(w)
}

// xmlContentType reports whether a callback's Content-Type declares XML.
// WeChat sends text/xml on every callback, in every mode; application/xml
// is the same thing by RFC 7303. No header at all is refused too: no
// WeChat server omits it, and by RFC 9110 a body without one is
// application/octet-stream, not XML.
func xmlContentType(v string) bool {
	t, _, err := mime.ParseMediaType(v)
	return err == nil && (t == "text/xml" || t == "application/xml")
}

// success is the answer WeChat expects when there is no passive reply:
// the literal "success", never encrypted, in every mode. Replies from reps
// go out later as customer-service messages.
func success(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "success")
}

func (a *Adapter) refuse(w http.ResponseWriter, acct *account, cerr *callbackError) {
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "wechat: callback refused",
		slog.String("account", acct.Key), slog.String("reason", cerr.code))
	a.met.callbacks.WithLabelValues(resultRefused).Inc()
	cerr.write(w)
}

// open returns the message XML of a callback body: the body itself in
// plain mode (and in compatible mode when WeChat did not encrypt), or the
// decrypted <Encrypt> element, after checking its msg_signature (sha1 of
// the sorted token, timestamp, nonce and ciphertext) and that it was
// encrypted for this account's AppID.
func (a *Adapter) open(q url.Values, s signed, acct *account, body []byte) ([]byte, *callbackError) {
	encrypted := q.Get("encrypt_type") == "aes"
	switch {
	case acct.Mode == ModePlain && encrypted:
		return nil, &errEncrypted
	case acct.Mode == ModeSafe && !encrypted:
		return nil, &errNotEncrypted
	case !encrypted:
		return body, nil
	}
	var env envelope
	if err := parseXML(body, &env); err != nil {
		return nil, &errMalformed
	}
	if env.Encrypt == "" {
		return nil, &errNotEncrypted
	}
	if !sigEqual(util.Signature(acct.Token, s.timestamp, s.nonce, env.Encrypt), q.Get("msg_signature")) {
		return nil, &errBadSignature
	}
	// DecryptMsg checks the padding, the length prefix and that the AppID
	// at the end is this account's, and recovers from its own panics.
	_, plain, err := util.DecryptMsg(acct.AppID, env.Encrypt, acct.EncodingAESKey)
	if err != nil {
		return nil, &errDecrypt
	}
	return plain, nil
}

// stored is what persist did.
type stored struct {
	customerID string
	created    bool // the OpenID was new: its customer was created now
	appended   bool
	seq        uint64
}

// persist resolves the sender to a customer and appends the message_in,
// idempotent by externalID; a message (not an event such as a follow)
// joins the customer's active conversation, or one opened with it in the
// same store write. A merge landing between the two steps (ErrMerged)
// starts over with the customer the OpenID now belongs to.
func (a *Adapter) persist(ctx context.Context, acct *account, m *message.MixMessage, p Payload) (stored, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return stored{}, err
	}
	oid := openIDIdentity(acct.Key, string(m.FromUserName))
	ev := sessions.Event{Kind: sessions.KindMessageIn, Channel: sessions.ChannelWeChat,
		ExternalID: externalID(acct.Key, m), Author: "customer", Payload: raw}
	for attempt := 0; ; attempt++ {
		c, created, err := a.store.ResolveCustomer(ctx, oid, sessions.Customer{})
		if err == nil {
			ev.CustomerID = c.ID
			var got sessions.Event
			var appended bool
			if p.WeChat.opensConversation() {
				_, got, appended, err = a.store.Intake(ctx, "", ev)
			} else {
				got, appended, err = a.store.Append(ctx, ev)
			}
			if err == nil {
				return stored{customerID: c.ID, created: created, appended: appended, seq: got.Seq}, nil
			}
		}
		if attempt >= 3 || !(errors.Is(err, sessions.ErrMerged) || errors.Is(err, sessions.ErrNotFound)) {
			return stored{}, err
		}
	}
}

func openIDIdentity(account, openID string) sessions.Identity {
	return sessions.Identity{Kind: sessions.IdentityWeChatOpenID, Namespace: account, Value: openID, Verified: true}
}
