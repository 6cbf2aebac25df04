package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Node is a built node of a flow, made once per flow load by its type's constructor and shared
// by every run of that flow version, so it must be safe for concurrent use.
//
// Run is called once per delivery with all the items the node received. It emits items on its
// output ports through out and may fail single items with out.FailItem; the executor applies the
// node's onError setting to those. A returned error fails the whole node execution (it is
// retried when the node says retryOnFail). Run must honour ctx: it is cancelled when the run is
// cancelled, the flow times out or the node's own timeout passes.
type Node interface {
	Run(ctx context.Context, in *Input, out *Output) error
}

// NodeFunc adapts a function to Node.
type NodeFunc func(ctx context.Context, in *Input, out *Output) error

// Run calls f.
func (f NodeFunc) Run(ctx context.Context, in *Input, out *Output) error { return f(ctx, in, out) }

// NodeType describes one kind of node: its name, parameters, ports and constructor. It is
// registered once and is the single source for validation, docs and the UI's node reference.
type NodeType struct {
	Name    string   // as written in flow files, e.g. "httpRequest"
	Aliases []string // other accepted names, e.g. "n8n-nodes-base.httpRequest"
	Doc     string   // one line
	Params  []ParamSpec
	// Outputs names the output ports. Nil means one port, "main".
	Outputs []string
	// ContinueOutput is the port that failed items go to under onError "continue" (the If
	// node's false output, as in n8n); 0 for most types.
	ContinueOutput int
	// Trigger marks a node that starts runs (webhook, schedule). A trigger has no inputs; in a
	// run it emits the trigger items it is given.
	Trigger bool
	// SideEffects marks a node that acts outside flowd (an HTTP request to another system).
	// Its run's start record is committed before it executes, so that a crash after it acted
	// still leaves the run in the record (as crashed), like a static-data write does.
	SideEffects bool
	// New builds the node from its configuration. It does all parsing and compiling; an error
	// it records in cfg.Params (or returns) makes the flow invalid.
	New func(cfg *NodeConfig) (Node, error)
}

// Ports returns the type's output port names.
func (t *NodeType) Ports() []string {
	if len(t.Outputs) == 0 {
		return []string{"main"}
	}
	return t.Outputs
}

// NodeConfig is what a constructor gets.
type NodeConfig struct {
	Flow   string // flow id
	Name   string // node name
	Type   *NodeType
	Params *Params
	// Settings are the flow's settings, for defaults such as the time zone.
	Settings *FlowSettings
}

// Registry maps type names and aliases to node types. It is a value: build one with
// NewRegistry and fill it (nodes.Register does the built-ins).
type Registry struct {
	types map[string]*NodeType
	names []string // canonical names, sorted
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{types: map[string]*NodeType{}}
}

// Register adds t under its name and aliases. A name already taken is an error.
func (r *Registry) Register(t *NodeType) error {
	if t.Name == "" || t.New == nil {
		return fmt.Errorf("register node type %q: name and constructor are required", t.Name)
	}
	names := append([]string{t.Name}, t.Aliases...)
	for _, n := range names {
		if _, ok := r.types[n]; ok {
			return fmt.Errorf("register node type %q: name %q is already registered", t.Name, n)
		}
	}
	for _, n := range names {
		r.types[n] = t
	}
	r.names = append(r.names, t.Name)
	sort.Strings(r.names)
	return nil
}

// Lookup returns the type registered under name or an alias, or nil.
func (r *Registry) Lookup(name string) *NodeType { return r.types[name] }

// Types returns every registered type once, sorted by name.
func (r *Registry) Types() []*NodeType {
	out := make([]*NodeType, len(r.names))
	for i, n := range r.names {
		out[i] = r.types[n]
	}
	return out
}

// suggest returns a did-you-mean hint for an unknown type name.
func (r *Registry) suggest(name string) string {
	bare := strings.TrimPrefix(name, "n8n-nodes-base.")
	if bare != name {
		if t := r.types[bare]; t != nil {
			return fmt.Sprintf(" (did you mean %q?)", t.Name)
		}
	}
	return DidYouMean(bare, r.names)
}
