// Package nodes holds flowd's built-in node types, one file each.
package nodes

import (
	"context"
	"fmt"

	"github.com/flowd/flowd/engine"
)

// n8nPrefix is the prefix n8n puts on its type names; each built-in accepts it as an alias.
const n8nPrefix = "n8n-nodes-base."

// Register adds the built-in node types to r.
func Register(r *engine.Registry) error {
	for _, t := range []*engine.NodeType{
		webhookType(),
		scheduleType(),
		codeType(),
		ifType(),
		httpRequestType(),
		noOpType(),
	} {
		t.Aliases = append(t.Aliases, n8nPrefix+t.Name)
		if err := r.Register(t); err != nil {
			return fmt.Errorf("register built-in nodes: %w", err)
		}
	}
	return nil
}

// NewRegistry returns a registry holding the built-in node types.
func NewRegistry() *engine.Registry {
	r := engine.NewRegistry()
	if err := Register(r); err != nil {
		panic(err) // the built-ins are fixed at compile time: a clash is a programming error
	}
	return r
}

// passThrough emits every input item on the first port unchanged.
func passThrough(_ context.Context, in *engine.Input, out *engine.Output) error {
	out.Emit(0, in.Items...)
	return nil
}
