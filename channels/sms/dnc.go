package sms

import (
	"context"
	"strings"
	"time"
)

// DoNotContact is the SMS do-not-contact list: numbers (E.164) that
// texted an opt-out keyword, or that a provider reported unsubscribed.
// Outbound SMS to a listed number is refused with ErrOptedOut before any
// provider is called.
//
// It is keyed by number, not by customer, on purpose: an opt-out is what
// the handset owner asked of that number, carriers apply it per number, and
// it must survive customer merges and a number moving between customers.
//
// Implementations: MemoryDoNotContact (tests, demos), BoltDoNotContact (one
// node: its own bbolt file beside the store, fsynced), ValkeyDoNotContact
// (a cluster: one hash every node reads). Safe for concurrent use.
type DoNotContact interface {
	// OptOut lists the number; changed is false when it already was, so
	// a confirmation is sent once however often STOP arrives.
	OptOut(ctx context.Context, number string, r OptOut) (changed bool, err error)
	// OptIn takes the number off the list; changed is false when it was
	// not on it.
	OptIn(ctx context.Context, number string) (changed bool, err error)
	// Lookup returns the opt-out of the number, ok false when not listed.
	Lookup(ctx context.Context, number string) (r OptOut, ok bool, err error)
}

// OptOut records why a number is on the list.
type OptOut struct {
	At time.Time `json:"at"`
	// Keyword is what the customer texted ("STOP", "退订"), or
	// "provider" when a provider reported the number unsubscribed.
	Keyword string `json:"keyword"`
	// Provider is the provider the opt-out came through.
	Provider string `json:"provider,omitempty"`
	// MessageID is the inbound message's id, "<provider>:<id>".
	MessageID string `json:"message_id,omitempty"`
}

// keyword is what a message asks of the do-not-contact list.
type keyword int

const (
	noKeyword keyword = iota
	optOutKeyword
	optInKeyword
)

// matchKeyword reports whether text is exactly one of the keywords, after
// trimming spaces, in any case. "STOP please" is a message, not an
// opt-out: carriers match whole messages too.
func matchKeyword(text string, optOut, optIn []string) (keyword, string) {
	t := strings.TrimSpace(text)
	if t == "" || len(t) > 64 {
		return noKeyword, ""
	}
	for _, k := range optOut {
		if strings.EqualFold(t, strings.TrimSpace(k)) {
			return optOutKeyword, strings.TrimSpace(k)
		}
	}
	for _, k := range optIn {
		if strings.EqualFold(t, strings.TrimSpace(k)) {
			return optInKeyword, strings.TrimSpace(k)
		}
	}
	return noKeyword, ""
}
