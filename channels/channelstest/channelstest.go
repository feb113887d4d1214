// Package channelstest has doubles of the channels package's interfaces
// for tests of the packages that send through it: an Adapter that records
// what it sends and a Policy that answers what it is told. Not for
// production code.
//
// Concurrency: both are safe for concurrent use; set their answers before
// the send that should see them.
package channelstest

import (
	"context"
	"errors"
	"sync"

	"github.com/omnigate/omnigate/channels"
	"github.com/omnigate/omnigate/sessions"
)

// Adapter is a channels.Adapter that records what it sends. CanSend and
// Send succeed until told otherwise (Refuse, Fail); an accepted message's
// receipt id is "receipt-" and its event id. A message whose text is
// "fail" is refused by Send with ErrRefused, so a table or a fuzz corpus
// reaches a failed send through its input alone.
type Adapter struct {
	Channel string

	mu      sync.Mutex
	canSend error
	sendErr error
	sent    []channels.Outbound
}

var _ channels.Adapter = (*Adapter)(nil)

// Name is Channel.
func (a *Adapter) Name() string { return a.Channel }

// Refuse makes CanSend answer err (nil: succeed again).
func (a *Adapter) Refuse(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.canSend = err
}

// Fail makes Send answer err (nil: succeed again).
func (a *Adapter) Fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sendErr = err
}

// CanSend answers what Refuse set.
func (a *Adapter) CanSend(context.Context, string, []sessions.Identity) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.canSend
}

// ErrRefused is what Send answers a message whose text is "fail".
var ErrRefused = errors.New("channelstest: the provider said no")

// Send records o, or answers what Fail set.
func (a *Adapter) Send(_ context.Context, o channels.Outbound) (channels.Receipt, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if o.Message.Text == "fail" {
		return channels.Receipt{}, ErrRefused
	}
	if a.sendErr != nil {
		return channels.Receipt{}, a.sendErr
	}
	a.sent = append(a.sent, o)
	return channels.Receipt{ID: "receipt-" + o.EventID}, nil
}

// Sent is every message accepted so far, in order.
func (a *Adapter) Sent() []channels.Outbound {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]channels.Outbound(nil), a.sent...)
}

// Policy is a channels.Policy that allows everything until told otherwise
// (Answer) and remembers what it was asked.
type Policy struct {
	mu      sync.Mutex
	verdict channels.Verdict
	err     error
	asked   []channels.Contact
}

var _ channels.Policy = (*Policy)(nil)

// Answer makes Check answer v and err from now on.
func (p *Policy) Answer(v channels.Verdict, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.verdict, p.err = v, err
}

// Check records c and answers what Answer set, Allow before that.
func (p *Policy) Check(_ context.Context, c channels.Contact) (channels.Verdict, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, c)
	if p.verdict.Decision == "" && p.err == nil {
		return channels.Verdict{Decision: channels.Allow}, nil
	}
	return p.verdict, p.err
}

// Asked is every contact Check was asked about, in order.
func (p *Policy) Asked() []channels.Contact {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]channels.Contact(nil), p.asked...)
}
