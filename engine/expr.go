package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Env is what an expression sees. Every field is read-only to expressions; the code node is
// the one place that writes (through its assignments, not through Env).
type Env struct {
	// JSON is the current item. In a node that works on all items at once it is the first.
	JSON Item `expr:"$json"`
	// Input is every item the node received.
	Input []Item `expr:"$input"`
	// ItemIndex is the index of JSON in Input.
	ItemIndex int `expr:"$itemIndex"`
	// Node maps a node name to what it output in this run so far: {"json": first item,
	// "items": all items of its first output, "outputs": items per output}.
	Node map[string]any `expr:"$node"`
	// Static is the flow's static data as last committed, plus this node's own writes.
	Static map[string]any `expr:"$static"`
	// Vars holds the code node's local variables.
	Vars map[string]any `expr:"$vars"`
	// Now is the time the node started, in the flow's time zone.
	Now time.Time `expr:"$now"`
	// OSEnv is the process environment (string values; an unset or empty variable reads as
	// nil, so $env.X ?? "default" works). Expressions write it as $env: it is renamed at compile time,
	// since expr reserves $env for the whole scope.
	OSEnv map[string]any `expr:"$osenv"`
	Flow  map[string]any `expr:"$flow"` // id, name, version
	Run   map[string]any `expr:"$run"`  // id, mode, trigger, startedAt
	// Secrets holds the secrets the flow names ($secrets.NAME) that the executor's Secrets
	// has; a missing one reads as nil. Expressions can only name a secret with a constant
	// ($secrets.NAME or $secrets["NAME"]), so the secrets a flow uses are known at load.
	Secrets map[string]any `expr:"$secrets"`

	budget *exprBudget // set by Expr.Eval for expressions patchLimits changed
}

// exprMemoryBudget bounds what one evaluation may allocate (in expr's own units: elements of
// built arrays, maps and ranges), so a runaway expression fails instead of taking the process
// down.
const exprMemoryBudget = 1_000_000

// exprMaxNodes bounds the size of one compiled expression.
const exprMaxNodes = 10_000

// Expr is one compiled `{{ ... }}` expression.
type Expr struct {
	src     string
	program *vm.Program
	// staticKeys are the $static keys read with a constant name; staticAll is set when the
	// expression reads $static in a way that may touch any key.
	staticKeys []string
	staticAll  bool
	// node, flow and run are set when the expression reads $node, $flow or $run: runs build
	// those values only for flows that read them.
	node, flow, run bool
	// secrets are the secrets the expression names, in order, each with its byte offset in src.
	secrets []secretRef
	// limited is set when the expression charges an exprBudget, so its evaluation needs one.
	limited bool
}

// secretRef is one $secrets.NAME in an expression.
type secretRef struct {
	name string
	off  int // byte offset of the name in the expression's source
}

// Source returns the expression text between the braces.
func (e *Expr) Source() string { return e.src }

var vmPool = sync.Pool{New: func() any { return &vm.VM{} }}

// Eval runs the expression in env. It is safe for concurrent use.
func (e *Expr) Eval(env *Env) (any, error) {
	if e.limited {
		var run Env // a copy per evaluation, so concurrent ones keep their own budgets
		if env != nil {
			run = *env
		}
		run.budget = &exprBudget{text: exprTextBudget, steps: exprStepBudget}
		env = &run
	}
	m := vmPool.Get().(*vm.VM)
	m.MemoryBudget = exprMemoryBudget
	out, err := m.Run(e.program, env)
	vmPool.Put(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.src, unwrapExprError(err))
	}
	return out, nil
}

// unwrapExprError drops expr's multi-line caret rendering from run-time errors, which refers
// to the expression alone and repeats what the message says.
func unwrapExprError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return errors.New(fe.Message)
	}
	return err
}

// ExprError is a compile error in one expression; Offset is the byte offset within the
// template string where the problem is, so the loader can point into the flow file.
type ExprError struct {
	Offset int
	Msg    string
	Source string // the expression's text
	Column int    // byte offset of the problem within Source
}

// Error is one line, line breaks in the expression shown as spaces; the problem's position in
// the file points at the offending character.
func (e *ExprError) Error() string {
	return fmt.Sprintf("expression {{ %s }}: %s", oneLine.Replace(e.Source), oneLine.Replace(e.Msg))
}

var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

// runeOffset returns the byte offset of rune n of s, or len(s) when s has no more runes.
func runeOffset(s string, n int) int {
	for i := range s {
		if n <= 0 {
			return i
		}
		n--
	}
	return len(s)
}

// CompileExpr compiles one expression (without braces).
func CompileExpr(src string) (*Expr, error) {
	v := &exprPatcher{}
	program, err := expr.Compile(src, exprOptions(v)...)
	if err == nil && v.limited {
		// It builds text or runs predicates: compile it again with the budget's calls.
		v = &exprPatcher{limit: true}
		program, err = expr.Compile(src, exprOptions(v)...)
	}
	if err != nil {
		ee := &ExprError{Source: src, Msg: err.Error()}
		var fe *file.Error
		if errors.As(err, &fe) {
			ee.Msg = fe.Message
			// expr counts runes from the start in From; its Column restarts on each line.
			ee.Column = runeOffset(src, fe.From)
		}
		ee.Offset = ee.Column
		return nil, ee
	}
	if ee := v.secretsError(src); ee != nil {
		return nil, ee
	}
	e := &Expr{src: src, program: program, staticAll: v.staticAll, secrets: v.secretRefs(src), limited: v.limited, node: v.node, flow: v.flow, run: v.run}
	if v.staticIdents > v.staticMembers {
		e.staticAll = true
	}
	for k := range v.staticKeys {
		e.staticKeys = append(e.staticKeys, k)
	}
	return e, nil
}

// exprPatcher rewrites a compiled expression's tree before type checking:
//   - $env becomes $osenv (expr itself reserves $env);
//   - x.minus(1, 'minute') and the other method-style helpers become __minus(x, 1, 'minute'),
//     so n8n-style calls on dates and item lists read naturally;
//   - field access is null-safe: a.b is null when a is null (as with a?.b);
//   - it records which $static keys are read, for conflict detection at commit;
//   - it records which secrets are named, and where, so the loader can check them.
//   - text built and predicates run are charged to a budget (patchLimits).
type exprPatcher struct {
	staticKeys    map[string]bool
	staticAll     bool
	staticIdents  int
	staticMembers int
	// secretIdents are the $secrets identifiers; secretMembers those a constant member access
	// consumed, with the name and its location.
	secretIdents  []*ast.IdentifierNode
	secretMembers map[*ast.IdentifierNode]secretUse
	// limit makes the patcher add the budget's calls; limited is set when there are any to add.
	limit, limited bool
	// node, flow and run are set when the expression reads $node, $flow or $run.
	node, flow, run bool
}

type secretUse struct {
	name string
	at   int // rune offset of the name in the source
}

func (p *exprPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		switch n.Value {
		case "$env":
			n.Value = "$osenv"
		case "$static":
			p.staticIdents++
		case "$node":
			p.node = true
		case "$flow":
			p.flow = true
		case "$run":
			p.run = true
		case "$secrets":
			p.secretIdents = append(p.secretIdents, n)
		}
	case *ast.MemberNode:
		if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == "$secrets" {
			if s, ok := n.Property.(*ast.StringNode); ok {
				if p.secretMembers == nil {
					p.secretMembers = map[*ast.IdentifierNode]secretUse{}
				}
				p.secretMembers[id] = secretUse{name: s.Value, at: n.Property.Location().From}
			}
		}
		// Field access on null yields null instead of an error, so that
		// $json.body.name ?? 'default' works when body is missing.
		if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == "$static" {
			p.staticMembers++
			if s, ok := n.Property.(*ast.StringNode); ok {
				if p.staticKeys == nil {
					p.staticKeys = map[string]bool{}
				}
				p.staticKeys[s.Value] = true
			} else {
				p.staticAll = true
			}
		}
		// Field access on null yields null instead of an error, so that
		// $json.body.name ?? 'default' works when body is missing: each access becomes its own
		// optional chain (a?.b), nested ones short-circuiting in turn.
		if _, ok := n.Property.(*ast.StringNode); ok && !n.Method {
			n.Optional = true
			ast.Patch(node, &ast.ChainNode{Node: n})
		}
	case *ast.BinaryNode, *ast.BuiltinNode, *ast.PredicateNode:
		p.limited = patchLimits(node, p.limit) || p.limited
	case *ast.CallNode:
		m, ok := n.Callee.(*ast.MemberNode)
		if !ok {
			return
		}
		name, ok := m.Property.(*ast.StringNode)
		if !ok || !methodSugar[name.Value] {
			return
		}
		args := append([]ast.Node{m.Node}, n.Arguments...)
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "__" + name.Value}, Arguments: args})
	}
}

// secretsError returns the first misuse of $secrets in src: a use other than naming one
// secret with a constant (which would let an expression reach secrets the loader cannot
// see), or a name that is not a valid secret name.
func (p *exprPatcher) secretsError(src string) *ExprError {
	for _, id := range p.secretIdents {
		use, ok := p.secretMembers[id]
		if !ok {
			col := runeOffset(src, id.Location().From)
			return &ExprError{Source: src, Column: col, Offset: col,
				Msg: "$secrets can only be used as $secrets.NAME (or $secrets[\"NAME\"]), naming one secret"}
		}
		if err := CheckSecretName(use.name); err != nil {
			col := runeOffset(src, use.at)
			return &ExprError{Source: src, Column: col, Offset: col, Msg: err.Error()}
		}
	}
	return nil
}

// secretRefs lists the secrets named, in source order.
func (p *exprPatcher) secretRefs(src string) []secretRef {
	var out []secretRef
	for _, id := range p.secretIdents {
		use := p.secretMembers[id]
		out = append(out, secretRef{name: use.name, off: runeOffset(src, use.at)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].off < out[j].off })
	return out
}

func exprOptions(p *exprPatcher) []expr.Option {
	opts := []expr.Option{
		expr.Env(Env{}),
		expr.Patch(p),
		expr.MaxNodes(exprMaxNodes),
	}
	for _, f := range exprFuncs {
		opts = append(opts, expr.Function(f.name, f.fn))
		if methodSugar[f.name] {
			opts = append(opts, expr.Function("__"+f.name, f.fn))
		}
	}
	for _, f := range methodOnly {
		opts = append(opts, expr.Function("__"+f.name, f.fn))
	}
	opts = append(opts, limitOptions()...)
	return opts
}

// Template is a string parameter that may hold `{{ ... }}` expressions. A template that is
// exactly one expression evaluates to that expression's typed value; otherwise the parts are
// rendered as text and joined.
type Template struct {
	raw   string
	parts []templatePart
	whole *Expr // set when the template is exactly one expression
}

type templatePart struct {
	text string
	expr *Expr
	at   int // byte offset of the expression's source in the template's raw text
}

// CompileTemplate compiles s. n8n's expression marker, a leading "=" on a string that holds
// {{ … }}, is accepted and dropped. Errors are *ExprError with Offset relative to s.
func CompileTemplate(s string) (*Template, error) {
	t := &Template{raw: s}
	body, base := s, 0
	if strings.HasPrefix(s, "=") && strings.Contains(s, "{{") {
		body, base = s[1:], 1
	}
	for i := 0; i < len(body); {
		open := strings.Index(body[i:], "{{")
		if open < 0 {
			t.parts = append(t.parts, templatePart{text: body[i:]})
			break
		}
		open += i
		if open > i {
			t.parts = append(t.parts, templatePart{text: body[i:open]})
		}
		end := closingBraces(body, open+2)
		if end < 0 {
			return nil, &ExprError{Offset: base + open, Msg: "unclosed {{", Source: body[open:]}
		}
		src := body[open+2 : end]
		trimmed := strings.TrimSpace(src)
		if trimmed == "" {
			return nil, &ExprError{Offset: base + open, Msg: "empty expression", Source: src}
		}
		e, err := CompileExpr(trimmed)
		if err != nil {
			ee := err.(*ExprError)
			ee.Offset = base + open + 2 + strings.Index(src, trimmed) + ee.Column
			return nil, ee
		}
		t.parts = append(t.parts, templatePart{expr: e, at: base + open + 2 + strings.Index(src, trimmed)})
		i = end + 2
	}
	if len(t.parts) == 1 && t.parts[0].expr != nil {
		t.whole = t.parts[0].expr
	}
	return t, nil
}

// closingBraces returns the index of the "}}" that closes an expression starting at i, skipping
// braces of object literals and anything inside string literals; -1 when there is none.
func closingBraces(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\'', '`':
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && c != '`' {
					i++
				}
			}
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
				continue
			}
			if i+1 < len(s) && s[i+1] == '}' {
				return i
			}
		}
	}
	return -1
}

// MustTemplate compiles s or panics; for templates built into the program.
func MustTemplate(s string) *Template {
	t, err := CompileTemplate(s)
	if err != nil {
		panic(err)
	}
	return t
}

// Raw returns the template's source text.
func (t *Template) Raw() string { return t.raw }

// IsConst reports whether the template holds no expression.
func (t *Template) IsConst() bool {
	for _, p := range t.parts {
		if p.expr != nil {
			return false
		}
	}
	return true
}

// Exprs returns the template's expressions.
func (t *Template) Exprs() []*Expr {
	var out []*Expr
	for _, p := range t.parts {
		if p.expr != nil {
			out = append(out, p.expr)
		}
	}
	return out
}

// Eval returns the typed value of a single-expression template, or the rendered text.
func (t *Template) Eval(env *Env) (any, error) {
	if t.whole != nil {
		return t.whole.Eval(env)
	}
	return t.EvalString(env)
}

// EvalString renders the template as text; values are formatted by FormatValue.
func (t *Template) EvalString(env *Env) (string, error) {
	if len(t.parts) == 1 && t.parts[0].expr == nil {
		return t.parts[0].text, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.text)
			continue
		}
		v, err := p.expr.Eval(env)
		if err != nil {
			return "", err
		}
		b.WriteString(FormatValue(v))
	}
	return b.String(), nil
}

// FormatValue renders a value as text: strings as they are, nil as "", times as ISO 8601 with
// milliseconds and offset, numbers in their shortest form, anything else as JSON.
func FormatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return FormatTime(x)
	case time.Duration:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	}
	b, err := json.Marshal(ToJSONValue(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// FormatTime is the ISO 8601 form flowd writes times in: 2026-11-27T06:10:57.123+01:00.
func FormatTime(t time.Time) string {
	return t.Format("2006-01-02T15:04:05.000Z07:00")
}

// ToJSONValue converts a value that an expression produced into one that can live in an item
// or in static data: times become ISO strings, durations their text, other maps and slices
// map[string]any and []any, NaN and infinities nil; anything else goes through encoding/json.
func ToJSONValue(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int64, json.Number:
		return x
	case int:
		return int64(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		if isInt64(x) {
			return int64(x)
		}
		return x
	case float32:
		return ToJSONValue(float64(x))
	case int32:
		return int64(x)
	case uint:
		return int64(x)
	case time.Time:
		return FormatTime(x)
	case time.Duration:
		return x.String()
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = ToJSONValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = ToJSONValue(e)
		}
		return out
	case []Item:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = ToJSONValue(e)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = e
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = ToJSONValue(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		for _, k := range rv.MapKeys() {
			out[fmt.Sprint(k.Interface())] = ToJSONValue(rv.MapIndex(k).Interface())
		}
		return out
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return ToJSONValue(rv.Convert(reflect.TypeOf(int64(0))).Interface())
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return fmt.Sprint(v)
	}
	return ToJSONValue(out)
}
