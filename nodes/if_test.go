package nodes_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
)

// ifAbsent marks an item field the test leaves out.
var ifAbsent = &struct{ absent bool }{true}

// ifLoad builds an if node from its parameters through the registry, as a flow load does.
func ifLoad(t *testing.T, params string) *engine.FlowNode {
	t.Helper()
	n, err := (&engine.Loader{Registry: nodes.NewRegistry()}).LoadNode("if", params)
	if err != nil {
		t.Fatalf("load %s:\n%v", params, err)
	}
	return n
}

// ifRoute runs n on items and returns, per item, "true", "false" or "error: " and the item's
// error. It fails the test when an item is changed, dropped, duplicated or reordered.
func ifRoute(t *testing.T, n *engine.FlowNode, items ...engine.Item) []string {
	t.Helper()
	res, err := engine.ExecNode(t.Context(), n, items, nil)
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	if len(res.Ports) != 2 {
		t.Fatalf("got %d ports, want 2", len(res.Ports))
	}
	index := map[uintptr]int{}
	for i, it := range items {
		index[reflect.ValueOf(it).Pointer()] = i
	}
	got := make([]string, len(items))
	record := func(it engine.Item, where string) int {
		i, ok := index[reflect.ValueOf(it).Pointer()]
		if !ok {
			t.Fatalf("%s: %v is not one of the input items", where, it)
		}
		if got[i] != "" {
			t.Fatalf("item %d routed twice: %s and %s", i, got[i], where)
		}
		got[i] = where
		return i
	}
	for p, name := range []string{"true", "false"} {
		last := -1
		for _, it := range res.Ports[p] {
			i := record(it, name)
			if i < last {
				t.Fatalf("port %s: item %d after item %d", name, i, last)
			}
			last = i
		}
	}
	for _, f := range res.Failed {
		if i := record(f.Item, "error: "+f.Err.Error()); i != f.Index {
			t.Fatalf("failure names index %d for item %d", f.Index, i)
		}
	}
	for i, g := range got {
		if g == "" {
			t.Fatalf("item %d was dropped", i)
		}
	}
	return got
}

// ifItem builds {"l": l, "r": r}, leaving out fields that are ifAbsent.
func ifItem(l, r any) engine.Item {
	it := engine.Item{"id": "x"}
	if l != ifAbsent {
		it["l"] = l
	}
	if r != ifAbsent {
		it["r"] = r
	}
	return it
}

// ifUnary lists the operations that take no rightValue.
var ifUnary = map[string]bool{"exists": true, "notExists": true, "empty": true, "notEmpty": true, "true": true, "false": true}

// ifOneCondition is a conditions block with one condition comparing $json.l with $json.r.
func ifOneCondition(op, options string) string {
	_, operation, _ := strings.Cut(op, ":")
	right := `, "rightValue": "={{ $json.r }}"`
	if ifUnary[operation] {
		right = ""
	}
	if options == "" {
		options = "{}"
	}
	return fmt.Sprintf(`{"conditions": {"options": %s, "conditions": [{"leftValue": "={{ $json.l }}", "operator": %q%s}]}}`, options, op, right)
}

// ifWantOps is the operator list the node must support.
var ifWantOps = map[string][]string{
	"string":   {"exists", "notExists", "empty", "notEmpty", "equals", "notEquals", "contains", "notContains", "startsWith", "notStartsWith", "endsWith", "notEndsWith", "regex", "notRegex"},
	"number":   {"exists", "notExists", "empty", "notEmpty", "equals", "notEquals", "gt", "lt", "gte", "lte"},
	"dateTime": {"exists", "notExists", "empty", "notEmpty", "equals", "notEquals", "after", "before", "afterOrEquals", "beforeOrEquals"},
	"boolean":  {"exists", "notExists", "empty", "notEmpty", "true", "false", "equals", "notEquals"},
	"array":    {"exists", "notExists", "empty", "notEmpty", "contains", "notContains", "lengthEquals", "lengthNotEquals", "lengthGt", "lengthLt", "lengthGte", "lengthLte"},
	"object":   {"exists", "notExists", "empty", "notEmpty"},
}

func TestIfOperators(t *testing.T) {
	x := ifAbsent
	cases := []struct {
		op   string
		l, r any
		want bool
	}{
		{"string:exists", "a", x, true},
		{"string:exists", x, x, false},
		{"string:notExists", x, x, true},
		{"string:notExists", "", x, false},
		{"string:empty", "", x, true},
		{"string:empty", "a", x, false},
		{"string:notEmpty", "a", x, true},
		{"string:notEmpty", "", x, false},
		{"string:equals", "abc", "abc", true},
		{"string:equals", "abc", "abd", false},
		{"string:notEquals", "abc", "abd", true},
		{"string:notEquals", "abc", "abc", false},
		{"string:contains", "hello world", "lo w", true},
		{"string:contains", "hello", "xyz", false},
		{"string:notContains", "hello", "xyz", true},
		{"string:notContains", "hello", "ell", false},
		{"string:startsWith", "hello", "he", true},
		{"string:startsWith", "hello", "lo", false},
		{"string:notStartsWith", "hello", "lo", true},
		{"string:notStartsWith", "hello", "he", false},
		{"string:endsWith", "hello", "lo", true},
		{"string:endsWith", "hello", "he", false},
		{"string:notEndsWith", "hello", "he", true},
		{"string:notEndsWith", "hello", "lo", false},
		{"string:regex", "order-123", `^order-\d+$`, true},
		{"string:regex", "order-abc", `^order-\d+$`, false},
		{"string:notRegex", "order-abc", `^order-\d+$`, true},
		{"string:notRegex", "order-123", `^order-\d+$`, false},

		{"number:exists", 0, x, true},
		{"number:exists", x, x, false},
		{"number:notExists", x, x, true},
		{"number:notExists", 0, x, false},
		{"number:empty", x, x, true},
		{"number:empty", 0, x, false},
		{"number:notEmpty", 0, x, true},
		{"number:notEmpty", nil, x, false},
		{"number:equals", 5, 5.0, true},
		{"number:equals", int64(5), 6, false},
		{"number:notEquals", 5, 6, true},
		{"number:notEquals", 2.5, 2.5, false},
		{"number:gt", 5, 3, true},
		{"number:gt", 5, 5, false},
		{"number:lt", -1, 0, true},
		{"number:lt", 0, 0, false},
		{"number:gte", 5, 5, true},
		{"number:gte", 4.99, 5, false},
		{"number:lte", 5, 5, true},
		{"number:lte", 6, 5, false},
		{"number:equals", int64(9007199254740993), int64(9007199254740992), false},
		{"number:lt", int64(9007199254740992), int64(9007199254740993), true},
		{"number:gt", json.Number("1e400"), 5, true},
		{"number:lt", json.Number("-1e400"), -5, true},
		{"number:notEquals", math.NaN(), math.NaN(), true},
		{"number:gte", math.NaN(), 1, false},

		{"dateTime:exists", "2024-05-01", x, true},
		{"dateTime:exists", x, x, false},
		{"dateTime:notExists", x, x, true},
		{"dateTime:notExists", "2024-05-01", x, false},
		{"dateTime:empty", "", x, true},
		{"dateTime:empty", "2024-05-01", x, false},
		{"dateTime:notEmpty", "2024-05-01", x, true},
		{"dateTime:notEmpty", "", x, false},
		{"dateTime:equals", "2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00Z", true},
		{"dateTime:equals", "2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00Z", false},
		{"dateTime:notEquals", "2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00Z", true},
		{"dateTime:notEquals", "2024-05-01T12:00:00.000+02:00", "2024-05-01T10:00:00Z", false},
		{"dateTime:after", "2024-05-01T10:00:01Z", "2024-05-01T12:00:00+02:00", true},
		{"dateTime:after", "2024-05-01T10:00:00Z", "2024-05-01T12:00:00+02:00", false},
		{"dateTime:before", "2024-05-01T09:59:59Z", "2024-05-01T12:00:00+02:00", true},
		{"dateTime:before", "2024-05-01T10:00:00Z", "2024-05-01T12:00:00+02:00", false},
		{"dateTime:afterOrEquals", "2024-05-01T10:00:00Z", "2024-05-01T12:00:00+02:00", true},
		{"dateTime:afterOrEquals", "2024-05-01T09:59:59Z", "2024-05-01T12:00:00+02:00", false},
		{"dateTime:beforeOrEquals", "2024-05-01T10:00:00Z", "2024-05-01T12:00:00+02:00", true},
		{"dateTime:beforeOrEquals", "2024-05-01T10:00:01Z", "2024-05-01T12:00:00+02:00", false},

		{"boolean:exists", false, x, true},
		{"boolean:exists", x, x, false},
		{"boolean:notExists", x, x, true},
		{"boolean:notExists", false, x, false},
		{"boolean:empty", x, x, true},
		{"boolean:empty", false, x, false},
		{"boolean:notEmpty", false, x, true},
		{"boolean:notEmpty", nil, x, false},
		{"boolean:true", true, x, true},
		{"boolean:true", false, x, false},
		{"boolean:false", false, x, true},
		{"boolean:false", true, x, false},
		{"boolean:equals", false, false, true},
		{"boolean:equals", true, false, false},
		{"boolean:notEquals", true, false, true},
		{"boolean:notEquals", true, true, false},

		{"array:exists", []any{}, x, true},
		{"array:exists", x, x, false},
		{"array:notExists", x, x, true},
		{"array:notExists", []any{}, x, false},
		{"array:empty", []any{}, x, true},
		{"array:empty", []any{1}, x, false},
		{"array:notEmpty", []any{1}, x, true},
		{"array:notEmpty", []any{}, x, false},
		{"array:contains", []any{1, "b"}, "b", true},
		{"array:contains", []any{1, 2}, 3, false},
		{"array:contains", []any{int64(1), 2}, 2.0, true},
		{"array:contains", []any{map[string]any{"a": 1}}, map[string]any{"a": 1.0}, true},
		{"array:contains", []any{[]any{1, 2}}, []any{2, 1}, false},
		{"array:notContains", []any{1, 2}, 3, true},
		{"array:notContains", []any{"a", "b"}, "a", false},
		{"array:lengthEquals", []any{1, 2}, 2, true},
		{"array:lengthEquals", []any{1, 2}, 3, false},
		{"array:lengthNotEquals", []any{1, 2}, 3, true},
		{"array:lengthNotEquals", []any{1, 2}, 2, false},
		{"array:lengthGt", []any{1, 2}, 1, true},
		{"array:lengthGt", []any{1, 2}, 2, false},
		{"array:lengthLt", []any{1, 2}, 3, true},
		{"array:lengthLt", []any{1, 2}, 2, false},
		{"array:lengthGte", []any{1, 2}, 2, true},
		{"array:lengthGte", []any{1, 2}, 3, false},
		{"array:lengthLte", []any{1, 2}, 2, true},
		{"array:lengthLte", []any{1, 2}, 1, false},
		{"array:lengthEquals", []string{"a", "b"}, 2, true},
		{"array:contains", []any{int64(9007199254740993)}, int64(9007199254740992), false},
		{"array:lengthLt", []any{1}, json.Number("1e400"), true},

		{"object:exists", map[string]any{}, x, true},
		{"object:exists", x, x, false},
		{"object:notExists", x, x, true},
		{"object:notExists", map[string]any{}, x, false},
		{"object:empty", map[string]any{}, x, true},
		{"object:empty", map[string]any{"a": 1}, x, false},
		{"object:notEmpty", map[string]any{"a": 1}, x, true},
		{"object:notEmpty", map[string]any{}, x, false},
	}
	seen := map[string]map[bool]bool{}
	for _, c := range cases {
		name := fmt.Sprintf("%s/%v/%s", c.op, c.want, ifShowArgs(c.l, c.r))
		t.Run(name, func(t *testing.T) {
			n := ifLoad(t, ifOneCondition(c.op, ""))
			got := ifRoute(t, n, ifItem(c.l, c.r))
			if got[0] != fmt.Sprint(c.want) {
				t.Errorf("l=%#v r=%#v: got %s, want %v", c.l, c.r, got[0], c.want)
			}
		})
		if seen[c.op] == nil {
			seen[c.op] = map[bool]bool{}
		}
		seen[c.op][c.want] = true
	}
	for typ, ops := range ifWantOps {
		for _, op := range ops {
			if k := typ + ":" + op; !seen[k][true] || !seen[k][false] {
				t.Errorf("%s: want a true and a false case, have %v", k, seen[k])
			}
		}
	}
}

func ifShowArgs(l, r any) string {
	show := func(v any) string {
		if v == ifAbsent {
			return "absent"
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v) // NaN
		}
		return string(b)
	}
	return show(l) + "," + show(r)
}

// TestIfOperatorForms checks the long operator form and the keys of an n8n export.
func TestIfOperatorForms(t *testing.T) {
	cases := []struct {
		name, params string
		item         engine.Item
		want         string
	}{
		{"object form", `{"conditions": {"conditions": [{"leftValue": "={{ $json.n }}", "operator": {"type": "number", "operation": "gt"}, "rightValue": 3}]}}`, engine.Item{"n": 4}, "true"},
		{"n8n export keys", `{"conditions": {"options": {"version": 2, "leftValue": "", "caseSensitive": true, "typeValidation": "strict"}, "combinator": "and",
			"conditions": [
				{"id": "a1", "leftValue": "={{ $json.s }}", "rightValue": "", "operator": {"type": "string", "operation": "exists", "singleValue": true}},
				{"id": "a2", "leftValue": "={{ $json.s }}", "rightValue": "x", "operator": {"type": "string", "operation": "equals", "name": "filter.operator.equals"}},
				{"id": "a3", "leftValue": "={{ $json.list }}", "rightValue": 2, "operator": {"type": "array", "operation": "lengthEquals", "rightType": "number"}}
			]}, "options": {}, "looseTypeValidation": false}`, engine.Item{"s": "x", "list": []any{1, 2}}, "true"},
		{"typed constant right value", `{"conditions": {"conditions": [{"leftValue": "={{ $json.ok }}", "operator": "boolean:equals", "rightValue": true}]}}`, engine.Item{"ok": true}, "true"},
		{"constant list right value", `{"conditions": {"conditions": [{"leftValue": "={{ $json.list }}", "operator": "array:contains", "rightValue": [1, "a"]}]}}`, engine.Item{"list": []any{[]any{1, "a"}}}, "true"},
		{"list right value with expressions", `{"conditions": {"conditions": [{"leftValue": "={{ $json.list }}", "operator": "array:contains", "rightValue": ["={{ $json.n }}", "a"]}]}}`, engine.Item{"n": 7, "list": []any{[]any{7, "a"}}}, "true"},
		{"text template right value", `{"conditions": {"conditions": [{"leftValue": "={{ $json.s }}", "operator": "string:equals", "rightValue": "id-{{ $json.n }}"}]}}`, engine.Item{"s": "id-7", "n": 7}, "true"},
		{"constant beyond float64's range", `{"conditions": {"conditions": [{"leftValue": "={{ $json.n }}", "operator": "number:lt", "rightValue": 1e400}]}}`, engine.Item{"n": 5}, "true"},
		{"unary operation ignores rightValue", `{"conditions": {"conditions": [{"leftValue": "={{ $json.s }}", "operator": "string:notEmpty", "rightValue": "={{ fail('not evaluated') }}"}]}}`, engine.Item{"s": "x"}, "true"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ifRoute(t, ifLoad(t, c.params), c.item)
			if got[0] != c.want {
				t.Errorf("got %s, want %s", got[0], c.want)
			}
		})
	}
}

func TestIfTypeValidation(t *testing.T) {
	const (
		strict = `{"typeValidation": "strict"}`
		loose  = `{"typeValidation": "loose"}`
	)
	cases := []struct {
		name, op, options string
		l, r              any
		want              string
	}{
		{"strict number rejects text", "number:gt", strict, "5", 3, "error: Wrong type: '5' is a string but was expecting a number [condition 0, item 0]"},
		{"strict number rejects text on the right", "number:gt", strict, 5, "3", "error: Wrong type: '3' is a string but was expecting a number [condition 0, item 0]"},
		{"strict both sides wrong", "number:gt", strict, "5", "3", "error: Comparison type expects a number but both fields are a string [condition 0, item 0]"},
		{"loose number converts text", "number:gt", loose, " 5 ", 3, "true"},
		{"loose number converts a boolean", "number:equals", loose, true, 1, "true"},
		{"loose number fails on words", "number:gt", loose, "abc", 3, "error: Conversion error: the string 'abc' can't be converted to a number [condition 0, item 0]"},
		{"loose number reads whole text exactly", "number:equals", loose, "9007199254740993", int64(9007199254740992), "false"},
		{"loose number fails on an empty string", "number:gt", loose, "", 3, "error: Conversion error: the string '' can't be converted to a number [condition 0, item 0]"},
		{"strict string rejects a number", "string:equals", strict, 5, "5", "error: Wrong type: '5' is a number but was expecting a string [condition 0, item 0]"},
		{"loose string formats a number", "string:equals", loose, 5, "5", "true"},
		{"loose string formats a boolean", "string:startsWith", loose, true, "tr", "true"},
		{"loose string formats an object", "string:equals", loose, map[string]any{"a": 1}, `{"a":1}`, "true"},
		{"strict boolean rejects text", "boolean:true", strict, "true", ifAbsent, "error: Wrong type: 'true' is a string but was expecting a boolean [condition 0, item 0]"},
		{"loose boolean reads true", "boolean:true", loose, "True", ifAbsent, "true"},
		{"loose boolean reads false", "boolean:false", loose, "false", ifAbsent, "true"},
		{"loose boolean reads 1", "boolean:true", loose, 1, ifAbsent, "true"},
		{"loose boolean reads \"0\"", "boolean:equals", loose, "0", false, "true"},
		{"loose boolean fails on yes", "boolean:true", loose, "yes", ifAbsent, "error: Conversion error: the string 'yes' can't be converted to a boolean [condition 0, item 0]"},
		{"loose boolean fails on 2", "boolean:true", loose, 2, ifAbsent, "error: Conversion error: the number '2' can't be converted to a boolean [condition 0, item 0]"},
		{"strict dateTime reads text", "dateTime:before", strict, "2024-05-01", "2024-05-02T00:00:00Z", "true"},
		{"strict dateTime rejects bad text", "dateTime:before", strict, "soon", "2024-05-02T00:00:00Z", "error: Wrong type: 'soon' is a string but was expecting a dateTime [condition 0, item 0]"},
		{"strict dateTime rejects a number", "dateTime:before", strict, int64(1700000000000), "2024-05-02T00:00:00Z", "error: Wrong type: '1700000000000' is a number but was expecting a dateTime [condition 0, item 0]"},
		{"loose dateTime fails on bad text", "dateTime:after", loose, "x", "2024-05-02T00:00:00Z", "error: Conversion error: the string 'x' can't be converted to a dateTime [condition 0, item 0]"},
		{"loose dateTime fails on an empty string", "dateTime:after", loose, "", "2024-05-02T00:00:00Z", "error: Conversion error: the string '' can't be converted to a dateTime [condition 0, item 0]"},
		{"loose dateTime takes no epoch millis", "dateTime:after", loose, int64(1700000000000), "2024-05-02T00:00:00Z", "error: Conversion error: the number '1700000000000' can't be converted to a dateTime [condition 0, item 0]"},
		{"loose dateTime both sides bad", "dateTime:after", loose, "x", "y", "error: Comparison type expects a dateTime but both fields are a string [condition 0, item 0]"},
		{"strict array rejects JSON text", "array:lengthEquals", strict, "[1,2]", 2, "error: Wrong type: '[1,2]' is a string but was expecting an array [condition 0, item 0]"},
		{"loose array parses JSON text", "array:lengthEquals", loose, "[1,2]", 2, "true"},
		{"loose array fails on other text", "array:lengthEquals", loose, "1,2", 2, "error: Conversion error: the string '1,2' can't be converted to an array [condition 0, item 0]"},
		{"strict array contains compares types", "array:contains", strict, []any{1, 2}, "2", "false"},
		{"loose array contains compares text", "array:contains", loose, []any{1, 2}, "2", "true"},
		{"presence operations take any type", "number:notEmpty", strict, "abc", ifAbsent, "true"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ifRoute(t, ifLoad(t, ifOneCondition(c.op, c.options)), ifItem(c.l, c.r))
			if got[0] != c.want {
				t.Errorf("got  %s\nwant %s", got[0], c.want)
			}
		})
	}

	t.Run("indexes in the message", func(t *testing.T) {
		n := ifLoad(t, `{"conditions": {"conditions": [
			{"leftValue": "={{ $json.a }}", "operator": "number:gte", "rightValue": 0},
			{"leftValue": "={{ $json.b }}", "operator": "number:gte", "rightValue": 0}]}}`)
		got := ifRoute(t, n,
			engine.Item{"a": 1, "b": 1},
			engine.Item{"a": 1, "b": 2},
			engine.Item{"a": 1, "b": 3},
			engine.Item{"a": 1, "b": "x"},
		)
		want := []string{"true", "true", "true", "error: Wrong type: 'x' is a string but was expecting a number [condition 1, item 3]"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})

	t.Run("looseTypeValidation overrides strict", func(t *testing.T) {
		n := ifLoad(t, `{"looseTypeValidation": true, "conditions": {"options": {"typeValidation": "strict"}, "conditions": [{"leftValue": "={{ $json.n }}", "operator": "number:gt", "rightValue": 3}]}}`)
		if got := ifRoute(t, n, engine.Item{"n": "4"}); got[0] != "true" {
			t.Errorf("got %s, want true", got[0])
		}
	})

	t.Run("n8n 2.0 options.looseTypeValidation", func(t *testing.T) {
		n := ifLoad(t, `{"options": {"looseTypeValidation": true}, "conditions": {"conditions": [{"leftValue": "={{ $json.n }}", "operator": "number:gt", "rightValue": 3}]}}`)
		if got := ifRoute(t, n, engine.Item{"n": "4"}); got[0] != "true" {
			t.Errorf("got %s, want true", got[0])
		}
	})

	t.Run("expression values keep their type", func(t *testing.T) {
		n := ifLoad(t, `{"conditions": {"conditions": [{"leftValue": "={{ $now }}", "operator": "string:notEquals", "rightValue": ""}]}}`)
		got := ifRoute(t, n, engine.Item{"id": 1})
		if !strings.HasPrefix(got[0], "error: Wrong type: '") || !strings.HasSuffix(got[0], "' is a dateTime but was expecting a string [condition 0, item 0]") {
			t.Errorf("got %s, want a wrong type error for a dateTime", got[0])
		}
	})
}

func TestIfNulls(t *testing.T) {
	x := ifAbsent
	cases := []struct {
		name, op string
		l, r     any
		want     string
	}{
		{"null left equals", "string:equals", nil, "a", "false"},
		{"missing left notEquals", "string:notEquals", x, "a", "false"},
		{"null right notEquals", "string:notEquals", "a", nil, "false"},
		{"both null equals", "string:equals", nil, nil, "false"},
		{"null left notContains", "string:notContains", nil, "a", "false"},
		{"null left notRegex", "string:notRegex", nil, "a", "false"},
		{"null left number lt", "number:lt", nil, 5, "false"},
		{"null right number notEquals", "number:notEquals", 5, x, "false"},
		{"null left dateTime before", "dateTime:before", nil, "2024-05-01", "false"},
		{"null right dateTime afterOrEquals", "dateTime:afterOrEquals", "2024-05-01", nil, "false"},
		{"null left boolean true", "boolean:true", nil, x, "false"},
		{"null left boolean false", "boolean:false", nil, x, "false"},
		{"null left array notContains", "array:notContains", nil, 1, "false"},
		{"null right array contains", "array:contains", []any{nil}, nil, "false"},
		{"null left array lengthLt", "array:lengthLt", nil, 1, "false"},
		{"null exists", "string:exists", nil, x, "false"},
		{"null notExists", "number:notExists", nil, x, "true"},
		{"null empty", "object:empty", nil, x, "true"},
		{"null notEmpty", "array:notEmpty", nil, x, "false"},
		{"null does not hide a bad other side", "number:gt", nil, "x", "error: Wrong type: 'x' is a string but was expecting a number [condition 0, item 0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ifRoute(t, ifLoad(t, ifOneCondition(c.op, "")), ifItem(c.l, c.r))
			if got[0] != c.want {
				t.Errorf("got %s, want %s", got[0], c.want)
			}
		})
	}
}

func TestIfDateTime(t *testing.T) {
	localNoon := time.Date(2024, 5, 1, 12, 0, 0, 0, time.Local).Format(time.RFC3339)
	cases := []struct {
		name, left, op, right string
		item                  engine.Item
		want                  string
	}{
		{"offsets compare by instant", "2024-05-01T23:30:00-05:00", "equals", "2024-05-02T04:30:00Z", nil, "true"},
		{"offsets after", "2024-05-01T23:30:00-05:00", "after", "2024-05-02T06:00:00+02:00", nil, "true"},
		{"milliseconds count", "2024-05-01T10:00:00.001Z", "after", "2024-05-01T10:00:00Z", nil, "true"},
		{"date only is midnight", "2024-05-01", "beforeOrEquals", "2024-05-01T00:00:00", nil, "true"},
		{"date only against a later date", "2024-05-01", "before", "2024-05-03T00:00:00Z", nil, "true"},
		{"date only against an earlier date", "2024-05-01", "after", "2024-04-29T00:00:00Z", nil, "true"},
		{"no offset is the flow's zone", "2024-05-01T12:00:00", "equals", localNoon, nil, "true"},
		{"SQL form", "2024-05-01 12:00:00", "equals", "2024-05-01T12:00:00", nil, "true"},
		{"HTTP form", "Wed, 01 May 2024 10:00:00 GMT", "equals", "2024-05-01T12:00:00+02:00", nil, "true"},
		{"now equals now", "={{ $now }}", "equals", "={{ $now }}", nil, "true"},
		{"now after a minute ago", "={{ $now }}", "afterOrEquals", "={{ $now.minus(1, 'minute') }}", nil, "true"},
		{"a minute ago is not after now", "={{ $now.minus(1,'minute') }}", "after", "={{ $now }}", nil, "false"},
		{"now before in a minute", "={{ $now }}", "before", "={{ $now.plus(1, 'minute') }}", nil, "true"},
		{"item text against now", "={{ $json.at }}", "before", "={{ $now }}", engine.Item{"at": engine.FormatTime(time.Now().Add(-time.Hour))}, "true"},
		{"item text in UTC against now", "={{ $json.at }}", "after", "={{ $now.minus(1, 'minute') }}", engine.Item{"at": time.Now().UTC().Format(time.RFC3339Nano)}, "true"},
		{"item time value", "={{ $json.at }}", "after", "2000-01-01", engine.Item{"at": time.Now()}, "true"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := fmt.Sprintf(`{"conditions": {"conditions": [{"leftValue": %q, "operator": "dateTime:%s", "rightValue": %q}]}}`, c.left, c.op, c.right)
			item := c.item
			if item == nil {
				item = engine.Item{"id": 1}
			}
			if got := ifRoute(t, ifLoad(t, params), item); got[0] != c.want {
				t.Errorf("got %s, want %s", got[0], c.want)
			}
		})
	}
}

// ifSeedParams are the parameters of "if token is valid" in n8n template 2538
// (/work/shared/seed/n8n-template-2538.json), copied verbatim.
const ifSeedParams = `{
  "options": {},
  "conditions": {
   "options": {
    "version": 2,
    "leftValue": "",
    "caseSensitive": true,
    "typeValidation": "loose"
   },
   "combinator": "and",
   "conditions": [
    {
     "id": "65f5c979-3e7d-4e50-92c3-3ae39f1bba3d",
     "operator": {
      "type": "dateTime",
      "operation": "afterOrEquals"
     },
     "leftValue": "={{ $json.timestamp }}",
     "rightValue": "={{ $now.minus(1,'minute') }}"
    }
   ]
  },
  "looseTypeValidation": true
 }`

func TestIfSeedTemplate(t *testing.T) {
	n := ifLoad(t, ifSeedParams)
	now := time.Now()
	cases := []struct {
		name      string
		timestamp any
		want      string
	}{
		{"fresh timestamp", engine.FormatTime(now), "true"},
		{"fresh timestamp in UTC", now.UTC().Format(time.RFC3339Nano), "true"},
		{"fresh timestamp in another offset", now.In(time.FixedZone("", -5*3600)).Format(time.RFC3339), "true"},
		{"30 seconds old", engine.FormatTime(now.Add(-30 * time.Second)), "true"},
		{"2 minutes old", engine.FormatTime(now.Add(-2 * time.Minute)), "false"},
		{"2 minutes old in UTC", now.Add(-2 * time.Minute).UTC().Format(time.RFC3339), "false"},
		{"no timestamp", ifAbsent, "false"},
		{"garbage timestamp", "yesterday", "error: Conversion error: the string 'yesterday' can't be converted to a dateTime [condition 0, item 0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			item := engine.Item{"accessToken": 0}
			if c.timestamp != ifAbsent {
				item["timestamp"] = c.timestamp
			}
			if got := ifRoute(t, n, item); got[0] != c.want {
				t.Errorf("timestamp %v: got %s, want %s", c.timestamp, got[0], c.want)
			}
		})
	}
}

func TestIfCombinator(t *testing.T) {
	const (
		yes  = `{"leftValue": "={{ $json.n }}", "operator": "number:gt", "rightValue": 0}`
		no   = `{"leftValue": "={{ $json.n }}", "operator": "number:lt", "rightValue": 0}`
		boom = `{"leftValue": "={{ fail('boom') }}", "operator": "string:equals", "rightValue": "x"}`
	)
	cases := []struct {
		name, combinator string
		conds            []string
		want             string
	}{
		{"and all true", "and", []string{yes, yes}, "true"},
		{"and one false", "and", []string{yes, no}, "false"},
		{"and is the default", "", []string{yes, no}, "false"},
		{"or one true", "or", []string{no, yes}, "true"},
		{"or all false", "or", []string{no, no}, "false"},
		{"and stops at the first false", "and", []string{no, boom}, "false"},
		{"and reaches a later condition", "and", []string{yes, boom}, "error: leftValue: fail('boom'): fail: boom [condition 1, item 0]"},
		{"or stops at the first true", "or", []string{yes, boom}, "true"},
		{"or reaches a later condition", "or", []string{no, boom}, "error: leftValue: fail('boom'): fail: boom [condition 1, item 0]"},
		{"right value after a failing left is not evaluated", "and", []string{`{"leftValue": "={{ fail('left') }}", "operator": "string:equals", "rightValue": "={{ fail('right') }}"}`}, "error: leftValue: fail('left'): fail: left [condition 0, item 0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			comb := ""
			if c.combinator != "" {
				comb = fmt.Sprintf(`"combinator": %q, `, c.combinator)
			}
			params := fmt.Sprintf(`{"conditions": {%s"conditions": [%s]}}`, comb, strings.Join(c.conds, ", "))
			if got := ifRoute(t, ifLoad(t, params), engine.Item{"n": 1}); got[0] != c.want {
				t.Errorf("got  %s\nwant %s", got[0], c.want)
			}
		})
	}
}

func TestIfSingleCondition(t *testing.T) {
	cases := []struct {
		name, params string
		item         engine.Item
		want         string
	}{
		{"comparison true", `{"condition": "={{ $json.n > 3 }}"}`, engine.Item{"n": 5}, "true"},
		{"comparison false", `{"condition": "={{ $json.n > 3 }}"}`, engine.Item{"n": 1}, "false"},
		{"without the = marker", `{"condition": "{{ $json.ok && $json.n == 1 }}"}`, engine.Item{"ok": true, "n": 1}, "true"},
		{"constant true", `{"condition": true}`, engine.Item{"n": 1}, "true"},
		{"constant false", `{"condition": false}`, engine.Item{"n": 1}, "false"},
		{"null is false", `{"condition": "={{ $json.missing }}"}`, engine.Item{"n": 1}, "false"},
		{"strict rejects text", `{"condition": "={{ $json.s }}"}`, engine.Item{"s": "true"}, "error: Wrong type: 'true' is a string but was expecting a boolean [item 0]"},
		{"strict rejects a number", `{"condition": "={{ $json.n }}"}`, engine.Item{"n": 1}, "error: Wrong type: '1' is a number but was expecting a boolean [item 0]"},
		{"loose reads true", `{"looseTypeValidation": true, "condition": "={{ $json.s }}"}`, engine.Item{"s": " TRUE "}, "true"},
		{"loose reads false", `{"looseTypeValidation": true, "condition": "={{ $json.s }}"}`, engine.Item{"s": "false"}, "false"},
		{"loose reads 0", `{"looseTypeValidation": true, "condition": "={{ $json.n }}"}`, engine.Item{"n": 0}, "false"},
		{"loose reads 2", `{"looseTypeValidation": true, "condition": "={{ $json.n }}"}`, engine.Item{"n": 2}, "true"},
		{"loose reads \"0\"", `{"looseTypeValidation": true, "condition": "={{ $json.s }}"}`, engine.Item{"s": "0"}, "false"},
		{"loose fails on words", `{"looseTypeValidation": true, "condition": "={{ $json.s }}"}`, engine.Item{"s": "maybe"}, "error: Conversion error: the string 'maybe' can't be converted to a boolean [item 0]"},
		{"expression error", `{"condition": "={{ fail('nope') }}"}`, engine.Item{"n": 1}, "error: condition: fail('nope'): fail: nope [item 0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ifRoute(t, ifLoad(t, c.params), c.item); got[0] != c.want {
				t.Errorf("got  %s\nwant %s", got[0], c.want)
			}
		})
	}
}

func TestIfSplitsItems(t *testing.T) {
	n := ifLoad(t, `{"conditions": {"conditions": [{"leftValue": "={{ $json.n }}", "operator": "number:gte", "rightValue": 10}]}}`)
	items := []engine.Item{
		{"n": 10, "name": "a"},
		{"n": 3, "name": "b"},
		{"n": "ten", "name": "c"},
		{"n": 11, "name": "d"},
		{"name": "e"},
		{"n": 12.5, "name": "f"},
	}
	want := []string{"true", "false", "error: Wrong type: 'ten' is a string but was expecting a number [condition 0, item 2]", "true", "false", "true"}
	if got := ifRoute(t, n, items...); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	res, err := engine.ExecNode(t.Context(), n, items, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := func(port []engine.Item) []string {
		var out []string
		for _, it := range port {
			out = append(out, it["name"].(string))
		}
		return out
	}
	if got := names(res.Ports[0]); !reflect.DeepEqual(got, []string{"a", "d", "f"}) {
		t.Errorf("true port: got %v, want [a d f]", got)
	}
	if got := names(res.Ports[1]); !reflect.DeepEqual(got, []string{"b", "e"}) {
		t.Errorf("false port: got %v, want [b e]", got)
	}
	if !reflect.DeepEqual(res.Ports[0][0], engine.Item{"n": 10, "name": "a"}) {
		t.Errorf("item changed: %v", res.Ports[0][0])
	}

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := engine.ExecNode(ctx, n, items, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})

	t.Run("no items", func(t *testing.T) {
		res, err := engine.ExecNode(t.Context(), n, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Ports[0])+len(res.Ports[1])+len(res.Failed) != 0 {
			t.Errorf("got %+v, want nothing", res)
		}
	})
}

func TestIfRegex(t *testing.T) {
	cases := []struct {
		name, right, options string
		items                []engine.Item
		want                 []string
	}{
		{"constant pattern", `^ord-\\d+$`, "", []engine.Item{{"s": "ord-1"}, {"s": "ORD-1"}, {"s": "x"}}, []string{"true", "false", "false"}},
		{"slash form with flags", `/^ord-\\d+$/gi`, "", []engine.Item{{"s": "ORD-1"}, {"s": "x"}}, []string{"true", "false"}},
		{"case-insensitive option", `^ord`, `{"caseSensitive": false}`, []engine.Item{{"s": "ORD-1"}, {"s": "x"}}, []string{"true", "false"}},
		{"pattern from the item", "={{ $json.p }}", "", []engine.Item{{"s": "abc", "p": "^a"}, {"s": "abc", "p": "^b"}, {"s": "abc", "p": "("}, {"s": "abc", "p": "c$"}},
			[]string{"true", "false", "error: rightValue: invalid regex \"(\": missing closing ): `(` [condition 0, item 2]", "true"}},
		{"a path is a bare pattern", `/api/v1/users`, "", []engine.Item{{"s": "/api/v1/users/7"}, {"s": "/api/v2/users"}}, []string{"true", "false"}},
		{"a path from the item is a bare pattern", "={{ $json.p }}", "", []engine.Item{{"s": "GET /a/b/c", "p": "/a/b/c"}}, []string{"true"}},
		{"slash form from the item", "={{ $json.p }}", `{"caseSensitive": false}`, []engine.Item{{"s": "a\nB", "p": "/^b$/m"}}, []string{"true"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			options := c.options
			if options == "" {
				options = "{}"
			}
			params := fmt.Sprintf(`{"conditions": {"options": %s, "conditions": [{"leftValue": "={{ $json.s }}", "operator": "string:regex", "rightValue": "%s"}]}}`, options, c.right)
			if got := ifRoute(t, ifLoad(t, params), c.items...); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestIfCaseSensitivity(t *testing.T) {
	cases := []struct {
		op         string
		l, r       any
		sensitive  string
		insensitve string
	}{
		{"string:equals", "ABC", "abc", "false", "true"},
		{"string:notEquals", "ABC", "abc", "true", "false"},
		{"string:contains", "Hello World", "WORLD", "false", "true"},
		{"string:startsWith", "Hello", "hE", "false", "true"},
		{"string:endsWith", "Hello", "LO", "false", "true"},
		{"array:contains", []any{"a", "B"}, "b", "false", "true"},
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			for _, opts := range []struct{ name, params, want string }{
				{"default", ifOneCondition(c.op, ""), c.sensitive},
				{"caseSensitive true", ifOneCondition(c.op, `{"caseSensitive": true}`), c.sensitive},
				{"caseSensitive false", ifOneCondition(c.op, `{"caseSensitive": false}`), c.insensitve},
				{"n8n ignoreCase", strings.Replace(ifOneCondition(c.op, ""), `{"conditions"`, `{"options": {"ignoreCase": true}, "conditions"`, 1), c.insensitve},
			} {
				if got := ifRoute(t, ifLoad(t, opts.params), ifItem(c.l, c.r)); got[0] != opts.want {
					t.Errorf("%s: got %s, want %s", opts.name, got[0], opts.want)
				}
			}
		})
	}
}

func TestIfLoadErrors(t *testing.T) {
	const where = "parameters.conditions.conditions[0]."
	cond := func(s string) string { return `{"conditions": {"conditions": [` + s + `]}}` }
	cases := []struct {
		name, params string
		want         []string
	}{
		{"unknown operation", cond(`{"leftValue": "={{ $json.t }}", "operator": "dateTime:afterOrEqual", "rightValue": "2024-05-01"}`),
			[]string{where + `operator: unknown dateTime operation "afterOrEqual" (did you mean "afterOrEquals"?); want one of exists, notExists, empty, notEmpty, equals, notEquals, after, before, afterOrEquals, beforeOrEquals`}},
		{"operation of another type", cond(`{"leftValue": "={{ $json.t }}", "operator": {"type": "number", "operation": "contains"}, "rightValue": 1}`),
			[]string{where + `operator.operation: unknown number operation "contains"; want one of exists, notExists, empty, notEmpty, equals, notEquals, gt, lt, gte, lte`}},
		{"unknown type", cond(`{"leftValue": "={{ $json.t }}", "operator": {"type": "datetime", "operation": "after"}, "rightValue": "2024-05-01"}`),
			[]string{where + `operator.type: unknown type "datetime" (did you mean "dateTime"?); want one of string, number, dateTime, boolean, array, object`}},
		{"unknown type in short form", cond(`{"leftValue": "={{ $json.t }}", "operator": "text:equals", "rightValue": "a"}`),
			[]string{where + `operator: unknown type "text"`}},
		{"short form without a colon", cond(`{"leftValue": "={{ $json.t }}", "operator": "equals", "rightValue": "a"}`),
			[]string{where + `operator: want "type:operation" such as "string:equals", got "equals"`}},
		{"operator missing", cond(`{"leftValue": "={{ $json.t }}", "rightValue": "a"}`), []string{where + "operator: required"}},
		{"operation missing", cond(`{"leftValue": "={{ $json.t }}", "operator": {"type": "string"}, "rightValue": "a"}`), []string{where + "operator.operation: required"}},
		{"operator of the wrong kind", cond(`{"leftValue": "={{ $json.t }}", "operator": 3, "rightValue": "a"}`), []string{where + `operator: want "type:operation" or {"type": …, "operation": …}, got number`}},
		{"leftValue missing", cond(`{"operator": "string:exists"}`), []string{where + "leftValue: required"}},
		{"rightValue missing", cond(`{"leftValue": "={{ $json.n }}", "operator": "number:gt"}`), []string{where + "rightValue: required by number:gt"}},
		{"both condition and conditions", `{"condition": "={{ true }}", "conditions": {"conditions": [{"leftValue": "={{ $json.n }}", "operator": "number:exists"}]}}`,
			[]string{"parameters.condition: set conditions or condition, not both"}},
		{"neither condition nor conditions", `{}`, []string{"parameters: conditions or condition is required"}},
		{"neither, with only options", `{"looseTypeValidation": true}`, []string{"parameters: conditions or condition is required"}},
		{"no condition list", `{"conditions": {"combinator": "and"}}`, []string{"parameters.conditions.conditions: required"}},
		{"empty condition list", `{"conditions": {"conditions": []}}`, []string{"parameters.conditions.conditions: want at least one condition"}},
		{"condition that is not an object", `{"conditions": {"conditions": ["x"]}}`, []string{"parameters.conditions.conditions[0]: want an object, got string"}},
		{"conditions that is not an object", `{"conditions": "x"}`, []string{"parameters.conditions: want object, got string"}},
		{"bad regex constant", cond(`{"leftValue": "={{ $json.s }}", "operator": "string:regex", "rightValue": "a(b"}`),
			[]string{where + "rightValue: invalid regex \"a(b\": missing closing ): `a(b`"}},
		{"bad regex flag", cond(`{"leftValue": "={{ $json.s }}", "operator": "string:notRegex", "rightValue": "/a/y"}`),
			[]string{where + `rightValue: regex "/a/y": unsupported flag 'y' (want g, i, m, s or u)`}},
		{"broken expression", cond(`{"leftValue": "={{ $json. }}", "operator": "string:exists"}`), []string{where + "leftValue: expression {{ $json. }}"}},
		{"broken expression on the right", cond(`{"leftValue": "={{ $json.s }}", "operator": "string:equals", "rightValue": "={{ 1 + }}"}`), []string{where + "rightValue: expression {{ 1 + }}"}},
		{"broken single condition", `{"condition": "={{ $json.n > }}"}`, []string{"parameters.condition: expression {{ $json.n > }}"}},
		{"unknown key in a condition", cond(`{"leftVal": "={{ $json.s }}", "operator": "string:exists"}`),
			[]string{where + `leftVal: unknown key`, where + "leftValue: required"}},
		{"unknown key in options", `{"conditions": {"options": {"typeValidaton": "loose"}, "conditions": [{"leftValue": "={{ $json.s }}", "operator": "string:exists"}]}}`,
			[]string{`parameters.conditions.options.typeValidaton: unknown key (did you mean "typeValidation"?)`}},
		{"unknown parameter", `{"conditon": "={{ true }}", "condition": "={{ true }}"}`, []string{`parameters.conditon: unknown parameter (did you mean "condition"?)`}},
		{"bad combinator", `{"conditions": {"combinator": "xor", "conditions": [{"leftValue": "={{ $json.s }}", "operator": "string:exists"}]}}`,
			[]string{`parameters.conditions.combinator: "xor" is not one of and, or`}},
		{"bad typeValidation", `{"conditions": {"options": {"typeValidation": "lax"}, "conditions": [{"leftValue": "={{ $json.s }}", "operator": "string:exists"}]}}`,
			[]string{`parameters.conditions.options.typeValidation: "lax" is not one of strict, loose`}},
		{"caseSensitive not a boolean", `{"conditions": {"options": {"caseSensitive": "no"}, "conditions": [{"leftValue": "={{ $json.s }}", "operator": "string:exists"}]}}`,
			[]string{`parameters.conditions.options.caseSensitive: want true or false, got string`}},
		{"strict constant of the wrong type", cond(`{"leftValue": "={{ $json.n }}", "operator": "number:gt", "rightValue": "5"}`),
			[]string{where + "rightValue: Wrong type: '5' is a string but was expecting a number"}},
		{"loose constant that does not convert", `{"looseTypeValidation": true, "conditions": {"conditions": [{"leftValue": "={{ $json.t }}", "operator": "dateTime:after", "rightValue": "soon"}]}}`,
			[]string{where + "rightValue: Conversion error: the string 'soon' can't be converted to a dateTime"}},
		{"constant left of the wrong type", cond(`{"leftValue": "abc", "operator": "boolean:true"}`),
			[]string{where + "leftValue: Wrong type: 'abc' is a string but was expecting a boolean"}},
		{"constant condition that is not a boolean", `{"condition": "yes"}`, []string{"parameters.condition: Wrong type: 'yes' is a string but was expecting a boolean"}},
		{"every problem is reported", `{"conditions": {"conditions": [
				{"leftValue": "={{ $json.a }}", "operator": "number:greater", "rightValue": 1},
				{"leftValue": "={{ $json.b }}", "operator": "string:regex", "rightValue": "("}]}}`,
			[]string{where + `operator: unknown number operation "greater"`, "parameters.conditions.conditions[1].rightValue: invalid regex"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := (&engine.Loader{Registry: nodes.NewRegistry()}).LoadNode("if", c.params)
			if err == nil {
				t.Fatalf("loaded; want errors %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
			var probs engine.Problems
			if !errors.As(err, &probs) {
				t.Fatalf("got %T, want engine.Problems", err)
			}
			if len(probs) > len(c.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(probs), len(c.want), err)
			}
		})
	}
}

// TestIfListNotCopied checks that a list operand is read in place: testing a 10,000-element
// list costs no more allocations than testing a 10-element one.
func TestIfListNotCopied(t *testing.T) {
	for _, op := range []string{"array:lengthGt", "array:contains", "array:notEmpty"} {
		t.Run(op, func(t *testing.T) {
			n := ifLoad(t, ifOneCondition(op, ""))
			allocs := func(size int) float64 {
				list := make([]any, size)
				for i := range list {
					list[i] = map[string]any{"i": int64(i)}
				}
				items := []engine.Item{{"l": list, "r": int64(size + 1)}}
				return testing.AllocsPerRun(20, func() {
					if _, err := engine.ExecNode(t.Context(), n, items, nil); err != nil {
						t.Fatal(err)
					}
				})
			}
			small, large := allocs(10), allocs(10_000)
			if large > small+50 {
				t.Errorf("%v allocations for 10,000 elements, %v for 10: the list is copied", large, small)
			}
		})
	}
}
