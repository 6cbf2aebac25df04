package engine

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrStaticConflict means static data changed between a node's read and its commit.
	// The executor runs the node again on fresh data.
	ErrStaticConflict = errors.New("static data changed concurrently")
	// ErrUnknownNodeType is wrapped by load problems naming a type no registry entry has.
	ErrUnknownNodeType = errors.New("unknown node type")
	// ErrNoTrigger is returned when a run is asked for a flow or trigger that cannot start it.
	ErrNoTrigger = errors.New("no such trigger")
	// ErrNotFound is wrapped by stores when a requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrStoreUnavailable is wrapped by stores when they cannot write at all — a full disk, a
	// read-only or vanished file — as opposed to a problem with one record. Callers refuse
	// new work (HTTP 503) until writes succeed again.
	ErrStoreUnavailable = errors.New("the database cannot be written")
)

// Problem is one thing wrong with a flow file, positioned like a compiler message:
// "flows/token.json:41:18: node "get new accessToken": parameters.url: required".
type Problem struct {
	File    string
	Pos     Position // zero when the problem has no single place
	Warning bool     // a warning does not make the flow invalid
	Msg     string
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Pos.Line, p.Pos.Col)
	}
	b.WriteString(": ")
	if p.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one or more flow files, in file order. It is an error only
// when it holds at least one problem that is not a warning.
type Problems []*Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As see each problem.
func (ps Problems) Unwrap() []error {
	out := make([]error, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

// Errors returns only the problems that are not warnings.
func (ps Problems) Errors() Problems {
	var out Problems
	for _, p := range ps {
		if !p.Warning {
			out = append(out, p)
		}
	}
	return out
}

// Warnings returns only the warnings.
func (ps Problems) Warnings() Problems {
	var out Problems
	for _, p := range ps {
		if p.Warning {
			out = append(out, p)
		}
	}
	return out
}

// NodeError is a node's failure in a run, carrying the flow, node and type once.
type NodeError struct {
	Flow, Node, Type string
	Err              error
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("node %q (%s): %v", e.Node, e.Type, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }
