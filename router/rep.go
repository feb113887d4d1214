package router

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Rep is a person who answers customers, as configured. What changes as
// they work (presence, load, idle time) is in RepStatus.
type Rep struct {
	// ID is the rep's id, the one conversations name as assignee and
	// customers as owner; required.
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name,omitempty"`
	// Role is "rep", "supervisor" or "admin"; empty means "rep". The router
	// does not route by role; the API authorises by it.
	Role string `yaml:"role" json:"role,omitempty"`
	// Skills maps a skill to the rep's level in it, 1 (novice) to 10; a
	// level of 0 means 1. Empty means no skills: the rep only gets tasks
	// that require none (or the relaxed ring's).
	Skills map[string]int `yaml:"skills" json:"skills,omitempty"`
	// Languages the rep can serve customers in (BCP 47 primary tags such as
	// "en", "zh"); empty means none, so only tasks with no language.
	Languages []string `yaml:"languages" json:"languages,omitempty"`
	// Tier is 1 (front line) or 2 (experts, reached in the relaxed ring);
	// zero means 1.
	Tier int `yaml:"tier" json:"tier,omitempty"`
	// Capacity is the units the rep can hold at once; zero means the
	// router's Config.Capacity.
	Capacity int `yaml:"capacity" json:"capacity,omitempty"`
	// Channels the rep takes tasks on; empty means every channel.
	Channels []string `yaml:"channels" json:"channels,omitempty"`
	// SIPURI is where the rep's calls are bridged; the router only carries
	// it for the dialer and the voice adapter.
	SIPURI string `yaml:"sip_uri" json:"sip_uri,omitempty"`
}

// clone copies r so the router and its callers share no maps or slices.
func (r Rep) clone() Rep {
	r.Skills = maps2(r.Skills)
	r.Languages = slices.Clone(r.Languages)
	r.Channels = slices.Clone(r.Channels)
	return r
}

func (r Rep) validate(c Config) error {
	var errs []error
	if r.ID == "" {
		errs = append(errs, errors.New("rep has no id"))
	}
	if r.Tier < 0 || r.Tier > 2 {
		errs = append(errs, fmt.Errorf("rep %q: tier %d, want 1 or 2", r.ID, r.Tier))
	}
	if r.Capacity < 0 {
		errs = append(errs, fmt.Errorf("rep %q: capacity is negative", r.ID))
	}
	for s, l := range r.Skills {
		if s == "" || l < 0 || l > 10 {
			errs = append(errs, fmt.Errorf("rep %q: skill %q level %d, want 1 to 10", r.ID, s, l))
		}
	}
	switch r.Role {
	case "", "rep", "supervisor", "admin":
	default:
		errs = append(errs, fmt.Errorf("rep %q: role %q is not rep, supervisor or admin", r.ID, r.Role))
	}
	return errors.Join(errs...)
}

// Presence is what a rep is doing, as far as routing cares.
type Presence string

const (
	// PresenceAvailable takes new work (capacity allowing).
	PresenceAvailable Presence = "available"
	// PresenceAway is logged in but takes no new work; an owner who is away
	// is skipped at once. The router sets it after too many missed offers.
	PresenceAway Presence = "away"
	// PresenceOffline is logged out; never chosen.
	PresenceOffline Presence = "offline"
	// PresenceOnCall is on a voice call. The router reports it while the rep
	// holds a voice task; the voice adapter or dialer sets it for calls the
	// router did not assign. A rep set on_call takes no new work, but counts
	// as online for the owner's wait.
	PresenceOnCall Presence = "on_call"
	// PresenceWrapUp is the wrap-up after a task ends; only the router sets
	// it, and ends it when the wrap-up time is over.
	PresenceWrapUp Presence = "wrap_up"
	// PresenceBreak is a break the rep or a supervisor set, with a reason
	// code the routing service keeps: logged in, takes no new work, loses
	// standing offers like away, and (routing.reassign_after) the open
	// conversations of a rep on a long break go to others. A state of its
	// own rather than away with a reason, so occupancy can take breaks out
	// of the time a rep could work and the wallboard can count them apart.
	PresenceBreak Presence = "break"
	// PresenceAfterCallWork is after-call work the rep set (notes, a
	// follow-up): busy with a contact that ended, so takes no new work
	// and counts as handling time for occupancy; held conversations stay.
	PresenceAfterCallWork Presence = "after_call_work"
)

// Settable reports whether p is a presence a rep may be set to (wrap-up
// is the router's own).
func (p Presence) Settable() bool {
	switch p {
	case PresenceAvailable, PresenceAway, PresenceOffline, PresenceOnCall, PresenceBreak, PresenceAfterCallWork:
		return true
	}
	return false
}

// RepStatus is a rep's state as the router sees it.
type RepStatus struct {
	// Rep is the rep's attributes with Tier and Capacity in force (a zero
	// in the configuration reported as the default it means).
	Rep
	// Presence is the effective presence: wrap_up and on_call are derived
	// from the set presence, the wrap-up timer and a held voice task.
	Presence Presence `json:"presence"`
	// Used is the capacity units held by offered and active tasks.
	Used int `json:"used"`
	// Active counts the tasks held (offered or active).
	Active int `json:"active"`
	// IdleSince is the last time the rep's work changed: became available,
	// got a task, or finished one (at the end of its wrap-up).
	IdleSince time.Time `json:"idle_since"`
	WrapUntil time.Time `json:"wrap_until,omitzero"`
	// Misses is the count of offers in a row the rep let time out.
	Misses int `json:"misses"`
}
