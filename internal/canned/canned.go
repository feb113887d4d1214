package canned

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Response is one canned response.
type Response struct {
	// ID is "cfg:<shortcut>" for the configuration's, a generated id for
	// the others.
	ID string `json:"id"`
	// Shortcut is what the rep types after "/": 1-32 lower-case letters,
	// digits, '-' or '_'.
	Shortcut string `json:"shortcut"`
	// Title is shown in the picker; empty means the shortcut.
	Title string `json:"title,omitempty"`
	// Text is inserted, variables expanded; at most MaxText bytes.
	Text string `json:"text"`
	// Scope is ScopeTeam or ScopePersonal.
	Scope string `json:"scope"`
	// ReadOnly marks the configuration's: change them in the file.
	ReadOnly bool `json:"read_only,omitempty"`
}

// Scopes, and limits.
const (
	ScopeTeam     = "team"
	ScopePersonal = "personal"
	MaxText       = 4 << 10
	// MaxPerOwner caps the team's stored responses and each rep's.
	MaxPerOwner = 200
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("canned: invalid")

// Store keeps canned responses by owner: Team, or a rep id.
type Store interface {
	// List returns the owner's responses, sorted by shortcut then id.
	List(ctx context.Context, owner string) ([]Response, error)
	// Put adds r, or replaces the owner's response with r.ID.
	Put(ctx context.Context, owner string, r Response) error
	// Delete removes the owner's response id and reports whether there
	// was one.
	Delete(ctx context.Context, owner, id string) (bool, error)
	Close() error
}

// Team is the owner of team responses in a Store.
const Team = "team"

// Config lists the team's canned responses; they are read-only through
// the API.
type Config struct {
	// Team are the configuration's team responses. Empty means none.
	Team []Entry `yaml:"team"`
}

// Entry is one configured response.
type Entry struct {
	Shortcut string `yaml:"shortcut"`
	Title    string `yaml:"title"`
	Text     string `yaml:"text"`
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, e := range c.Team {
		r := Response{Shortcut: e.Shortcut, Title: e.Title, Text: e.Text}
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("canned_responses.team[%d]: %w", i, err))
		}
		if seen[e.Shortcut] {
			errs = append(errs, fmt.Errorf("canned_responses.team[%d]: shortcut %q is repeated", i, e.Shortcut))
		}
		seen[e.Shortcut] = true
	}
	return errors.Join(errs...)
}

// Responses are the configured ones as Responses.
func (c Config) Responses() []Response {
	out := make([]Response, len(c.Team))
	for i, e := range c.Team {
		out[i] = Response{ID: "cfg:" + e.Shortcut, Shortcut: e.Shortcut, Title: e.Title, Text: e.Text, Scope: ScopeTeam, ReadOnly: true}
	}
	return out
}

var shortcutRe = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// Validate checks the fields a person writes.
func (r Response) Validate() error {
	switch {
	case !shortcutRe.MatchString(r.Shortcut):
		return fmt.Errorf("%w: shortcut must be 1-32 of a-z, 0-9, '-' and '_'", ErrInvalid)
	case len(r.Title) > 100 || !utf8.ValidString(r.Title):
		return fmt.Errorf("%w: title must be UTF-8, at most 100 bytes", ErrInvalid)
	case strings.TrimSpace(r.Text) == "" || len(r.Text) > MaxText || !utf8.ValidString(r.Text):
		return fmt.Errorf("%w: text must be UTF-8, 1-%d bytes", ErrInvalid, MaxText)
	}
	for _, m := range variableRe.FindAllStringSubmatch(r.Text, -1) {
		if !known[m[1]] {
			return fmt.Errorf("%w: unknown variable {{%s}} (known: customer.name, customer.first_name, rep.name, rep.first_name)", ErrInvalid, m[1])
		}
	}
	return nil
}

// variableRe matches {{name}} and {{name|fallback}}.
var variableRe = regexp.MustCompile(`\{\{\s*([a-z_.]+)\s*(?:\|([^{}]*))?\}\}`)

var known = map[string]bool{"customer.name": true, "customer.first_name": true, "rep.name": true, "rep.first_name": true}

// Vars are the values variables expand to.
type Vars struct {
	CustomerName string
	RepName      string
}

// Expand fills text's variables from v; an empty value takes the
// variable's fallback ("" without one). A first_name is the name's first
// word (the whole name when it has no space, as Chinese names are
// written).
func Expand(text string, v Vars) string {
	return variableRe.ReplaceAllStringFunc(text, func(m string) string {
		sub := variableRe.FindStringSubmatch(m)
		var val string
		switch sub[1] {
		case "customer.name":
			val = v.CustomerName
		case "customer.first_name":
			val = firstName(v.CustomerName)
		case "rep.name":
			val = v.RepName
		case "rep.first_name":
			val = firstName(v.RepName)
		default:
			return m
		}
		if strings.TrimSpace(val) == "" {
			return strings.TrimSpace(sub[2])
		}
		return val
	})
}

func firstName(name string) string {
	f := strings.Fields(name)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
