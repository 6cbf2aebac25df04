package engine

import (
	"context"
	"fmt"
	"reflect"
	"time"
)

// Input is what a node execution receives: its items, and the scope its expressions see.
// It belongs to one execution and is not shared between goroutines.
type Input struct {
	Items []Item
	// Node is the executing node's name, Flow the flow's id.
	Node, Flow string

	exec   *execution
	fnode  *FlowNode
	now    time.Time
	static *StaticView
}

// Now is the time the node execution started, in the flow's time zone.
func (in *Input) Now() time.Time { return in.now }

// Env returns the expression scope for item i ($json = Items[i]). With i out of range (a node
// that works on all items at once, or no items) $json is the first item, or empty.
func (in *Input) Env(ctx context.Context, i int) (*Env, error) {
	env := &Env{Input: in.Items, ItemIndex: i, Now: in.now}
	switch {
	case i >= 0 && i < len(in.Items):
		env.JSON = in.Items[i]
	case len(in.Items) > 0:
		env.JSON, env.ItemIndex = in.Items[0], 0
	default:
		env.JSON = Item{}
	}
	if in.exec != nil {
		env.Node = in.exec.nodeOut
		env.OSEnv = in.exec.osEnv
		env.Secrets = in.exec.secretValues(in.fnode)
		env.Flow = in.exec.flowInfo
		env.Run = in.exec.runInfo
	}
	if in.fnode == nil || in.fnode.readsStatic {
		s, err := in.Static(ctx)
		if err != nil {
			return nil, err
		}
		env.Static = s.values
	}
	return env, nil
}

// Static returns the flow's static data as last committed (read on first use in this
// execution), with this execution's writes applied. Writes are committed when the node
// succeeds.
func (in *Input) Static(ctx context.Context) (*StaticView, error) {
	if in.static != nil {
		return in.static, nil
	}
	v := &StaticView{}
	if in.exec != nil && in.exec.store != nil {
		loaded, err := in.exec.store.LoadStatic(ctx, in.Flow)
		if err != nil {
			return nil, fmt.Errorf("read static data: %w", err)
		}
		v.loaded = loaded
	}
	v.values = make(map[string]any, len(v.loaded))
	for k, sv := range v.loaded {
		v.values[k] = sv.Value
	}
	in.static = v
	return v, nil
}

// StaticView is one node execution's view of static data.
type StaticView struct {
	values  map[string]any
	loaded  map[string]StaticValue // as committed when read; not changed
	changes []StaticChange         // in order; several may name one key
}

// Get returns a key's value and whether it is set.
func (s *StaticView) Get(key string) (any, bool) {
	v, ok := s.values[key]
	return v, ok
}

// Values returns the current values. The caller must not change the map.
func (s *StaticView) Values() map[string]any { return s.values }

// Set stages a write of key. The value is converted with ToJSONValue.
func (s *StaticView) Set(key string, v any) {
	v = ToJSONValue(v)
	s.values[key] = v
	s.changes = append(s.changes, StaticChange{Key: key, After: v})
}

// Delete stages removal of key.
func (s *StaticView) Delete(key string) {
	delete(s.values, key)
	s.changes = append(s.changes, StaticChange{Key: key, Deleted: true})
}

// pending returns the net change per key, in first-write order, leaving out keys that end as
// they started, so a node that re-sets a value as it was writes nothing.
func (s *StaticView) pending() []StaticChange {
	if len(s.changes) == 0 {
		return nil
	}
	last := map[string]StaticChange{}
	var order []string
	for _, c := range s.changes {
		if _, ok := last[c.Key]; !ok {
			order = append(order, c.Key)
		}
		last[c.Key] = c
	}
	var out []StaticChange
	for _, k := range order {
		c := last[k]
		old, existed := s.loaded[k]
		if c.Deleted && !existed {
			continue
		}
		if !c.Deleted && existed && reflect.DeepEqual(normalizeNumbers(old.Value), normalizeNumbers(c.After)) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// normalizeNumbers makes int64 and float64 of the same value compare equal.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeNumbers(e)
		}
		return out
	}
	return v
}

// Output collects what a node execution emits.
type Output struct {
	ports  [][]Item
	failed []failedItem
}

type failedItem struct {
	index int
	item  Item
	err   error
}

// nodeIO is a node execution's Input and Output in one allocation, with room for the ports of
// most node types.
type nodeIO struct {
	in    Input
	out   Output
	ports [2][]Item
}

// output returns the Output, with the given number of ports.
func (io *nodeIO) output(ports int) *Output {
	if ports <= len(io.ports) {
		io.out.ports = io.ports[:ports:ports]
	} else {
		io.out.ports = make([][]Item, ports)
	}
	return &io.out
}

// Emit appends items to output port i. Emitting on a port the node does not have panics: it
// is a programming error in the node type.
func (o *Output) Emit(port int, items ...Item) {
	o.ports[port] = append(o.ports[port], items...)
}

// FailItem reports that input item index failed with err. The node's onError setting decides
// what happens: stop fails the node, continue emits the item with an "error" field on the
// type's ContinueOutput port (usually the first), errorOutput sends it to the error port.
func (o *Output) FailItem(index int, item Item, err error) {
	o.failed = append(o.failed, failedItem{index: index, item: item, err: err})
}

// Ports returns how many output ports the node has.
func (o *Output) Ports() int { return len(o.ports) }
