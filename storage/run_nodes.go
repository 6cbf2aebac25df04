package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"github.com/flowd/flowd/engine"
)

// A run's node executions are stored as one JSON document, the nodes column of its run_nodes
// row: an array with one object per execution, in execution order. Keys are short and values
// equal to their default are left out:
//
//	n   node name                 t   node type
//	q   position in the run       absent: the execution's index in the array
//	s   status                    absent: "success"
//	a   start, in µs after the run's start
//	d   duration in µs            absent: 0
//	c   tries                     absent: 1
//	i   input                     absent: nil
//	o   output, one entry a port  absent: nil; a nil port is null
//	p   port names                absent: ["main"]
//	ic  input count               absent: the number of input items stored
//	oc  output counts             absent: the number of items stored on each port
//	x   truncated                 absent: false
//	e   error                     absent: ""
//	st  static-data changes       absent: none
//	r   recheck                   absent: false
//
// The input and each non-nil port is a payload: a JSON array of items, or — when the same
// JSON was stored earlier in the run — the number of that earlier payload. Payloads are
// numbered from 0 in the order they appear: each execution's input, then its ports. Most
// payloads repeat one another (a node's input is its upstream node's output; a trigger, noOp
// or If passes its input on), so most are stored once.
//
// Decoding is lenient where a migrated v3 record is explicit: it reads null for i, o and st
// as absent and "success" for s as the default.

// defaultPorts are the output ports of most node types.
var defaultPorts = []string{"main"}

// nodeDoc is one execution as stored, for decoding.
type nodeDoc struct {
	Node       string          `json:"n"`
	Seq        *int            `json:"q"`
	Type       string          `json:"t"`
	Status     string          `json:"s"`
	Start      int64           `json:"a"`
	Duration   int64           `json:"d"`
	Tries      *int            `json:"c"`
	Input      json.RawMessage `json:"i"`
	Output     json.RawMessage `json:"o"`
	Ports      []string        `json:"p"`
	InputCount *int            `json:"ic"`
	Counts     []int           `json:"oc"`
	Truncated  bool            `json:"x"`
	Error      string          `json:"e"`
	Static     json.RawMessage `json:"st"`
	Recheck    bool            `json:"r"`
}

// encodeNodes renders r's node executions in the stored form; nil when r has none. Payloads
// larger than MaxPayloadBytes keep their leading items (see MaxPayloadBytes).
func encodeNodes(r *engine.Run) ([]byte, error) {
	if len(r.Nodes) == 0 {
		return nil, nil
	}
	e := payloads{seed: maphash.MakeSeed(), first: map[uint64]int{}, items: itemJSON{}, lists: map[itemList]int{}}
	base := r.StartedAt.UnixMicro()
	b := make([]byte, 0, 1024)
	b = append(b, '[')
	for i := range r.Nodes {
		nr := &r.Nodes[i]
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = e.node(b, i, nr, base); err != nil {
			return nil, fmt.Errorf("node %q: %w", nr.Node, err)
		}
	}
	return append(b, ']'), nil
}

// payloads numbers a run's payloads as they are written, remembering the first of each JSON.
type payloads struct {
	seed  maphash.Seed
	first map[uint64]int // hash of a payload's JSON → number of its first appearance
	all   [][]byte       // every payload's JSON, by number
	items itemJSON
	// lists maps an item list written whole to its payload's number. A node's input is
	// mostly the very list its upstream node sent, and a noOp sends on the list it got:
	// the list's identity stands for its JSON, as an item's does in itemJSON.
	lists map[itemList]int
}

// itemList is the identity of a list of items: where its elements are, and how many.
type itemList struct {
	first *engine.Item
	n     int
}

func listOf(items []engine.Item) itemList { return itemList{unsafe.SliceData(items), len(items)} }

// again appends to b payload k, written earlier in this run, as the next payload.
func (e *payloads) again(b []byte, k int) []byte {
	p := e.all[k]
	e.all = append(e.all, p)
	if len(p) < minRefBytes {
		return append(b, p...)
	}
	return strconv.AppendInt(b, int64(k), 10)
}

// list appends items as the next payload, whole or cut to MaxPayloadBytes; it returns how
// many items it stored and whether it cut.
func (e *payloads) list(b []byte, items []engine.Item) ([]byte, int, bool, error) {
	id := listOf(items)
	if k, ok := e.lists[id]; ok {
		return e.again(b, k), len(items), false, nil
	}
	p, n, cut, err := encodeItems(e.items, items, MaxPayloadBytes)
	if err != nil {
		return nil, 0, false, err
	}
	if !cut {
		e.lists[id] = len(e.all)
	}
	return e.add(b, p), n, cut, nil
}

// minRefBytes is the shortest payload worth a reference: shorter ones are stored inline.
const minRefBytes = 8

// add appends p, or a reference to an earlier copy of it, to b.
func (e *payloads) add(b, p []byte) []byte {
	n := len(e.all)
	e.all = append(e.all, p)
	if len(p) < minRefBytes {
		return append(b, p...)
	}
	h := maphash.Bytes(e.seed, p)
	if k, ok := e.first[h]; ok && bytes.Equal(e.all[k], p) {
		return strconv.AppendInt(b, int64(k), 10)
	}
	if _, ok := e.first[h]; !ok {
		e.first[h] = n
	}
	return append(b, p...)
}

// ports appends a node's output: an array with each port's payload, or null for a nil port.
// It returns how many items it stored of each port and whether it cut any.
func (e *payloads) ports(b []byte, ports [][]engine.Item) ([]byte, []int, bool, error) {
	size, err := portsSize(e.items, ports, len(ports)*len("null,")+2)
	if err != nil {
		return nil, nil, false, err
	}
	// The usual case: every port whole, as lists that may have been written before. Else
	// encodePorts cuts them.
	whole := size <= MaxPayloadBytes
	var encoded [][]byte
	var counts []int
	cut := false
	if whole {
		counts = make([]int, len(ports))
	} else if encoded, counts, cut, err = encodePorts(e.items, ports, MaxPayloadBytes); err != nil {
		return nil, nil, false, err
	}
	b = append(b, `,"o":[`...)
	for k, p := range ports {
		if k > 0 {
			b = append(b, ',')
		}
		switch {
		case p == nil:
			b = append(b, "null"...)
		case whole:
			if b, counts[k], _, err = e.list(b, p); err != nil {
				return nil, nil, false, err
			}
		default:
			b = e.add(b, encoded[k])
		}
	}
	return append(b, ']'), counts, cut, nil
}

// node appends the i-th node execution of a run that started at base (unix µs) to b.
func (e *payloads) node(b []byte, i int, nr *engine.NodeRun, base int64) ([]byte, error) {
	b = append(b, `{"n":`...)
	b = engine.AppendJSONString(b, nr.Node)
	if nr.Seq != i {
		b = append(b, `,"q":`...)
		b = strconv.AppendInt(b, int64(nr.Seq), 10)
	}
	b = append(b, `,"t":`...)
	b = engine.AppendJSONString(b, nr.Type)
	if nr.Status != engine.StatusSuccess {
		b = append(b, `,"s":`...)
		b = engine.AppendJSONString(b, string(nr.Status))
	}
	b = append(b, `,"a":`...)
	b = strconv.AppendInt(b, nr.StartedAt.UnixMicro()-base, 10)
	if nr.DurationMicros != 0 {
		b = append(b, `,"d":`...)
		b = strconv.AppendInt(b, nr.DurationMicros, 10)
	}
	if nr.Tries != 1 {
		b = append(b, `,"c":`...)
		b = strconv.AppendInt(b, int64(nr.Tries), 10)
	}

	truncated := nr.Truncated
	stored := 0 // input items stored
	if nr.Input != nil {
		b = append(b, `,"i":`...)
		var cut bool
		var err error
		if b, stored, cut, err = e.list(b, nr.Input); err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		truncated = truncated || cut
	}
	var counts []int // output items stored per port
	if nr.Output != nil {
		var cut bool
		var err error
		if b, counts, cut, err = e.ports(b, nr.Output); err != nil {
			return nil, fmt.Errorf("output: %w", err)
		}
		truncated = truncated || cut
	}
	if !slices.Equal(nr.Ports, defaultPorts) {
		b = append(b, `,"p":[`...)
		for k, p := range nr.Ports {
			if k > 0 {
				b = append(b, ',')
			}
			b = engine.AppendJSONString(b, p)
		}
		b = append(b, ']')
	}
	if nr.InputCount != stored {
		b = append(b, `,"ic":`...)
		b = strconv.AppendInt(b, int64(nr.InputCount), 10)
	}
	if !slices.Equal(nr.OutputCounts, counts) {
		b = append(b, `,"oc":[`...)
		for k, n := range nr.OutputCounts {
			if k > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(n), 10)
		}
		b = append(b, ']')
	}
	if truncated {
		b = append(b, `,"x":true`...)
	}
	if nr.Error != "" {
		b = append(b, `,"e":`...)
		b = engine.AppendJSONString(b, nr.Error)
	}
	if len(nr.Static) > 0 {
		st, err := encodeJSON(nr.Static)
		if err != nil {
			return nil, fmt.Errorf("static data changes: %w", err)
		}
		b = append(append(b, `,"st":`...), st...)
	}
	if nr.Recheck {
		b = append(b, `,"r":true`...)
	}
	return append(b, '}'), nil
}

// decodeNodes reads node executions stored by encodeNodes for a run that started at start
// (unix µs). A nil doc is no executions. Slices in the result are never nil except Input and
// Output, which are nil when they were recorded as nil.
func decodeNodes(doc []byte, start int64) ([]engine.NodeRun, error) {
	out := []engine.NodeRun{}
	if doc == nil {
		return out, nil
	}
	var docs []nodeDoc
	if err := json.Unmarshal(doc, &docs); err != nil {
		return nil, err
	}
	var all []json.RawMessage // every payload by number, references resolved
	payload := func(raw json.RawMessage) (json.RawMessage, error) {
		if len(raw) > 0 && raw[0] != '[' {
			k, err := strconv.Atoi(string(raw))
			if err != nil || k < 0 || k >= len(all) {
				return nil, fmt.Errorf("payload %d refers to %s, not an earlier payload", len(all), raw)
			}
			raw = all[k]
		}
		all = append(all, raw)
		return raw, nil
	}
	for seq, d := range docs {
		nr := engine.NodeRun{
			Seq:            seq,
			Node:           d.Node,
			Type:           d.Type,
			Status:         engine.StatusSuccess,
			StartedAt:      time.UnixMicro(start + d.Start).UTC(),
			DurationMicros: d.Duration,
			Tries:          1,
			Ports:          d.Ports,
			Truncated:      d.Truncated,
			Error:          d.Error,
			Recheck:        d.Recheck,
		}
		if d.Seq != nil {
			nr.Seq = *d.Seq
		}
		if d.Status != "" {
			nr.Status = engine.RunStatus(d.Status)
		}
		if d.Tries != nil {
			nr.Tries = *d.Tries
		}
		if nr.Ports == nil {
			nr.Ports = slices.Clone(defaultPorts)
		}
		if err := d.decodePayloads(&nr, payload); err != nil {
			return nil, fmt.Errorf("node %d %q: %w", seq, d.Node, err)
		}
		if isJSON(d.Static) {
			if err := decodeJSON(d.Static, &nr.Static); err != nil {
				return nil, fmt.Errorf("node %d %q: static data changes: %w", seq, d.Node, err)
			}
		}
		out = append(out, nr)
	}
	return out, nil
}

// isJSON reports whether raw holds a value other than null.
func isJSON(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// decodePayloads fills nr's input, output and their counts.
func (d *nodeDoc) decodePayloads(nr *engine.NodeRun, payload func(json.RawMessage) (json.RawMessage, error)) error {
	if isJSON(d.Input) {
		raw, err := payload(d.Input)
		if err != nil {
			return err
		}
		if err := decodeJSON(raw, &nr.Input); err != nil {
			return fmt.Errorf("input: %w", err)
		}
	}
	nr.InputCount = len(nr.Input)
	if d.InputCount != nil {
		nr.InputCount = *d.InputCount
	}
	nr.OutputCounts = []int{}
	if isJSON(d.Output) {
		var ports []json.RawMessage
		if err := json.Unmarshal(d.Output, &ports); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		nr.Output = make([][]engine.Item, len(ports))
		for k, p := range ports {
			if isJSON(p) {
				raw, err := payload(p)
				if err != nil {
					return err
				}
				if err := decodeJSON(raw, &nr.Output[k]); err != nil {
					return fmt.Errorf("output %d: %w", k, err)
				}
			}
			nr.OutputCounts = append(nr.OutputCounts, len(nr.Output[k]))
		}
	}
	if d.Counts != nil {
		nr.OutputCounts = d.Counts
	}
	return nil
}
