// Package auth turns a bearer token into a Principal: who is calling and in
// which role. Tokens come from configuration (admin keys, integrator keys,
// one token per rep); there is no user database yet.
//
// Roles, from most to least trusted:
//
//   - admin: operators' API keys; everything.
//   - supervisor: a rep who may also merge customers, set owner, tier and
//     VIP, and act on any rep's conversations.
//   - rep: works conversations that are theirs or nobody's; sees phone
//     numbers masked.
//   - integrator: back-end systems; reads customers and timelines. Events
//     they push (/v1/events) are authenticated by their Standard Webhooks
//     signature (internal/webhooks), not by this package.
//
// What each role may do on each route is decided by the HTTP API; this
// package only says who the caller is. It must not log tokens, and it
// compares them in constant time: every configured token is hashed and
// every hash is compared on every request, so timing tells neither which
// token matched nor how much of one did.
//
// Concurrency: an Authenticator is immutable after New and safe for
// concurrent use.
package auth
