package sms

import (
	"context"
	"sync"
)

// MemoryDoNotContact keeps the list in memory: for tests and demos, lost at
// exit.
type MemoryDoNotContact struct {
	mu sync.Mutex
	m  map[string]OptOut
}

var _ DoNotContact = (*MemoryDoNotContact)(nil)

// NewMemoryDoNotContact returns an empty list.
func NewMemoryDoNotContact() *MemoryDoNotContact {
	return &MemoryDoNotContact{m: map[string]OptOut{}}
}

func (d *MemoryDoNotContact) OptOut(ctx context.Context, number string, r OptOut) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.m[number]; ok {
		return false, nil
	}
	d.m[number] = r
	return true, nil
}

func (d *MemoryDoNotContact) OptIn(ctx context.Context, number string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.m[number]
	delete(d.m, number)
	return ok, nil
}

func (d *MemoryDoNotContact) Lookup(ctx context.Context, number string) (OptOut, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.m[number]
	return r, ok, nil
}
