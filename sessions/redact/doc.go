// Package redact is the one place personal data is masked: phone numbers
// for reps (who dial a customer, not a number) and phone numbers and WeChat
// OpenIDs in logs.
//
// Masking keeps enough to tell two numbers apart on a screen (the country
// code and the last two digits) and nothing that lets a rep call the
// customer around the platform. It must not change anything that is not
// personal data, and it never fails: input it does not understand is masked
// whole rather than passed through.
//
// Every function is pure and safe for concurrent use.
package redact
