package redact

import "sync"

// remembered holds the answers to one question about strings, for the rules that ask it
// often and never change their answers: whether a key is sensitive (Keys), what a string
// masks to (Redactor). Run records repeat their keys and many of their values from run to
// run (header names and values, field names, the token every run of a token flow carries),
// and working an answer out scans the string each time: a tenth of a token-flow run's CPU.
//
// It holds at most memoSize strings of up to memoMaxLen bytes each, and starts empty again
// when full, so strings that differ every run (timestamps, ids) cost a little memory and
// never stop the common ones being found.
type remembered[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

const (
	memoSize   = 4096
	memoMaxLen = 256
)

func newRemembered[V any]() *remembered[V] { return &remembered[V]{m: map[string]V{}} }

// get returns f(s), from memory when s was asked before.
func (c *remembered[V]) get(s string, f func(string) V) V {
	if len(s) > memoMaxLen {
		return f(s)
	}
	c.mu.RLock()
	v, ok := c.m[s]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = f(s)
	c.mu.Lock()
	if len(c.m) >= memoSize {
		clear(c.m)
	}
	c.m[s] = v
	c.mu.Unlock()
	return v
}

// maskString is r.String(s), remembered.
func (r *Redactor) maskString(s string) string {
	if r.masked == nil {
		return r.String(s)
	}
	return r.masked.get(s, r.String)
}
