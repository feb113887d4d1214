// Package redact is the one place personal data is masked: phone numbers
// for reps (who dial a customer, not a number) and phone numbers and WeChat
// OpenIDs in logs.
//
// Masking keeps enough to tell two numbers apart on a screen (the country
// code and the last two digits) and nothing that lets a rep call the
// customer around the platform. It never fails: input it does not
// understand is masked whole rather than passed through.
//
// Reps are shown text, not fields: a customer writes a number into a
// message, an integrator into a tag or its event data, a rep into a
// conversation's topic, and not in E.164. So masking for reps is by shape,
// over everything a rep receives: Text finds every phone-like sequence in
// free text (its comment defines "phone-like": what is masked, what is
// left alone and why), and JSON applies it to every string, key and number
// of a document. The API and the inbox socket call JSON on the whole
// answer or frame they send a rep, never on chosen fields. Phone and
// OpenID mask one known value, for logs.
//
// Every function is pure and safe for concurrent use.
package redact
