// Package wechat is the WeChat official account channel for a whole
// "matrix" of accounts (one per brand, city or product line): the
// callback endpoint every account's server configuration points at, and
// the channels.Adapter that sends reps' replies as customer-service
// messages.
//
// Intake. Each account's callback URL is /channels/wechat/{key}. GET is
// WeChat's handshake (signature checked, echostr echoed). A POST is
// checked before anything is stored: the URL signature (sha1 of the
// sorted token, timestamp and nonce), the timestamp within MaxSkew (5
// minutes) of the server's clock, the nonce not used before with another
// body (Nonces: a bbolt file on one node, Valkey shared by the nodes of a
// cluster, kept across restarts for the window), the Content-Type
// (text/xml, as WeChat sends it), the body size, in safe and
// compatible mode the msg_signature (sha1 of the sorted token, timestamp,
// nonce and ciphertext) and AES decryption for the account's AppID, and
// finally strict XML. Then the message is persisted first (customer by
// OpenID, conversation, message_in event) and only then answered with
// "success", within StoreTimeout (3 s, well under WeChat's 5). WeChat
// retries a message it got no answer for up to three times; the event's
// external id (the account and MsgId, or for events the sender,
// CreateTime and event) makes each land exactly once. What was refused
// is never stored; the answers are catalogued in errors.go.
//
// Identity. An OpenID is per account: IdentityWeChatOpenID, namespaced by
// the account key, verified (WeChat signed it). When the accounts share
// an Open Platform binding, the UnionID names the person across all of
// them: taken from the message, or from the user-info API for a new
// OpenID (in the background, after the answer to WeChat), and linked to
// the customer, or, when another customer already has it, that customer
// absorbs this one (Merge, evidence "wechat_unionid"). One person across
// the matrix is one customer with one open conversation.
//
// Outbound. Send picks, among the customer's OpenIDs, the account the
// customer last wrote to whose 48-hour window is open (Windows, derived
// from the timeline), and refuses before calling WeChat when none is,
// with an *UnreachableError (ErrWindowClosed, ErrUnsubscribed) that names
// the next best channel. Access tokens are one per AppID for all nodes
// (TokenCache: MemoryCache, ValkeyCache), refreshed by one node under a
// lock before expiry, and once more, with one retry, when WeChat rejects
// one (40001, 42001).
//
// Do-not-contact. An unfollow (unsubscribe event) lists the OpenID,
// "<account>:<openid>", on the contact policy's do-not-contact list
// (Options.Suppressions; channel wechat, source wechat_unsubscribe), and a
// follow takes it off (follow.go).
//
// What it must not do: route, or write replies to the timeline (the API
// appends the message_out before calling Send); log an OpenID unmasked;
// fetch an arbitrary URL (images come through Options.Media); or use the
// root package github.com/silenceper/wechat/v2, whose init turns on debug
// logging. Only the officialaccount message, user and customerservice
// types and the util crypto helpers are used (see ServeHTTP and client
// for why not the library's server and credential handling).
//
// Concurrency: every exported method is safe for concurrent use.
// Callbacks run on the HTTP server's goroutines; UnionID lookups run on
// background goroutines (at most 8) that Close waits for. Adapter.mu is a
// leaf lock guarding three small in-memory maps, never held across I/O;
// MemoryCache.mu likewise.
package wechat
