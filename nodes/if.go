package nodes

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowd/flowd/engine"
)

// ifOperations lists the operations of each operand type, in the order the docs give them.
// They are n8n's If v2 names.
var ifOperations = []struct {
	typ string
	ops []string
}{
	{"string", []string{"exists", "notExists", "empty", "notEmpty", "equals", "notEquals", "contains", "notContains", "startsWith", "notStartsWith", "endsWith", "notEndsWith", "regex", "notRegex"}},
	{"number", []string{"exists", "notExists", "empty", "notEmpty", "equals", "notEquals", "gt", "lt", "gte", "lte"}},
	{"dateTime", []string{"exists", "notExists", "empty", "notEmpty", "equals", "notEquals", "after", "before", "afterOrEquals", "beforeOrEquals"}},
	{"boolean", []string{"exists", "notExists", "empty", "notEmpty", "true", "false", "equals", "notEquals"}},
	{"array", []string{"exists", "notExists", "empty", "notEmpty", "contains", "notContains", "lengthEquals", "lengthNotEquals", "lengthGt", "lengthLt", "lengthGte", "lengthLte"}},
	{"object", []string{"exists", "notExists", "empty", "notEmpty"}},
}

func ifType() *engine.NodeType {
	return &engine.NodeType{
		Name:    "if",
		Doc:     "Sends each item, unchanged, to the true or false output by typed conditions or one boolean expression.",
		Outputs: []string{"true", "false"},
		// Under onError "continue" a failed item goes to false, as in n8n.
		ContinueOutput: 1,
		Params: []engine.ParamSpec{
			{Name: "conditions", Kind: engine.KindObject, Doc: `{"combinator": "and"|"or", "conditions": [{"leftValue", "operator": "type:operation" or {"type", "operation"}, "rightValue"}], "options": {"typeValidation": "strict"|"loose", "caseSensitive": true}}; n8n If v2's block loads as is.`},
			{Name: "condition", Kind: engine.KindTemplate, Doc: "One expression that must give a boolean (null counts as false); the alternative to conditions."},
			{Name: "looseTypeValidation", Kind: engine.KindBool, Default: false, Doc: "true: convert operands to the operator's type instead of failing the item (n8n If 2.2); overrides conditions.options.typeValidation."},
			{Name: "options", Kind: engine.KindObject, Doc: `n8n If v2.0 options: "ignoreCase" (true: compare text case-insensitively) and "looseTypeValidation".`},
		},
		New: newIf,
	}
}

// ifNode routes each item to port 0 (true) or port 1 (false). It is read-only after
// construction and safe for concurrent runs.
//
// Conditions are evaluated per item, in order, lazily: "and" stops at the first false one, "or"
// at the first true one, so a later condition's expressions are not evaluated. An expression
// error, a value of the wrong type (strict) or one that cannot be converted (loose) fails the
// item with Output.FailItem; the other items go on.
type ifNode struct {
	conditions []*ifCondition
	or         bool
	loose      bool
	ignoreCase bool
	// single is the "condition" parameter; nil when conditions is used.
	single *ifOperand
}

type ifCondition struct {
	index       int
	typ, op     string
	left, right ifOperand
	// re is the compiled pattern of regex and notRegex when rightValue is a constant.
	re *regexp.Regexp
}

// ifOperand is a leftValue, rightValue or condition: a template, a JSON value with expressions
// in its strings, or a constant (both nil).
type ifOperand struct {
	tmpl     *engine.Template
	vt       *engine.ValueTemplate
	constant any
}

func (o *ifOperand) isConst() bool { return o.tmpl == nil && o.vt == nil }

func (o *ifOperand) eval(env *engine.Env) (any, error) {
	switch {
	case o.tmpl != nil:
		return o.tmpl.Eval(env)
	case o.vt != nil:
		return o.vt.Eval(env)
	}
	return o.constant, nil
}

func newIf(cfg *engine.NodeConfig) (engine.Node, error) {
	p := cfg.Params
	n := &ifNode{loose: p.Bool("looseTypeValidation")}
	if _, ok := p.Value("options").(map[string]any); ok {
		o := p.Object("options")
		if o.Bool("looseTypeValidation") {
			n.loose = true
		}
		n.ignoreCase = o.Bool("ignoreCase")
	}
	hasList, hasOne := p.Has("conditions"), p.Has("condition")
	switch {
	case hasList && hasOne:
		p.Errorf("condition", "set conditions or condition, not both")
	case !hasList && !hasOne:
		p.Errorf("", "conditions or condition is required")
	}
	if hasList {
		n.readConditions(p)
	}
	if hasOne {
		n.readSingle(p)
	}
	return n, nil
}

// readConditions reads the conditions block. Its options come first: the type validation and
// case sensitivity decide how constants are checked and patterns compiled.
func (n *ifNode) readConditions(p *engine.Params) {
	if _, ok := p.Value("conditions").(map[string]any); !ok {
		return // the spec check has reported the kind
	}
	cp := p.Object("conditions")
	n.or = cp.OneOf("combinator", "and", "or") == "or"
	if _, ok := cp.Value("options").(map[string]any); ok {
		o := cp.Object("options")
		if o.OneOf("typeValidation", "strict", "loose") == "loose" {
			n.loose = true
		}
		if o.Has("caseSensitive") && !o.Bool("caseSensitive") {
			n.ignoreCase = true
		}
		// n8n's bookkeeping: the filter version and an unused default left value.
		o.Value("version")
		o.Value("leftValue")
	} else if cp.Has("options") {
		cp.Errorf("options", "want an object, got %s", ifKind(cp.Value("options")))
	}
	if !cp.Has("conditions") {
		cp.Errorf("conditions", "required")
		return
	}
	if raw, ok := cp.Value("conditions").([]any); ok && len(raw) == 0 {
		cp.Errorf("conditions", "want at least one condition")
	}
	list := cp.List("conditions")
	for i, c := range list {
		if cond := n.readCondition(c, i); cond != nil {
			n.conditions = append(n.conditions, cond)
		}
	}
}

func (n *ifNode) readCondition(c *engine.Params, index int) *ifCondition {
	c.Value("id") // n8n's condition id
	cond := &ifCondition{index: index}
	cond.typ, cond.op = ifReadOperator(c)
	left, hasLeft := ifReadOperand(c, "leftValue")
	right, hasRight := ifReadOperand(c, "rightValue")
	cond.left, cond.right = left, right
	if !hasLeft {
		c.Errorf("leftValue", "required")
	}
	if cond.op == "" {
		return nil // the operator's problem is recorded
	}
	if ifPresence(cond.op) {
		return cond // the type is not checked and rightValue, if any, is ignored
	}
	if hasLeft && left.isConst() {
		if _, err := n.convert(left.constant, cond.typ, nil); err != nil {
			c.Errorf("leftValue", "%v", err)
		}
	}
	if !ifTakesRight(cond.op) {
		return cond
	}
	if !hasRight {
		c.Errorf("rightValue", "required by %s:%s", cond.typ, cond.op)
		return cond
	}
	if !right.isConst() {
		return cond
	}
	v, err := n.convert(right.constant, ifRightType(cond.typ, cond.op), nil)
	if err != nil {
		c.Errorf("rightValue", "%v", err)
		return cond
	}
	if s, ok := v.(string); ok && (cond.op == "regex" || cond.op == "notRegex") {
		if cond.re, err = ifCompileRegex(s, n.ignoreCase); err != nil {
			c.Errorf("rightValue", "%v", err)
		}
	}
	return cond
}

func (n *ifNode) readSingle(p *engine.Params) {
	switch p.Value("condition").(type) {
	case []any, map[string]any:
		return // the spec check has reported the kind
	}
	o, _ := ifReadOperand(p, "condition")
	if o.isConst() {
		if _, err := n.truth(o.constant); err != nil {
			p.Errorf("condition", "%v", err)
		}
	}
	n.single = &o
}

// ifReadOperator reads "operator": "type:operation" or {"type", "operation"} (plus n8n's
// singleValue, rightType and name hints, which are derived from the operation and ignored).
// It returns empty strings after recording a problem.
func ifReadOperator(c *engine.Params) (typ, op string) {
	if !c.Has("operator") {
		c.Errorf("operator", "required")
		return "", ""
	}
	switch v := c.Value("operator").(type) {
	case string:
		t, o, ok := strings.Cut(v, ":")
		if !ok {
			c.Errorf("operator", `want "type:operation" such as "string:equals", got %q`, v)
			return "", ""
		}
		if msg := ifCheckType(t); msg != "" {
			c.Errorf("operator", "%s", msg)
			return "", ""
		}
		if msg := ifCheckOperation(t, o); msg != "" {
			c.Errorf("operator", "%s", msg)
			return "", ""
		}
		return t, o
	case map[string]any:
		o := c.Object("operator")
		o.Value("singleValue")
		o.Value("rightType")
		o.Value("name")
		t, op := o.String("type"), o.String("operation")
		switch {
		case !o.Has("type"):
			o.Errorf("type", "required")
		case !o.Has("operation"):
			o.Errorf("operation", "required")
		case ifCheckType(t) != "":
			o.Errorf("type", "%s", ifCheckType(t))
		case ifCheckOperation(t, op) != "":
			o.Errorf("operation", "%s", ifCheckOperation(t, op))
		default:
			return t, op
		}
		return "", ""
	default:
		c.Errorf("operator", `want "type:operation" or {"type": …, "operation": …}, got %s`, ifKind(v))
		return "", ""
	}
}

func ifCheckType(typ string) string {
	names := make([]string, len(ifOperations))
	for i, t := range ifOperations {
		if t.typ == typ {
			return ""
		}
		names[i] = t.typ
	}
	return fmt.Sprintf("unknown type %q%s; want one of %s", typ, engine.DidYouMean(typ, names), strings.Join(names, ", "))
}

func ifCheckOperation(typ, op string) string {
	for _, t := range ifOperations {
		if t.typ != typ {
			continue
		}
		for _, o := range t.ops {
			if o == op {
				return ""
			}
		}
		return fmt.Sprintf("unknown %s operation %q%s; want one of %s", typ, op, engine.DidYouMean(op, t.ops), strings.Join(t.ops, ", "))
	}
	return ifCheckType(typ)
}

// ifReadOperand reads a leftValue, rightValue or condition. Strings are templates; numbers,
// booleans and null are constants of their JSON type; arrays and objects may hold expressions
// in their strings. ok is false when the key is absent.
func ifReadOperand(p *engine.Params, name string) (o ifOperand, ok bool) {
	if !p.Has(name) {
		return ifOperand{}, false
	}
	switch v := p.Value(name).(type) {
	case string:
		t := p.Template(name)
		if t == nil {
			return ifOperand{}, true // the compile error is recorded
		}
		if t.IsConst() {
			s, _ := t.EvalString(nil)
			return ifOperand{constant: s}, true
		}
		return ifOperand{tmpl: t}, true
	case []any, map[string]any:
		if ifHasExpr(v) {
			return ifOperand{vt: p.ValueTemplate(name)}, true
		}
		return ifOperand{constant: v}, true
	default:
		return ifOperand{constant: v}, true
	}
}

func ifHasExpr(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, "{{")
	case []any:
		for _, e := range x {
			if ifHasExpr(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if ifHasExpr(e) {
				return true
			}
		}
	}
	return false
}

// ifPresence reports whether op looks only at whether the value is there: exists, notExists,
// empty and notEmpty work on any value and never fail on its type.
func ifPresence(op string) bool {
	switch op {
	case "exists", "notExists", "empty", "notEmpty":
		return true
	}
	return false
}

// ifTakesRight reports whether op compares leftValue with a rightValue.
func ifTakesRight(op string) bool {
	return !ifPresence(op) && op != "true" && op != "false"
}

// ifRightType is the type rightValue is converted to: the operator's own, except for arrays,
// which compare lengths with numbers and look for elements of any type.
func ifRightType(typ, op string) string {
	if typ != "array" {
		return typ
	}
	if op == "contains" || op == "notContains" {
		return "any"
	}
	return "number"
}

// ifCompileRegex compiles a pattern, written bare or as JavaScript's /pattern/flags (flags i,
// m and s apply; g and u change nothing for a match test; y is refused). As in n8n, only
// trailing JavaScript flag letters make the slash form, so a path such as /api/v1/users is a
// bare pattern.
func ifCompileRegex(pattern string, ignoreCase bool) (*regexp.Regexp, error) {
	flags := ""
	if m := ifSlashRegex.FindStringSubmatch(pattern); m != nil {
		for _, f := range m[2] {
			switch f {
			case 'i', 'm', 's':
				if !strings.ContainsRune(flags, f) {
					flags += string(f)
				}
			case 'g', 'u':
			default:
				return nil, fmt.Errorf("regex %q: unsupported flag %q (want g, i, m, s or u)", m[0], f)
			}
		}
		pattern = m[1]
	}
	if ignoreCase && !strings.Contains(flags, "i") {
		flags += "i"
	}
	src := pattern
	if flags != "" {
		src = "(?" + flags + ")" + pattern
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("invalid regex %q: %v", pattern, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}

var ifSlashRegex = regexp.MustCompile(`^/(.*)/([gimsuy]*)$`)

// Run routes every item.
func (n *ifNode) Run(ctx context.Context, in *engine.Input, out *engine.Output) error {
	loc := in.Now().Location()
	for i, item := range in.Items {
		if err := ctx.Err(); err != nil {
			return err
		}
		env, err := in.Env(ctx, i)
		if err != nil {
			return err
		}
		ok, err := n.test(env, i, loc)
		switch {
		case err != nil:
			out.FailItem(i, item, err)
		case ok:
			out.Emit(0, item)
		default:
			out.Emit(1, item)
		}
	}
	return nil
}

// test evaluates the node's conditions for item i.
func (n *ifNode) test(env *engine.Env, i int, loc *time.Location) (bool, error) {
	if n.single != nil {
		v, err := n.single.eval(env)
		if err != nil {
			return false, fmt.Errorf("condition: %w [item %d]", err, i)
		}
		ok, err := n.truth(v)
		if err != nil {
			return false, fmt.Errorf("%w [item %d]", err, i)
		}
		return ok, nil
	}
	for _, c := range n.conditions {
		ok, err := n.eval(c, env, i, loc)
		if err != nil {
			return false, err
		}
		if ok == n.or {
			return ok, nil // and: the first false decides; or: the first true
		}
	}
	return !n.or, nil
}

// eval evaluates one condition for item i.
func (n *ifNode) eval(c *ifCondition, env *engine.Env, i int, loc *time.Location) (bool, error) {
	where := func(err error) error { return fmt.Errorf("%w [condition %d, item %d]", err, c.index, i) }
	left, err := c.left.eval(env)
	if err != nil {
		return false, where(fmt.Errorf("leftValue: %w", err))
	}
	switch c.op {
	case "exists":
		return left != nil, nil
	case "notExists":
		return left == nil, nil
	case "empty":
		return engine.IsEmpty(left), nil
	case "notEmpty":
		return !engine.IsEmpty(left), nil
	}
	var right any
	if ifTakesRight(c.op) {
		if right, err = c.right.eval(env); err != nil {
			return false, where(fmt.Errorf("rightValue: %w", err))
		}
	}
	l, lerr := n.convert(left, c.typ, loc)
	r, rerr := n.convert(right, ifRightType(c.typ, c.op), loc)
	switch {
	case lerr != nil && rerr != nil && ifKind(left) == ifKind(right):
		return false, where(fmt.Errorf("Comparison type expects %s but both fields are %s", ifArticle(c.typ), ifArticle(ifKind(left))))
	case lerr != nil:
		return false, where(lerr)
	case rerr != nil:
		return false, where(rerr)
	}
	if l == nil || (ifTakesRight(c.op) && r == nil) {
		return false, nil // null on either side: the condition is false
	}
	ok, err := n.compare(c, l, r)
	if err != nil {
		return false, where(err)
	}
	return ok, nil
}

// compare applies c's operation to converted, non-null operands.
func (n *ifNode) compare(c *ifCondition, l, r any) (bool, error) {
	switch c.typ {
	case "string":
		return n.compareStrings(c, l.(string), r)
	case "number":
		order, ok := ifCompareNumbers(l, r)
		if !ok {
			return c.op == "notEquals", nil // NaN equals nothing and is in no order
		}
		switch c.op {
		case "equals":
			return order == 0, nil
		case "notEquals":
			return order != 0, nil
		case "gt":
			return order > 0, nil
		case "lt":
			return order < 0, nil
		case "gte":
			return order >= 0, nil
		case "lte":
			return order <= 0, nil
		}
	case "dateTime":
		order := l.(time.Time).Compare(r.(time.Time))
		switch c.op {
		case "equals":
			return order == 0, nil
		case "notEquals":
			return order != 0, nil
		case "after":
			return order > 0, nil
		case "before":
			return order < 0, nil
		case "afterOrEquals":
			return order >= 0, nil
		case "beforeOrEquals":
			return order <= 0, nil
		}
	case "boolean":
		a := l.(bool)
		switch c.op {
		case "true":
			return a, nil
		case "false":
			return !a, nil
		case "equals":
			return a == r.(bool), nil
		case "notEquals":
			return a != r.(bool), nil
		}
	case "array":
		list := l.([]any)
		switch c.op {
		case "contains", "notContains":
			found := false
			want := engine.ToJSONValue(r)
			for _, e := range list {
				if n.equal(e, want) {
					found = true
					break
				}
			}
			return found == (c.op == "contains"), nil
		}
		want, _ := ifNumber(r)
		length := float64(len(list))
		switch c.op {
		case "lengthEquals":
			return length == want, nil
		case "lengthNotEquals":
			return length != want, nil
		case "lengthGt":
			return length > want, nil
		case "lengthLt":
			return length < want, nil
		case "lengthGte":
			return length >= want, nil
		case "lengthLte":
			return length <= want, nil
		}
	}
	return false, fmt.Errorf("operation %s:%s is not implemented", c.typ, c.op)
}

func (n *ifNode) compareStrings(c *ifCondition, a string, right any) (bool, error) {
	b := right.(string)
	if c.op == "regex" || c.op == "notRegex" {
		re := c.re
		if re == nil {
			var err error
			if re, err = ifCompileRegex(b, n.ignoreCase); err != nil {
				return false, fmt.Errorf("rightValue: %w", err)
			}
		}
		return re.MatchString(a) == (c.op == "regex"), nil
	}
	if n.ignoreCase {
		a, b = strings.ToLower(a), strings.ToLower(b)
	}
	switch c.op {
	case "equals":
		return a == b, nil
	case "notEquals":
		return a != b, nil
	case "contains":
		return strings.Contains(a, b), nil
	case "notContains":
		return !strings.Contains(a, b), nil
	case "startsWith":
		return strings.HasPrefix(a, b), nil
	case "notStartsWith":
		return !strings.HasPrefix(a, b), nil
	case "endsWith":
		return strings.HasSuffix(a, b), nil
	case "notEndsWith":
		return !strings.HasSuffix(a, b), nil
	}
	return false, fmt.Errorf("operation string:%s is not implemented", c.op)
}

// equal compares an array element with the value looked for: numbers by value, text
// case-insensitively when asked, lists and objects element by element. In loose mode two
// scalars of different types are equal when their text is (2 and "2").
func (n *ifNode) equal(a, b any) bool {
	if _, ok := ifNumber(a); ok {
		if _, ok := ifNumber(b); ok {
			order, ok := ifCompareNumbers(a, b)
			return ok && order == 0
		}
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		if y, ok := b.(string); ok {
			return n.sameText(x, y)
		}
	case bool:
		if y, ok := b.(bool); ok {
			return x == y
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !n.equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !n.equal(e, f) {
				return false
			}
		}
		return true
	default:
		if reflect.DeepEqual(a, b) {
			return true
		}
	}
	if n.loose && ifScalar(a) && ifScalar(b) {
		return n.sameText(engine.FormatValue(a), engine.FormatValue(b))
	}
	return false
}

func (n *ifNode) sameText(a, b string) bool {
	if n.ignoreCase {
		return strings.EqualFold(a, b)
	}
	return a == b
}

func ifScalar(v any) bool {
	switch v.(type) {
	case nil, []any, map[string]any:
		return false
	}
	return true
}

// convert turns v into typ's Go form: string, a number (as given, or int64 or float64 from
// text), bool, time.Time or []any ("any" keeps v; objects have only presence operations, which
// take any value). Null stays nil. Strict mode takes only values of the type
// (and text that reads as a dateTime); loose mode converts text, numbers and booleans. Text
// without an offset is a dateTime in loc (nil: UTC).
func (n *ifNode) convert(v any, typ string, loc *time.Location) (any, error) {
	if v == nil || typ == "any" {
		return v, nil
	}
	switch typ {
	case "string":
		if s, ok := v.(string); ok {
			return s, nil
		}
		if n.loose {
			return engine.FormatValue(v), nil
		}
	case "number":
		if _, ok := ifNumber(v); ok {
			return v, nil
		}
		if n.loose {
			switch x := v.(type) {
			case string:
				s := strings.TrimSpace(x)
				if i, err := strconv.ParseInt(s, 10, 64); err == nil {
					return i, nil
				}
				if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
					return f, nil
				}
			case bool:
				if x {
					return int64(1), nil
				}
				return int64(0), nil
			}
		}
	case "boolean":
		if b, ok := v.(bool); ok {
			return b, nil
		}
		if n.loose {
			if s, ok := v.(string); ok {
				switch strings.ToLower(strings.TrimSpace(s)) {
				case "true", "1":
					return true, nil
				case "false", "0":
					return false, nil
				}
			} else if f, ok := ifNumber(v); ok && (f == 0 || f == 1) {
				return f == 1, nil
			}
		}
	case "dateTime":
		if t, ok := v.(time.Time); ok {
			return t, nil
		}
		if _, ok := v.(string); ok || n.loose {
			if t, err := engine.ParseDateTime(v, loc); err == nil {
				return t, nil
			}
		}
	case "array":
		switch x := v.(type) {
		case []any:
			return x, nil // read only, so not copied
		case string:
			var a []any
			if n.loose && json.Unmarshal([]byte(x), &a) == nil && a != nil {
				return a, nil
			}
		default:
			if k := reflect.ValueOf(v).Kind(); k == reflect.Slice || k == reflect.Array {
				if a, ok := engine.ToJSONValue(v).([]any); ok {
					return a, nil
				}
			}
		}
	}
	return nil, &ifTypeError{value: v, want: typ, loose: n.loose}
}

// truth reads the condition parameter's value: a boolean, or null (false). Loose mode also
// takes "true" and "false" in any case, and numbers and numeric text (0 is false).
func (n *ifNode) truth(v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	}
	if n.loose {
		f, ok := ifNumber(v)
		if s, isText := v.(string); isText {
			t := strings.ToLower(strings.TrimSpace(s))
			switch t {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
			g, err := strconv.ParseFloat(t, 64)
			f, ok = g, err == nil
		}
		if ok {
			return f != 0 && !math.IsNaN(f), nil
		}
	}
	return false, &ifTypeError{value: v, want: "boolean", loose: n.loose}
}

// ifTypeError is an operand that does not fit its operator's type, worded as n8n words it.
type ifTypeError struct {
	value any
	want  string
	loose bool
}

func (e *ifTypeError) Error() string {
	from := ifKind(e.value)
	if e.loose {
		return fmt.Sprintf("Conversion error: the %s '%s' can't be converted to %s", from, ifShow(e.value), ifArticle(e.want))
	}
	return fmt.Sprintf("Wrong type: '%s' is %s but was expecting %s", ifShow(e.value), ifArticle(from), ifArticle(e.want))
}

// ifNumber returns v as a float64 when it is a number of any Go numeric type. A json.Number
// beyond float64's range (which is all PlainNumbers leaves as json.Number) reads as ±Inf.
func ifNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil || errors.Is(err, strconv.ErrRange)
	case bool, string, nil:
		return 0, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

// ifInt returns v as an int64 when it is a number of an integer type that fits.
func ifInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u <= math.MaxInt64 {
			return int64(u), true
		}
	}
	return 0, false
}

// ifCompareNumbers orders two numbers: exactly when both are integers, so ids beyond 2^53 stay
// distinct, else as float64. ok is false when either is NaN.
func ifCompareNumbers(a, b any) (int, bool) {
	if x, ok := ifInt(a); ok {
		if y, ok := ifInt(b); ok {
			return cmp.Compare(x, y), true
		}
	}
	x, _ := ifNumber(a)
	y, _ := ifNumber(b)
	if math.IsNaN(x) || math.IsNaN(y) {
		return 0, false
	}
	return cmp.Compare(x, y), true
}

// ifKind names v's type for messages.
func ifKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case time.Time:
		return "dateTime"
	case time.Duration:
		return "duration"
	}
	if _, ok := ifNumber(v); ok {
		return "number"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// ifShow renders a value for a message, cut to 80 characters.
func ifShow(v any) string {
	s := engine.FormatValue(v)
	if utf8.RuneCountInString(s) <= 80 {
		return s
	}
	return string([]rune(s)[:79]) + "…"
}

func ifArticle(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}
