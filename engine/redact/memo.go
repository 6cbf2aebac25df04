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
	mu        sync.RWMutex
	sensitive map[string]bool   // key → Keys.Sensitive(key)
	masked    map[string]string // s → Redactor.String(s)
}

const (
	memoSize   = 4096
	memoMaxLen = 256
)

func newMemo() *memo {
	return &memo{sensitive: map[string]bool{}, masked: map[string]string{}}
}

// isSensitive is r.keys.Sensitive(k), remembered.
func (r *Redactor) isSensitive(k string) bool {
	c := r.memo
	if c == nil || len(k) > memoMaxLen {
		return r.keys.Sensitive(k)
	}
	c.mu.RLock()
	v, ok := c.sensitive[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = r.keys.Sensitive(k)
	c.mu.Lock()
	if len(c.sensitive) >= memoSize {
		clear(c.sensitive)
	}
	c.sensitive[k] = v
	c.mu.Unlock()
	return v
}

// maskString is r.String(s), remembered.
func (r *Redactor) maskString(s string) string {
	c := r.memo
	if c == nil || len(s) > memoMaxLen {
		return r.String(s)
	}
	c.mu.RLock()
	v, ok := c.masked[s]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = r.String(s)
	c.mu.Lock()
	if len(c.masked) >= memoSize {
		clear(c.masked)
	}
	c.masked[s] = v
	c.mu.Unlock()
	return v
}
