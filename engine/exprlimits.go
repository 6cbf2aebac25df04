package engine

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// expr's own memory budget (exprMemoryBudget) counts the elements of lists, maps and ranges.
// It does not count text — repeat checks its count only after allocating, + and replace are not
// counted at all, so a dozen characters could double a string until the process ran out of
// memory — nor the work of predicates over lists that already exist, which expr cannot
// interrupt: all(s, all(s, all(s, true))) over a split string ran for hours. The patcher adds
// both: the calls below charge a per-evaluation exprBudget, reached through expr's $env, the
// whole environment (an expression's own $env is renamed $osenv, so only these calls see it).

// exprTextBudget bounds the bytes of text one evaluation may build.
const exprTextBudget = 64 << 20

// exprStepBudget bounds the work of predicates in one evaluation, counted as the nodes of a
// predicate's body each time it runs (a fraction of a second of work), as expr's memory
// budget allows a million elements.
const exprStepBudget = 1_000_000

// exprBudget is what is left of the budgets in one evaluation.
type exprBudget struct{ text, steps int }

var (
	errTextBudget = fmt.Errorf("memory budget exceeded: expressions may build at most %d MiB of text", exprTextBudget>>20)
	errStepBudget = errors.New("step budget exceeded: the expression's predicates ran too long")
)

// budgetOf returns the budget of the evaluation whose environment is env: expr's $env, which
// the patched calls pass first.
func budgetOf(env any) (*exprBudget, error) {
	if e, _ := env.(*Env); e != nil && e.budget != nil {
		return e.budget, nil
	}
	return nil, errors.New("expression budget missing") // a programming error: Eval sets it
}

// takeText charges n bytes of text.
func takeText(env any, n int) error {
	b, err := budgetOf(env)
	if err != nil {
		return err
	}
	if n < 0 || n > b.text {
		return errTextBudget
	}
	b.text -= n
	return nil
}

// patchLimits rewrites a node so that its evaluation is charged to the budget: string +
// string, repeat, replace and join work out the size of their text before building it; other
// builtins that return text (upper, toJSON, …) have their result charged, which bounds loops
// over them; and each run of a predicate's body is charged its size in nodes. It reports
// whether the node is one of those, and patches it only when apply is set.
//
// The calls are untyped, so the checker knows less about a patched tree; CompileExpr therefore
// checks the expression unpatched first, and patches only one that compiles, so its load-time
// errors are expr's own.
func patchLimits(node *ast.Node, apply bool) bool {
	env := &ast.IdentifierNode{Value: "$env"}
	call := func(name string, args ...ast.Node) bool {
		if apply {
			ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: name}, Arguments: append([]ast.Node{env}, args...)})
		}
		return true
	}
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		if n.Operator == "+" && mayBeString(n.Left.Type()) && mayBeString(n.Right.Type()) {
			return call("__add", n.Left, n.Right)
		}
	case *ast.BuiltinNode:
		if textFuncs[n.Name] != nil {
			return call("__"+n.Name, n.Arguments...)
		}
		if n.Type().Kind() == reflect.String {
			return call("__text", n)
		}
	case *ast.PredicateNode:
		if apply {
			size := &nodeCounter{}
			ast.Walk(&n.Node, size)
			n.Node = &ast.CallNode{Callee: &ast.IdentifierNode{Value: "__step"}, Arguments: []ast.Node{env, &ast.IntegerNode{Value: size.n}, n.Node}}
		}
		return true
	}
	return false
}

func mayBeString(t reflect.Type) bool {
	return t.Kind() == reflect.String || t.Kind() == reflect.Interface
}

type nodeCounter struct{ n int }

func (c *nodeCounter) Visit(*ast.Node) { c.n++ }

// textFuncs replace the builtins whose output can be far larger than their input; each works
// out the size of its result and charges it before building it.
var textFuncs = map[string]func(env any, args []any) (any, error){
	"repeat": func(env any, a []any) (any, error) {
		s, n := a[0].(string), runtime.ToInt(a[1])
		if n < 0 {
			return nil, fmt.Errorf("invalid argument for repeat (expected positive integer, got %d)", n)
		}
		if n > 0 && len(s) > exprTextBudget/n {
			return nil, errTextBudget
		}
		if err := takeText(env, len(s)*n); err != nil {
			return nil, err
		}
		return strings.Repeat(s, n), nil
	},
	"replace": func(env any, a []any) (any, error) {
		s, old, repl, n := a[0].(string), a[1].(string), a[2].(string), -1
		if len(a) == 4 {
			n = runtime.ToInt(a[3])
		}
		count := strings.Count(s, old)
		if n >= 0 {
			count = min(count, n)
		}
		if grow := len(repl) - len(old); grow > 0 && count > exprTextBudget/grow {
			return nil, errTextBudget
		}
		if err := takeText(env, len(s)+count*(len(repl)-len(old))); err != nil {
			return nil, err
		}
		return strings.Replace(s, old, repl, n), nil
	},
	"join": func(env any, a []any) (any, error) {
		sep := ""
		if len(a) == 2 {
			sep = a[1].(string)
		}
		var parts []string
		switch l := a[0].(type) {
		case []string:
			parts = l
		case []any:
			parts = make([]string, len(l))
			for i, e := range l {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("join: element %d is %s, want a string", i, JSONKind(e))
				}
				parts[i] = s
			}
		default:
			return nil, fmt.Errorf("invalid argument for join (type %T)", a[0])
		}
		size := len(sep) * max(len(parts)-1, 0)
		for _, p := range parts {
			size += len(p)
		}
		if err := takeText(env, size); err != nil {
			return nil, err
		}
		return strings.Join(parts, sep), nil
	},
}

// limitOptions registers the functions patchLimits calls. Their arguments were checked
// against the builtins' signatures before patching (see patchLimits), so the type assertions
// hold.
func limitOptions() []expr.Option {
	opts := []expr.Option{
		expr.Function("__add", func(a ...any) (any, error) {
			if l, ok := a[1].(string); ok {
				if r, ok := a[2].(string); ok {
					if err := takeText(a[0], len(l)+len(r)); err != nil {
						return nil, err
					}
					return l + r, nil
				}
			}
			return runtime.Add(a[1], a[2]), nil
		}),
		expr.Function("__text", func(a ...any) (any, error) {
			s := a[1].(string)
			return s, takeText(a[0], len(s))
		}),
		expr.Function("__step", func(a ...any) (any, error) {
			b, err := budgetOf(a[0])
			if err != nil {
				return nil, err
			}
			if b.steps -= a[1].(int); b.steps < 0 {
				return nil, errStepBudget
			}
			return a[2], nil
		}),
	}
	for name, fn := range textFuncs {
		opts = append(opts, expr.Function("__"+name, func(a ...any) (any, error) { return fn(a[0], a[1:]) }))
	}
	return opts
}
