package sessions

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Tier grades a customer for service priority, A highest. The zero value
// means not graded and sorts below D.
type Tier string

const (
	TierA Tier = "A"
	TierB Tier = "B"
	TierC Tier = "C"
	TierD Tier = "D"
)

// Valid reports whether t is one of the grades or empty (not graded).
func (t Tier) Valid() bool {
	switch t {
	case "", TierA, TierB, TierC, TierD:
		return true
	}
	return false
}

// Customer is one person (or company) however many channels they use.
type Customer struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Tier is the service grade; empty means not graded.
	Tier Tier `json:"tier,omitempty"`
	// VIP customers are recognised on first contact on any channel and
	// routed ahead of every tier.
	VIP bool `json:"vip,omitempty"`
	// Owner is the rep id of the customer's dedicated advisor; empty means
	// none, and routing goes straight to the skills rings.
	Owner string   `json:"owner,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	// TimeZone is an IANA zone name used for quiet hours; empty means the
	// deployment's default zone.
	TimeZone string `json:"time_zone,omitempty"`
	// Locale is a BCP 47 tag such as "zh-CN"; empty means unknown.
	Locale     string            `json:"locale,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// MergedInto is set when this customer was merged into another; the
	// record and its timeline are kept for audit but take no new writes.
	MergedInto string    `json:"merged_into,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// CustomerUpdate changes the fields whose pointers are non-nil.
// Attributes are merged key by key; an empty value deletes the key.
type CustomerUpdate struct {
	Name       *string           `json:"name,omitempty"`
	Tier       *Tier             `json:"tier,omitempty"`
	VIP        *bool             `json:"vip,omitempty"`
	Owner      *string           `json:"owner,omitempty"`
	Tags       *[]string         `json:"tags,omitempty"`
	TimeZone   *string           `json:"time_zone,omitempty"`
	Locale     *string           `json:"locale,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// Author is who makes the change, recorded on the profile_changed
	// event ("rep:alice", "admin:ops", "customer", "system"). Not part of
	// the request body: the API sets it from the caller.
	Author string `json:"-"`
}

// ProfileChange is the payload of a profile_changed event: every field
// the update changed, by its JSON name ("tier", "vip", "owner", "name",
// "tags", "time_zone", "locale", "attributes.<key>").
type ProfileChange struct {
	Changes map[string]FieldChange `json:"changes"`
}

// FieldChange is one field's value before and after.
type FieldChange struct {
	From any `json:"from"`
	To   any `json:"to"`
}

// Validate rejects values no store should keep.
func (u CustomerUpdate) Validate() error {
	if u.Tier != nil && !u.Tier.Valid() {
		return fmt.Errorf("%w: tier %q is not one of A, B, C, D", ErrInvalid, *u.Tier)
	}
	if u.TimeZone != nil && *u.TimeZone != "" {
		if _, err := time.LoadLocation(*u.TimeZone); err != nil {
			return fmt.Errorf("%w: time zone %q: %v", ErrInvalid, *u.TimeZone, err)
		}
	}
	return nil
}

// Apply writes u onto c. Stores call it so every implementation updates the
// same way.
func (u CustomerUpdate) Apply(c *Customer, now time.Time) {
	if u.Name != nil {
		c.Name = *u.Name
	}
	if u.Tier != nil {
		c.Tier = *u.Tier
	}
	if u.VIP != nil {
		c.VIP = *u.VIP
	}
	if u.Owner != nil {
		c.Owner = *u.Owner
	}
	if u.Tags != nil {
		c.Tags = append([]string(nil), (*u.Tags)...)
	}
	if u.TimeZone != nil {
		c.TimeZone = *u.TimeZone
	}
	if u.Locale != nil {
		c.Locale = *u.Locale
	}
	for k, v := range u.Attributes {
		if c.Attributes == nil {
			c.Attributes = map[string]string{}
		}
		if v == "" {
			delete(c.Attributes, k)
		} else {
			c.Attributes[k] = v
		}
	}
	c.UpdatedAt = now
}

// Change applies u to c, like Apply, and returns the profile_changed
// event that records what changed, or false when nothing did (the same
// values again). Stores append the event in the same write as the
// customer, so the timeline says who made a customer VIP or moved their
// owner.
func (u CustomerUpdate) Change(c *Customer, now time.Time) (Event, bool) {
	before := cloneCustomer(*c)
	u.Apply(c, now)
	ch := map[string]FieldChange{}
	diff := func(field string, from, to any, same bool) {
		if !same {
			ch[field] = FieldChange{From: from, To: to}
		}
	}
	diff("name", before.Name, c.Name, before.Name == c.Name)
	diff("tier", before.Tier, c.Tier, before.Tier == c.Tier)
	diff("vip", before.VIP, c.VIP, before.VIP == c.VIP)
	diff("owner", before.Owner, c.Owner, before.Owner == c.Owner)
	diff("tags", before.Tags, c.Tags, slices.Equal(before.Tags, c.Tags))
	diff("time_zone", before.TimeZone, c.TimeZone, before.TimeZone == c.TimeZone)
	diff("locale", before.Locale, c.Locale, before.Locale == c.Locale)
	for k := range u.Attributes {
		diff("attributes."+k, before.Attributes[k], c.Attributes[k], before.Attributes[k] == c.Attributes[k])
	}
	if len(ch) == 0 {
		return Event{}, false
	}
	author := u.Author
	if author == "" {
		author = "system"
	}
	return Event{CustomerID: c.ID, Kind: KindProfileChanged, Channel: ChannelSystem, Author: author,
		Payload: mustJSON(ProfileChange{Changes: ch})}, true
}

// CustomerQuery finds customers. Phone and Email match identities exactly
// (phone in E.164); Name matches a case-insensitive substring. Fields are
// ANDed; at least one must be set.
type CustomerQuery struct {
	Phone string
	Email string
	Name  string
	// Tag matches customers carrying the tag, compared case-insensitively.
	Tag string
	// Limit caps the result; zero means 50.
	Limit int
}

// Validate requires at least one criterion.
func (q CustomerQuery) Validate() error {
	if q.Phone == "" && q.Email == "" && q.Name == "" && q.Tag == "" {
		return fmt.Errorf("%w: search needs a phone, email, name or tag", ErrInvalid)
	}
	return nil
}

// Matches reports whether c passes the Name and Tag criteria (stores
// match Phone and Email through their identity index).
func (q CustomerQuery) Matches(c Customer) bool {
	return (q.Name == "" || strings.Contains(strings.ToLower(c.Name), strings.ToLower(q.Name))) &&
		(q.Tag == "" || slices.ContainsFunc(c.Tags, func(t string) bool { return strings.EqualFold(t, q.Tag) }))
}

func (q CustomerQuery) limit() int {
	if q.Limit <= 0 || q.Limit > 500 {
		return 50
	}
	return q.Limit
}
