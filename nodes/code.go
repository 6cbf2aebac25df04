package nodes

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/flowd/flowd/engine"
)

// The code node is where a flow computes values and writes static data. It is built on expr,
// not JavaScript: an ordered list of statements, each an expression or an assignment
//
//	$static.accessToken = $json.access_token ?? $json.AccessToken
//	$vars.lifetime = $json.expires_in ?? 60
//	$json.expiresAt = $now.plus($vars.lifetime, 'seconds')   (runOnceForEachItem only)
//	delete $static.oldKey
//
// followed by what it returns. Assignments to $static are staged and committed atomically
// when the node succeeds; later statements see them.
type codeNode struct {
	eachItem bool
	stmts    []codeStmt
	ret      *engine.ValueTemplate // nil: default output
}

type codeStmt struct {
	text   string // for errors
	target string // "$static", "$json", "$vars" or "" for a bare expression
	path   []string
	del    bool
	value  *engine.Expr // right-hand side, or the bare expression
	// current reads the target's top-level value, for assignments below it ($static.a.b = 1).
	current *engine.Expr
}

// codeTarget matches the start of an assignment or deletion: an optional "delete", a root,
// and a path of .name or ["name"] steps, then "=" that is not "==".
var (
	codeTarget = regexp.MustCompile(`^\s*(delete\s+)?(\$static|\$json|\$vars)((?:\s*\.\s*[A-Za-z_$][A-Za-z0-9_$]*|\s*\[\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*\])+)\s*`)
	codeStep   = regexp.MustCompile(`\.\s*([A-Za-z_$][A-Za-z0-9_$]*)|\[\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*\]`)
)

func codeType() *engine.NodeType {
	return &engine.NodeType{
		Name: "code",
		Doc:  "Computes values with expr statements, writes static data, and returns items.",
		Params: []engine.ParamSpec{
			{Name: "mode", Kind: engine.KindString, Default: "runOnceForAllItems", Enum: []string{"runOnceForAllItems", "runOnceForEachItem"}, Doc: "Run the statements once for all items ($json is the first), or once per item."},
			{Name: "code", Kind: engine.KindAny, Doc: `Statements in order: "target = expression", "delete target" or an expression; targets are $static.key, $vars.name and (per item) $json.field.`},
			{Name: "return", Kind: engine.KindAny, Doc: "What to output: an object (one item), a list (items) or null (none); strings may hold {{ }}. Default: the input items (per item: $json as changed)."},
		},
		New: newCode,
	}
}

func newCode(cfg *engine.NodeConfig) (engine.Node, error) {
	p := cfg.Params
	n := &codeNode{eachItem: p.String("mode") == "runOnceForEachItem"}
	for _, t := range p.Texts("code") {
		if s, ok := parseCodeStmt(t, n.eachItem); ok {
			n.stmts = append(n.stmts, s)
		}
	}
	n.ret = p.ValueTemplate("return")
	if !p.Has("code") && !p.Has("return") {
		return nil, fmt.Errorf("parameters: give code, return or both")
	}
	return n, nil
}

func parseCodeStmt(t engine.Text, eachItem bool) (codeStmt, bool) {
	s := codeStmt{text: strings.TrimSpace(t.Value)}
	if s.text == "" {
		t.Errorf(0, "empty statement")
		return s, false
	}
	m := codeTarget.FindStringSubmatchIndex(t.Value)
	if m == nil {
		s.value = t.Expr(0, t.Value)
		return s, s.value != nil
	}
	rest := t.Value[m[1]:]
	s.del = m[2] >= 0
	isAssign := strings.HasPrefix(rest, "=") && !strings.HasPrefix(rest, "==")
	if !s.del && !isAssign {
		s.value = t.Expr(0, t.Value) // an expression that starts with a path, like $vars.a > 1
		return s, s.value != nil
	}
	s.target = t.Value[m[4]:m[5]]
	for _, step := range codeStep.FindAllStringSubmatch(t.Value[m[6]:m[7]], -1) {
		if step[1] != "" {
			s.path = append(s.path, step[1])
			continue
		}
		key, err := unquoteKey(step[2])
		if err != nil {
			t.Errorf(m[6], "bad key %s: %v", step[2], err)
			return s, false
		}
		s.path = append(s.path, key)
	}
	if s.target == "$json" && !eachItem {
		t.Errorf(m[4], `$json can be assigned only with "mode": "runOnceForEachItem"; return the items instead`)
		return s, false
	}
	if s.del {
		if strings.TrimSpace(rest) != "" {
			t.Errorf(m[1], "unexpected %q after delete target", strings.TrimSpace(rest))
			return s, false
		}
	} else {
		at := m[1] + 1
		src := t.Value[at:]
		if strings.TrimSpace(src) == "" {
			t.Errorf(at, "missing value after =")
			return s, false
		}
		if s.value = t.Expr(at, src); s.value == nil {
			return s, false
		}
	}
	if s.target == "$static" && len(s.path) > 1 {
		// Reading the top-level value both gives the object to change and records the read
		// for conflict detection.
		s.current = t.Expr(0, fmt.Sprintf("%s[%s]", s.target, strconv.Quote(s.path[0])))
	}
	return s, true
}

func unquoteKey(q string) (string, error) {
	if strings.HasPrefix(q, "'") {
		q = `"` + strings.ReplaceAll(strings.ReplaceAll(q[1:len(q)-1], `"`, `\"`), `\'`, `'`) + `"`
	}
	return strconv.Unquote(q)
}

func (n *codeNode) Run(ctx context.Context, in *engine.Input, out *engine.Output) error {
	if !n.eachItem {
		items, err := n.runOnce(ctx, in, -1)
		if err != nil {
			return err
		}
		out.Emit(0, items...)
		return nil
	}
	for i, item := range in.Items {
		if err := ctx.Err(); err != nil {
			return err
		}
		items, err := n.runOnce(ctx, in, i)
		if err != nil {
			out.FailItem(i, item, err)
			continue
		}
		out.Emit(0, items...)
	}
	return nil
}

// runOnce runs the statements for item i (or all items when i < 0) and builds the output.
func (n *codeNode) runOnce(ctx context.Context, in *engine.Input, i int) ([]engine.Item, error) {
	env, err := in.Env(ctx, i)
	if err != nil {
		return nil, err
	}
	env.Vars = map[string]any{}
	if n.eachItem {
		env.JSON = copyItem(env.JSON)
	}
	for k, s := range n.stmts {
		if err := n.exec(ctx, in, env, s); err != nil {
			return nil, fmt.Errorf("code[%d]: %w", k, err) // the error quotes the expression that failed
		}
	}
	if n.ret == nil {
		if n.eachItem {
			return []engine.Item{env.JSON}, nil
		}
		return in.Items, nil
	}
	v, err := n.ret.Eval(env)
	if err != nil {
		return nil, fmt.Errorf("return: %w", err)
	}
	return toItems(v)
}

func (n *codeNode) exec(ctx context.Context, in *engine.Input, env *engine.Env, s codeStmt) error {
	if s.target == "" {
		_, err := s.value.Eval(env)
		return err
	}
	var val any
	if !s.del {
		v, err := s.value.Eval(env)
		if err != nil {
			return err
		}
		val = engine.ToJSONValue(v)
	}
	switch s.target {
	case "$vars":
		return assignPath(env.Vars, s, val)
	case "$json":
		return assignPath(env.JSON, s, val)
	}
	st, err := in.Static(ctx)
	if err != nil {
		return err
	}
	if env.Static == nil {
		env.Static = st.Values()
	}
	key := s.path[0]
	if len(s.path) == 1 {
		if s.del {
			st.Delete(key)
		} else {
			st.Set(key, val)
		}
		return nil
	}
	cur, err := s.current.Eval(env)
	if err != nil {
		return err
	}
	obj, ok := engine.DeepCopy(cur).(map[string]any)
	if cur == nil {
		obj, ok = map[string]any{}, true
	}
	if !ok {
		return fmt.Errorf("$static.%s is not an object", key)
	}
	if err := setPath(obj, s.path[1:], val, s.del); err != nil {
		return fmt.Errorf("$static.%s: %w", key, err)
	}
	st.Set(key, obj)
	return nil
}

// assignPath sets or deletes the path in root, copying nested objects on the way so that
// items other nodes emitted are never changed in place.
func assignPath(root map[string]any, s codeStmt, val any) error {
	if err := setPath(root, s.path, val, s.del); err != nil {
		return fmt.Errorf("%s: %w", s.target, err)
	}
	return nil
}

func setPath(obj map[string]any, path []string, val any, del bool) error {
	for i, k := range path[:len(path)-1] {
		next, ok := obj[k].(map[string]any)
		switch {
		case obj[k] == nil:
			next = map[string]any{}
		case !ok:
			return fmt.Errorf("%s is not an object", strings.Join(path[:i+1], "."))
		default:
			next = copyItem(next)
		}
		obj[k] = next
		obj = next
	}
	last := path[len(path)-1]
	if del {
		delete(obj, last)
	} else {
		obj[last] = val
	}
	return nil
}

func copyItem(it engine.Item) engine.Item {
	out := make(engine.Item, len(it)+2)
	for k, v := range it {
		out[k] = v
	}
	return out
}

// toItems turns a return value into items (see engine.ItemsOf).
func toItems(v any) ([]engine.Item, error) {
	items, err := engine.ItemsOf(v)
	if err != nil {
		return nil, fmt.Errorf("return: %w", err)
	}
	return items, nil
}
