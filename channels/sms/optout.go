package sms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/omnigate/omnigate/contact"
	"github.com/omnigate/omnigate/sessions"
)

// The SMS do-not-contact list is the contact policy's (contact.Suppressions):
// one entry per number that texted an opt-out keyword or that a provider
// reported unsubscribed, Kind phone, Channel sms, no purpose. Outbound
// SMS to a listed number is refused with ErrOptedOut before any provider
// is called, and the policy refuses every contact on sms to it
// (do_not_contact); entries added through the API on channel sms count
// the same.
//
// It is keyed by number, not by customer, on purpose: an opt-out is what
// the handset owner asked of that number, carriers apply it per number, and
// it must survive customer merges and a number moving between customers.

// Sources of the entries this package writes (contact.Suppression.Source).
const (
	SourceStop     = "sms_stop"     // the customer texted an opt-out keyword
	SourceProvider = "sms_provider" // a provider reported the number unsubscribed
)

// optOutEntry is the list's entry for number.
func optOutEntry(number, source, reason string, at time.Time) contact.Suppression {
	return contact.Suppression{Kind: contact.KindPhone, Value: number, Channel: sessions.ChannelSMS,
		Source: source, Reason: reason, At: at}
}

// optedOut reports whether number has opted out of SMS: an entry for it
// on channel sms and every purpose. A global entry (no channel) is the
// policy's to refuse, not an SMS opt-out.
func (a *Adapter) optedOut(ctx context.Context, number string) (bool, error) {
	sups, err := a.sups.Match(ctx, []contact.Key{{Kind: contact.KindPhone, Value: number}}, sessions.ChannelSMS, "")
	if err != nil {
		return false, fmt.Errorf("checking the opt-out list: %w", err)
	}
	for _, s := range sups {
		if s.Channel == sessions.ChannelSMS && s.Purpose == "" {
			return true, nil
		}
	}
	return false, nil
}

// optOut lists number; changed is false when it already was, so a
// confirmation is sent once however often STOP arrives. kwMu makes the
// check and the add one step on this node; two nodes taking two STOPs
// from one number at the same instant may both confirm.
func (a *Adapter) optOut(ctx context.Context, s contact.Suppression) (changed bool, err error) {
	a.kwMu.Lock()
	defer a.kwMu.Unlock()
	listed, err := a.optedOut(ctx, s.Value)
	if err != nil || listed {
		return false, err
	}
	if err := a.sups.Add(ctx, s); err != nil {
		return false, fmt.Errorf("opting out: %w", err)
	}
	return true, nil
}

// optIn takes number off the list; changed is false when it was not on it.
func (a *Adapter) optIn(ctx context.Context, number string) (changed bool, err error) {
	a.kwMu.Lock()
	defer a.kwMu.Unlock()
	err = a.sups.Remove(ctx, contact.KindPhone, number, sessions.ChannelSMS, "")
	if errors.Is(err, contact.ErrNoSuppression) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("opting in: %w", err)
	}
	return true, nil
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
