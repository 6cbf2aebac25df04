package engine

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ParamKind is the JSON shape a parameter takes.
type ParamKind string

const (
	KindString   ParamKind = "string"   // literal text
	KindTemplate ParamKind = "template" // text that may hold {{ expressions }}
	KindNumber   ParamKind = "number"
	KindBool     ParamKind = "boolean"
	KindDuration ParamKind = "duration" // "30s", "1m30s", or a number of milliseconds
	KindObject   ParamKind = "object"
	KindList     ParamKind = "list"
	KindAny      ParamKind = "any" // any JSON; string leaves may hold expressions
)

// ParamSpec describes one top-level parameter of a node type.
type ParamSpec struct {
	Name     string
	Kind     ParamKind
	Required bool
	Default  any      // used when the parameter is absent; nil means none
	Enum     []string // allowed values of a string parameter, when not empty
	Doc      string   // one line
}

// Params gives a constructor typed, checked access to a node's parameters (or to one nested
// object of them). Every accessor records a problem at the parameter's position instead of
// returning an error, so a constructor reads everything and the loader reports every problem.
// Keys of nested objects that no accessor read are reported as unknown.
type Params struct {
	v      *jvalue
	path   string // "parameters.options"
	spec   map[string]ParamSpec
	used   map[string]bool
	parent *paramsRoot
}

type paramsRoot struct {
	errs     []paramError
	children []*Params
	exprs    []*Expr
	// secrets, when not nil, must hold every secret an expression names (Loader.Secrets).
	secrets Secrets
}

type paramError struct {
	off  int
	path string
	msg  string
}

func newParams(v *jvalue, path string, spec []ParamSpec) *Params {
	p := &Params{v: v, path: path, used: map[string]bool{}, parent: &paramsRoot{}}
	if len(spec) > 0 {
		p.spec = map[string]ParamSpec{}
		for _, s := range spec {
			p.spec[s.Name] = s
		}
	}
	return p
}

// NewParamsJSON parses src as a parameters object; for tests and for building nodes outside
// a flow file. Problems are returned joined.
func NewParamsJSON(src string, spec []ParamSpec) (*Params, error) {
	v, err := parseJSON([]byte(src))
	if err != nil {
		return nil, err
	}
	if v.kind != jobject {
		return nil, fmt.Errorf("parameters must be an object, got %s", v.kind)
	}
	return newParams(v, "parameters", spec), nil
}

// Err returns every problem recorded so far, joined, or nil.
func (p *Params) Err() error {
	var errs []error
	for _, e := range p.parent.errs {
		errs = append(errs, errors.New(e.msg))
	}
	return errors.Join(errs...)
}

// Exprs returns every expression compiled through these params and their nested objects.
func (p *Params) Exprs() []*Expr { return p.parent.exprs }

func (p *Params) keyPath(name string) string {
	return p.path + "." + name
}

// Errorf records a problem at parameter name (or at the object itself when name is "").
func (p *Params) Errorf(name, format string, args ...any) {
	off, path := p.v.off, p.path
	if name != "" {
		path = p.keyPath(name)
		if v := p.v.get(name); v != nil {
			off = v.off
		}
	}
	p.parent.record(off, path, fmt.Sprintf(format, args...))
}

func (p *Params) errAt(v *jvalue, path, format string, args ...any) {
	p.parent.record(v.off, path, fmt.Sprintf(format, args...))
}

// record adds a problem unless one was already recorded for the same place and path (the
// spec check and an accessor may both notice a wrong kind).
func (r *paramsRoot) record(off int, path, msg string) {
	for _, e := range r.errs {
		if e.off == off && e.path == path {
			return
		}
	}
	r.errs = append(r.errs, paramError{off: off, path: path, msg: path + ": " + msg})
}

// lookup marks name used and returns its value, or the spec default converted, or nil.
func (p *Params) lookup(name string) *jvalue {
	p.used[name] = true
	if v := p.v.get(name); v != nil {
		return v
	}
	return nil
}

func (p *Params) def(name string) any {
	if s, ok := p.spec[name]; ok {
		return s.Default
	}
	return nil
}

// Has reports whether the parameter is present (a default does not count).
func (p *Params) Has(name string) bool { return p.v.get(name) != nil }

// Keys returns the object's keys in file order.
func (p *Params) Keys() []string {
	out := make([]string, len(p.v.obj))
	for i, m := range p.v.obj {
		out[i] = m.key
	}
	return out
}

// String returns a literal string parameter, the default, or "".
func (p *Params) String(name string) string {
	v := p.lookup(name)
	if v == nil {
		s, _ := p.def(name).(string)
		return s
	}
	if v.kind != jstring {
		p.errAt(v, p.keyPath(name), "want a string, got %s", v.kind)
		return ""
	}
	if s, ok := p.spec[name]; ok && len(s.Enum) > 0 && !contains(s.Enum, v.str) {
		p.errAt(v, p.keyPath(name), "%q is not one of %s%s", v.str, strings.Join(s.Enum, ", "), DidYouMean(v.str, s.Enum))
	}
	return v.str
}

// OneOf returns a string parameter that must be one of allowed (or the default).
func (p *Params) OneOf(name string, allowed ...string) string {
	s := p.String(name)
	if v := p.v.get(name); v != nil && v.kind == jstring && !contains(allowed, s) {
		p.errAt(v, p.keyPath(name), "%q is not one of %s%s", s, strings.Join(allowed, ", "), DidYouMean(s, allowed))
	}
	return s
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// Template compiles a string parameter that may hold expressions. Absent with no default: nil.
// Numbers and booleans are accepted as constant text.
func (p *Params) Template(name string) *Template {
	v := p.lookup(name)
	if v == nil {
		if s, ok := p.def(name).(string); ok {
			return MustTemplate(s)
		}
		return nil
	}
	return p.templateOf(v, p.keyPath(name))
}

func (p *Params) templateOf(v *jvalue, path string) *Template {
	var s string
	switch v.kind {
	case jstring:
		s = v.str
	case jnumber:
		s = string(v.num)
	case jbool:
		s = strconv.FormatBool(v.b)
	default:
		p.errAt(v, path, "want a string, got %s", v.kind)
		return nil
	}
	t, err := CompileTemplate(s)
	if err != nil {
		off := v.off
		var ee *ExprError
		if errors.As(err, &ee) && v.kind == jstring {
			off = encodeStringOff(v.off, ee.Offset)
		}
		p.parent.record(off, path, err.Error())
		return nil
	}
	p.parent.exprs = append(p.parent.exprs, t.Exprs()...)
	if v.kind == jstring {
		for _, part := range t.parts {
			if part.expr != nil {
				p.parent.checkSecrets(part.expr, v.off, part.at, path)
			}
		}
	}
	return t
}

// checkSecrets records a problem for each secret e names that r.secrets lacks; e's source
// starts at byte at of the string whose literal starts at literalOff.
func (r *paramsRoot) checkSecrets(e *Expr, literalOff, at int, path string) {
	if r.secrets == nil {
		return
	}
	for _, ref := range e.secrets {
		if _, ok := r.secrets.Secret(ref.name); ok {
			continue
		}
		hint := ""
		if l, ok := r.secrets.(interface{ Names() []string }); ok {
			hint = DidYouMean(ref.name, l.Names())
		}
		r.record(encodeStringOff(literalOff, at+ref.off), path, fmt.Sprintf(
			"$secrets.%s: no such secret%s; set %s%s or add %s=… to the secrets file",
			ref.name, hint, SecretEnvPrefix, ref.name, ref.name))
	}
}

// Offsets into a string's content are encoded as negative numbers until the loader, which has
// the source, turns them into byte offsets (escapes make the two differ).
func encodeStringOff(literalOff, idx int) int { return -(literalOff<<20 | idx) - 1 }

func decodeStringOff(off int) (literalOff, idx int) {
	off = -(off + 1)
	return off >> 20, off & (1<<20 - 1)
}

// Bool returns a boolean parameter or its default (false).
func (p *Params) Bool(name string) bool {
	v := p.lookup(name)
	if v == nil {
		b, _ := p.def(name).(bool)
		return b
	}
	if v.kind != jbool {
		p.errAt(v, p.keyPath(name), "want true or false, got %s", v.kind)
		return false
	}
	return v.b
}

// Float returns a number parameter or its default (0).
func (p *Params) Float(name string) float64 {
	v := p.lookup(name)
	if v == nil {
		f, _ := toFloat(p.def(name))
		return f
	}
	if v.kind != jnumber {
		p.errAt(v, p.keyPath(name), "want a number, got %s", v.kind)
		return 0
	}
	f, _ := v.num.Float64()
	return f
}

// Int returns a whole-number parameter or its default (0).
func (p *Params) Int(name string) int {
	f := p.Float(name)
	if f != math.Trunc(f) {
		p.Errorf(name, "want a whole number, got %v", f)
	}
	return int(f)
}

// Duration returns a duration parameter: text such as "30s" or "1m30s", or a number of
// milliseconds. Negative durations are problems. Absent: the default (a string or number), or 0.
func (p *Params) Duration(name string) time.Duration {
	v := p.lookup(name)
	if v == nil {
		d, _ := parseDurationValue(p.def(name))
		return d
	}
	d, err := parseDurationValue(v.plain())
	if err != nil {
		p.errAt(v, p.keyPath(name), "%v", err)
	}
	return d
}

// parseDurationValue reads "30s", "1m", "500ms", "2h", or a number of milliseconds.
func parseDurationValue(x any) (time.Duration, error) {
	switch d := x.(type) {
	case nil:
		return 0, nil
	case string:
		v, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return 0, fmt.Errorf("want a duration such as \"30s\" or \"1m30s\", got %q", d)
		}
		if v < 0 {
			return 0, fmt.Errorf("duration must not be negative, got %q", d)
		}
		return v, nil
	case time.Duration:
		return d, nil
	}
	if f, ok := toFloat(x); ok {
		if f < 0 {
			return 0, fmt.Errorf("duration must not be negative, got %v", f)
		}
		if f*float64(time.Millisecond) >= float64(math.MaxInt64) { // which rounds up to 2^63
			return 0, fmt.Errorf("duration of %v ms is too long", f)
		}
		return time.Duration(f * float64(time.Millisecond)), nil
	}
	return 0, fmt.Errorf("want a duration such as \"30s\" or a number of milliseconds")
}

// Object returns a nested object parameter, or nil when absent. Its keys that nothing reads
// are reported as unknown.
func (p *Params) Object(name string) *Params {
	v := p.lookup(name)
	if v == nil {
		return nil
	}
	if v.kind != jobject {
		p.errAt(v, p.keyPath(name), "want an object, got %s", v.kind)
		return nil
	}
	return p.child(v, p.keyPath(name))
}

func (p *Params) child(v *jvalue, path string) *Params {
	c := &Params{v: v, path: path, used: map[string]bool{}, parent: p.parent}
	p.parent.children = append(p.parent.children, c)
	return c
}

// List returns a nested list of objects, or nil when absent.
func (p *Params) List(name string) []*Params {
	v := p.lookup(name)
	if v == nil {
		return nil
	}
	if v.kind != jarray {
		p.errAt(v, p.keyPath(name), "want a list, got %s", v.kind)
		return nil
	}
	out := make([]*Params, 0, len(v.arr))
	for i, e := range v.arr {
		path := fmt.Sprintf("%s[%d]", p.keyPath(name), i)
		if e.kind != jobject {
			p.errAt(e, path, "want an object, got %s", e.kind)
			continue
		}
		out = append(out, p.child(e, path))
	}
	return out
}

// Strings returns a list of strings; a single string is taken as a list of one.
func (p *Params) Strings(name string) []string {
	v := p.lookup(name)
	if v == nil {
		switch d := p.def(name).(type) {
		case []string:
			return d
		case string:
			return []string{d}
		}
		return nil
	}
	if v.kind == jstring {
		return []string{v.str}
	}
	if v.kind != jarray {
		p.errAt(v, p.keyPath(name), "want a list of strings, got %s", v.kind)
		return nil
	}
	out := make([]string, 0, len(v.arr))
	for i, e := range v.arr {
		if e.kind != jstring {
			p.errAt(e, fmt.Sprintf("%s[%d]", p.keyPath(name), i), "want a string, got %s", e.kind)
			continue
		}
		out = append(out, e.str)
	}
	return out
}

// Value returns the parameter as plain JSON values (map[string]any, []any, …), or the default.
func (p *Params) Value(name string) any {
	v := p.lookup(name)
	if v == nil {
		return p.def(name)
	}
	return v.plain()
}

// ValueTemplate compiles any JSON value whose string leaves may hold expressions. Absent: nil.
func (p *Params) ValueTemplate(name string) *ValueTemplate {
	v := p.lookup(name)
	if v == nil {
		if d := p.def(name); d != nil {
			return &ValueTemplate{constant: d}
		}
		return nil
	}
	return p.valueTemplateOf(v, p.keyPath(name))
}

// TemplateMap compiles an object whose values are templates, keeping key order (headers, query
// parameters, form fields). A list of {"name": …, "value": …} objects is accepted too, as n8n
// writes them.
func (p *Params) TemplateMap(name string) []NamedTemplate {
	v := p.lookup(name)
	if v == nil {
		return nil
	}
	path := p.keyPath(name)
	var out []NamedTemplate
	switch v.kind {
	case jobject:
		for _, m := range v.obj {
			if t := p.templateOf(m.val, path+"."+m.key); t != nil {
				out = append(out, NamedTemplate{Name: m.key, Value: t})
			}
		}
	case jarray:
		for i, e := range v.arr {
			c := p.child(e, fmt.Sprintf("%s[%d]", path, i))
			if e.kind != jobject {
				p.errAt(e, c.path, "want an object with name and value, got %s", e.kind)
				continue
			}
			n := c.String("name")
			if n == "" {
				c.Errorf("name", "required")
			}
			if !c.Has("value") {
				c.Errorf("", "value: required")
			}
			if t := c.Template("value"); t != nil {
				out = append(out, NamedTemplate{Name: n, Value: t})
			}
		}
	default:
		p.errAt(v, path, "want an object of name: value, got %s", v.kind)
	}
	return out
}

// NamedTemplate is one entry of a TemplateMap.
type NamedTemplate struct {
	Name  string
	Value *Template
}

func (p *Params) valueTemplateOf(v *jvalue, path string) *ValueTemplate {
	switch v.kind {
	case jstring:
		t := p.templateOf(v, path)
		if t == nil {
			return &ValueTemplate{constant: v.str}
		}
		if t.IsConst() {
			return &ValueTemplate{constant: v.str}
		}
		return &ValueTemplate{tmpl: t}
	case jarray:
		vt := &ValueTemplate{list: make([]*ValueTemplate, len(v.arr)), isList: true}
		for i, e := range v.arr {
			vt.list[i] = p.valueTemplateOf(e, fmt.Sprintf("%s[%d]", path, i))
		}
		return vt.fold()
	case jobject:
		vt := &ValueTemplate{isObject: true}
		for _, m := range v.obj {
			vt.keys = append(vt.keys, m.key)
			vt.list = append(vt.list, p.valueTemplateOf(m.val, path+"."+m.key))
		}
		return vt.fold()
	}
	return &ValueTemplate{constant: v.plain()}
}

// ValueTemplate is a JSON value with expressions in its string leaves.
type ValueTemplate struct {
	constant any
	tmpl     *Template
	isList   bool
	isObject bool
	keys     []string
	list     []*ValueTemplate
}

// fold turns a list or object with no expressions into a constant.
func (vt *ValueTemplate) fold() *ValueTemplate {
	for _, e := range vt.list {
		if !e.isConst() {
			return vt
		}
	}
	c, _ := vt.Eval(nil)
	return &ValueTemplate{constant: c}
}

func (vt *ValueTemplate) isConst() bool { return vt.tmpl == nil && !vt.isList && !vt.isObject }

// Eval builds the value. Constants are copied, so callers may change the result.
func (vt *ValueTemplate) Eval(env *Env) (any, error) {
	switch {
	case vt.tmpl != nil:
		v, err := vt.tmpl.Eval(env)
		if err != nil {
			return nil, err
		}
		return ToJSONValue(v), nil
	case vt.isList:
		out := make([]any, len(vt.list))
		for i, e := range vt.list {
			v, err := e.Eval(env)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case vt.isObject:
		out := make(map[string]any, len(vt.list))
		for i, e := range vt.list {
			v, err := e.Eval(env)
			if err != nil {
				return nil, err
			}
			out[vt.keys[i]] = v
		}
		return out, nil
	}
	return DeepCopy(vt.constant), nil
}

// DeepCopy copies the maps and lists of a JSON value, so the copy can be changed freely.
func DeepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = DeepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = DeepCopy(e)
		}
		return out
	}
	return v
}

// checkSpec validates the top-level keys against the node type's spec: unknown keys, missing
// required ones and kinds.
func (p *Params) checkSpec(specs []ParamSpec) {
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		names = append(names, s.Name)
	}
	for _, m := range p.v.obj {
		s, ok := p.spec[m.key]
		if !ok {
			p.parent.record(m.keyOff, p.keyPath(m.key), "unknown parameter"+DidYouMean(m.key, names))
			continue
		}
		if msg := kindMismatch(s.Kind, m.val); msg != "" {
			p.errAt(m.val, p.keyPath(m.key), "%s", msg)
		}
	}
	for _, s := range specs {
		if s.Required && p.v.get(s.Name) == nil {
			p.parent.record(p.v.off, p.keyPath(s.Name), "required")
		}
	}
}

func kindMismatch(k ParamKind, v *jvalue) string {
	ok := true
	switch k {
	case KindString:
		ok = v.kind == jstring
	case KindTemplate:
		ok = v.kind == jstring || v.kind == jnumber || v.kind == jbool
	case KindNumber:
		ok = v.kind == jnumber
	case KindBool:
		ok = v.kind == jbool
	case KindDuration:
		ok = v.kind == jstring || v.kind == jnumber
	case KindObject:
		ok = v.kind == jobject
	case KindList:
		ok = v.kind == jarray
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("want %s, got %s", k, v.kind)
}

// unusedKeys reports keys of nested objects that no accessor read.
func (p *Params) checkUnused() {
	for _, c := range p.parent.children {
		var known []string
		for k := range c.used {
			known = append(known, k)
		}
		sort.Strings(known)
		for _, m := range c.v.obj {
			if !c.used[m.key] {
				p.parent.record(m.keyOff, c.keyPath(m.key), "unknown key"+DidYouMean(m.key, known))
			}
		}
	}
}

// Text is one string of a parameter, with its place in the file, for node types that parse
// their own syntax around expressions (the code node's assignments).
type Text struct {
	Value string
	Path  string // "parameters.code[2]"
	p     *Params
	v     *jvalue
}

// Texts returns a string parameter, or each string of a list parameter. Absent: nil.
func (p *Params) Texts(name string) []Text {
	v := p.lookup(name)
	if v == nil {
		return nil
	}
	path := p.keyPath(name)
	if v.kind == jstring {
		return []Text{{Value: v.str, Path: path, p: p, v: v}}
	}
	if v.kind != jarray {
		p.errAt(v, path, "want a string or a list of strings, got %s", v.kind)
		return nil
	}
	out := make([]Text, 0, len(v.arr))
	for i, e := range v.arr {
		ep := fmt.Sprintf("%s[%d]", path, i)
		if e.kind != jstring {
			p.errAt(e, ep, "want a string, got %s", e.kind)
			continue
		}
		out = append(out, Text{Value: e.str, Path: ep, p: p, v: e})
	}
	return out
}

// Expr compiles src, which starts at byte at of t.Value, as one expression (no braces). A
// compile error is recorded at its place in the file and nil returned.
func (t Text) Expr(at int, src string) *Expr {
	trimmed := strings.TrimSpace(src)
	at += strings.Index(src, trimmed)
	src = trimmed
	e, err := CompileExpr(src)
	if err != nil {
		ee := err.(*ExprError)
		t.p.parent.record(encodeStringOff(t.v.off, at+ee.Offset), t.Path, ee.Error())
		return nil
	}
	t.p.parent.exprs = append(t.p.parent.exprs, e)
	t.p.parent.checkSecrets(e, t.v.off, at, t.Path)
	return e
}

// Errorf records a problem at byte at of t.Value.
func (t Text) Errorf(at int, format string, args ...any) {
	t.p.parent.record(encodeStringOff(t.v.off, at), t.Path, fmt.Sprintf(format, args...))
}
