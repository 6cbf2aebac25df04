package redact

import "sync"

// memo remembers what a Redactor made of short strings it masked before. Run records repeat
// their keys and many of their values from run to run (header names and values, field
// names, the token every run of a token flow carries), and masking a string scans it for
// credentials and secret values each time: a tenth of a token-flow run's CPU. What a string
// masks to depends only on the string and the Redactor, which never changes.
//
// It holds at most memoSize strings of up to memoMaxLen bytes each, and starts empty again
// when full, so strings that differ every run (timestamps, ids) cost a little memory and
// never stop the common ones being found.
type memo struct {
	sensitive remembered[bool]   // key → Keys.Sensitive(key)
	masked    remembered[string] // s → Redactor.String(s)
}

const (
	memoSize   = 4096
	memoMaxLen = 256
)

func newMemo() *memo {
	return &memo{sensitive: remembered[bool]{m: map[string]bool{}}, masked: remembered[string]{m: map[string]string{}}}
}

// remembered is one kind of answer, by string.
type remembered[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

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

// isSensitive is r.keys.Sensitive(k), remembered.
func (r *Redactor) isSensitive(k string) bool {
	if r.memo == nil {
		return r.keys.Sensitive(k)
	}
	return r.memo.sensitive.get(k, r.keys.Sensitive)
}

// maskString is r.String(s), remembered.
func (r *Redactor) maskString(s string) string {
	if r.memo == nil {
		return r.String(s)
	}
	return r.memo.masked.get(s, r.String)
}
