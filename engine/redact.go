package engine

import (
	"encoding/json"
	"reflect"
	"unsafe"

	"github.com/flowd/flowd/engine/redact"
)

// Redacted returns the record as it is stored and shown: every node's input, output, error
// and static-data changes, and the run's error, redacted by the Executor's Redactor — no
// secret value, nothing under a sensitive key (a static-data change under a sensitive key
// hides both sides), no credential in text. It is a new record and r is not changed, but the
// items and parts of items with nothing to mask are r's own, not copies: neither record's
// items may be changed afterwards (nothing does: a run's items are done with when it ends,
// and the record is encoded by the store or for output). A record that
// Executor.Run did not return (one read from a store, redacted when it was written) is
// returned as it is.
func (r *Run) Redacted() *Run {
	if r.redactor == nil {
		return r
	}
	return redactRun(r.redactor, r)
}

// MarshalJSON encodes the redacted record (see Redacted), so that a live record shown as JSON
// — `flowd run` printing it, an API answering with it — shows what the store holds.
func (r Run) MarshalJSON() ([]byte, error) {
	type plain Run // without methods: no recursion
	if r.redactor != nil {
		return json.Marshal((*plain)(redactRun(r.redactor, &r)))
	}
	return json.Marshal(plain(r))
}

// redactErrors redacts the errors of the live record: unlike items, they are not data a flow
// passes on, and callers show them (a webhook answering a failed run with its error).
func (r *Run) redactErrors() {
	r.Error = r.redactor.Message(r.Error)
	for i := range r.Nodes {
		r.Nodes[i].Error = r.redactor.Message(r.Nodes[i].Error)
	}
}

func redactRun(red *redact.Redactor, r *Run) *Run {
	out := *r
	out.redactor = nil
	out.Error = red.Message(r.Error)
	if r.Nodes == nil {
		return &out
	}
	out.Nodes = make([]NodeRun, len(r.Nodes))
	// A node's input is mostly the same items as the output before it: each is redacted once.
	done := map[uintptr]Item{}
	for i := range r.Nodes {
		nr := r.Nodes[i]
		nr.Input = redactItems(red, nr.Input, done)
		nr.Output = redactPorts(red, nr.Output, done)
		nr.Error = red.Message(nr.Error)
		if nr.Static != nil {
			changes := make([]StaticChange, len(nr.Static))
			for c, ch := range nr.Static {
				ch.Before = red.Under(ch.Key, ch.Before)
				ch.After = red.Under(ch.Key, ch.After)
				changes[c] = ch
			}
			nr.Static = changes
		}
		out.Nodes[i] = nr
	}
	return &out
}

// redactPorts redacts the items of each port; it returns ports itself when no item changed.
func redactPorts(red *redact.Redactor, ports [][]Item, done map[uintptr]Item) [][]Item {
	var out [][]Item // nil while every port is its own redaction
	for p, items := range ports {
		r := redactItems(red, items, done)
		if out == nil {
			if unsafe.SliceData(r) == unsafe.SliceData(items) {
				continue
			}
			out = make([][]Item, len(ports))
			copy(out, ports[:p])
		}
		out[p] = r
	}
	if out == nil {
		return ports
	}
	return out
}

// redactItems redacts items; done holds the redacted copies of items already seen, by the
// identity of their maps, so that an item passed from node to node is redacted once. It
// returns items itself when no item changed.
func redactItems(red *redact.Redactor, items []Item, done map[uintptr]Item) []Item {
	var out []Item // nil while every item is its own redaction
	for i, it := range items {
		var c Item
		if it != nil {
			key := reflect.ValueOf(it).Pointer()
			var ok bool
			if c, ok = done[key]; !ok {
				// Shared, not copied, where nothing is masked: the record is encoded and
				// dropped while nobody changes the items any more.
				c = red.ObjectShared(it)
				done[key] = c
			}
			if out == nil && reflect.ValueOf(c).Pointer() == key {
				continue
			}
		}
		if out == nil {
			if c == nil {
				continue // nil stays nil
			}
			out = make([]Item, len(items))
			copy(out, items[:i])
		}
		out[i] = c
	}
	if out == nil {
		return items
	}
	return out
}
