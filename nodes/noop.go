package nodes

import "github.com/flowd/flowd/engine"

func noOpType() *engine.NodeType {
	return &engine.NodeType{
		Name: "noOp",
		Doc:  "Passes its items through unchanged; a named point to join branches or end a flow.",
		New: func(*engine.NodeConfig) (engine.Node, error) {
			return engine.NodeFunc(passThrough), nil
		},
	}
}
