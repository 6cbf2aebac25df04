package engine

import (
	"context"
	"fmt"
)

// LoadNode builds one node of type typeName from its parameters (a JSON object) exactly as
// the loader does for a node in a flow file; problems come back as one error. It is how node
// tests and tools build a node outside a flow.
func (l *Loader) LoadNode(typeName, params string) (*FlowNode, error) {
	src := fmt.Sprintf(`{"id":"node-test","nodes":[{"name":"n","type":%q,"parameters":%s}]}`, typeName, params)
	f, probs := l.Load("node-test.json", []byte(src))
	if errs := probs.Errors(); len(errs) > 0 {
		return nil, errs
	}
	return f.Nodes[0], nil
}

// NodeResult is what one execution of a node produced.
type NodeResult struct {
	Ports  [][]Item
	Failed []ItemFailure
	// Static is the node's net static-data writes, as it would commit them.
	Static []StaticChange
}

// ItemFailure is one item a node failed with Output.FailItem.
type ItemFailure struct {
	Index int
	Item  Item
	Err   error
}

// ExecNode runs n once on items, with static as the committed static data, without a store,
// retries or the onError policy. $now is the real time in the node's flow time zone unless
// now is set.
func ExecNode(ctx context.Context, n *FlowNode, items []Item, static map[string]any, opts ...ExecOption) (*NodeResult, error) {
	e := &execution{
		x:        &Executor{},
		flow:     &Flow{ID: "node-test", Settings: FlowSettings{Location: nil}},
		run:      &Run{ID: "test"},
		nodeOut:  map[string]any{},
		osEnv:    map[string]any{},
		flowInfo: map[string]any{"id": "node-test"},
		runInfo:  map[string]any{"id": "test", "mode": "manual"},
	}
	for _, o := range opts {
		o(e)
	}
	sv := &StaticView{values: map[string]any{}, loaded: map[string]StaticValue{}}
	for k, v := range static {
		sv.values[k] = v
		sv.loaded[k] = StaticValue{Value: v, Version: 1}
	}
	io := &nodeIO{in: Input{Items: items, Node: n.Name, Flow: e.flow.ID, exec: e, fnode: n, static: sv, now: e.x.now()}}
	in, out := &io.in, io.output(len(n.Ports))
	if err := safeRun(ctx, n.Impl, in, out, e.x.logger()); err != nil {
		return nil, err
	}
	res := &NodeResult{Ports: out.ports, Static: sv.pending()}
	for _, f := range out.failed {
		res.Failed = append(res.Failed, ItemFailure{Index: f.index, Item: f.item, Err: f.err})
	}
	return res, nil
}

// ExecOption adjusts ExecNode.
type ExecOption func(*execution)

// WithEnv sets $env.
func WithEnv(env map[string]string) ExecOption { return func(e *execution) { e.osEnv = envMap(env) } }

// WithSecrets sets $secrets: name → value.
func WithSecrets(secrets map[string]string) ExecOption {
	return func(e *execution) {
		e.secrets = make(map[string]any, len(secrets))
		for k, v := range secrets {
			e.secrets[k] = v
		}
	}
}

// WithNodeOutputs sets $node: name → items that node output on its first port.
func WithNodeOutputs(outs map[string][]Item) ExecOption {
	return func(e *execution) {
		for name, items := range outs {
			e.nodeOut[name] = nodeView([][]Item{items})
		}
	}
}
