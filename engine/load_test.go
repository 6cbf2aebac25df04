package engine

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each must appear, in order, as a whole problem line
	}{
		{
			name: "malformed JSON",
			src:  "{\n  \"nodes\": [\n    {\"name\": \"t\",, }\n  ]\n}",
			want: []string{"test.json:3:18: invalid JSON: invalid character ',' looking for beginning of object key string"},
		},
		{
			name: "truncated JSON",
			src:  `{"nodes": [`,
			want: []string{"test.json:1:12: invalid JSON: unexpected end of JSON input"},
		},
		{
			name: "duplicate key",
			src:  `{"nodes": [], "nodes": []}`,
			want: []string{`test.json:1:15: invalid JSON: duplicate key "nodes"`},
		},
		{
			name: "unknown keys with suggestions",
			src:  "{\"nodez\": [],\n \"nodes\": [{\"name\": \"t\", \"type\": \"trigger\", \"retryOnFial\": true}]}",
			want: []string{
				`test.json:1:2: unknown key "nodez" (did you mean "nodes"?)`,
				`test.json:2:45: node "t": unknown key "retryOnFial" (did you mean "retryOnFail"?)`,
			},
		},
		{
			name: "unknown node type",
			src:  `{"nodes": [{"name": "t", "type": "triger"}, {"name": "p", "type": "n8n-nodes-base.pass"}]}`,
			want: []string{
				`test.json:1:34: node "t": unknown node type "triger" (did you mean "trigger"?)`,
				`test.json:1:67: node "p": unknown node type "n8n-nodes-base.pass" (did you mean "pass"?)`,
			},
		},
		{
			name: "duplicate node names",
			src:  `{"nodes": [{"name": "t", "type": "trigger"}, {"name": "t", "type": "pass"}]}`,
			want: []string{`test.json:1:55: nodes[1]: duplicate node name "t"`},
		},
		{
			name: "dangling connections",
			src: `{"nodes": [{"name": "t", "type": "trigger"}, {"name": "p", "type": "pass"}],
"connections": {"t": ["q"], "x": ["p"], "p": {"false": ["t"]}}}`,
			want: []string{
				`test.json:2:23: connections["t"]: no node named "q"`,
				`test.json:2:29: connections: no node named "x"`,
				`test.json:2:47: connections["p"]: node "p" has no output "false"; its outputs are main`,
			},
		},
		{
			name: "cycle",
			src: `{"nodes": [{"name": "t", "type": "trigger"}, {"name": "a", "type": "pass"}, {"name": "b", "type": "pass"}],
"connections": {"t": ["a"], "a": ["b"], "b": ["a"]}}`,
			want: []string{`test.json:1:46: connections form a cycle: "a" → "b" → "a" (flows must be acyclic)`},
		},
		{
			name: "into a trigger",
			src:  `{"nodes": [{"name": "t", "type": "trigger"}, {"name": "p", "type": "pass"}], "connections": {"t": ["p"], "p": ["t"]}}`,
			want: []string{`test.json:1:112: connections["p"]: "t" is a trigger and cannot have inputs`},
		},
		{
			name: "parameters",
			src: `{"nodes": [{"name": "t", "type": "trigger"},
{"name": "s", "type": "set", "parameters": {"key": 5, "valu": "x"}},
{"name": "e", "type": "emit", "parameters": {"items": [{"a": "{{ 1 + }}"}]}}
], "connections": {"t": ["s"], "s": ["e"]}}`,
			want: []string{
				`test.json:2:44: node "s": parameters.value: required`,
				`test.json:2:52: node "s": parameters.key: want string, got number`,
				`test.json:2:55: node "s": parameters.valu: unknown parameter (did you mean "value"?)`,
				"test.json:3:68: node \"e\": parameters.items[0].a: expression {{ 1 + }}: unexpected token EOF",
			},
		},
		{
			name: "settings",
			src:  `{"settings": {"timeout": "soon", "timezone": "Mars/Base"}, "nodes": [{"name": "t", "type": "trigger"}]}`,
			want: []string{
				`test.json:1:26: settings.timeout: want a duration such as "30s" or "1m30s", got "soon"`,
				`test.json:1:46: settings.timezone: unknown time zone "Mars/Base"`,
			},
		},
		{
			name: "node settings",
			src:  `{"nodes": [{"name": "t", "type": "trigger", "onError": "ignore", "maxTries": 0, "retryOnFail": true}]}`,
			want: []string{
				`test.json:1:56: node "t": onError: "ignore" is not one of stop, continue, errorOutput`,
				`test.json:1:78: node "t": maxTries: want a whole number from 1 to 100`,
			},
		},
		{
			name: "error port needs errorOutput",
			src:  `{"nodes": [{"name": "t", "type": "trigger"}, {"name": "p", "type": "pass"}], "connections": {"t": {"error": ["p"]}}}`,
			want: []string{`test.json:1:100: connections["t"]: node "t" has no output "error"; its outputs are main (set "onError": "errorOutput" on the node to get an error output)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, probs := (&Loader{Registry: testRegistry(t)}).Load("test.json", []byte(tt.src))
			if f != nil {
				t.Fatal("an invalid flow loaded")
			}
			var lines []string
			for _, p := range probs {
				lines = append(lines, p.Error())
			}
			i := 0
			for _, l := range lines {
				if i < len(tt.want) && l == tt.want[i] {
					i++
				}
			}
			if i < len(tt.want) {
				t.Fatalf("missing %q in:\n%s", tt.want[i], strings.Join(lines, "\n"))
			}
		})
	}
}

func TestLoadWarningsAndDefaults(t *testing.T) {
	src := `{"name": "Demo", "nodes": [{"name": "t", "type": "trigger", "position": [1, 2]}, {"name": "orphan", "type": "test.pass"}]}`
	f, probs := (&Loader{Registry: testRegistry(t)}).Load("flows/demo.json", []byte(src))
	if f == nil {
		t.Fatalf("load: %v", probs)
	}
	if f.ID != "demo" || f.Name != "Demo" || f.Settings.Timeout != DefaultRunTimeout || len(f.Version) != 12 {
		t.Errorf("flow = %q %q %v %q", f.ID, f.Name, f.Settings.Timeout, f.Version)
	}
	if f.Node("t").Position == nil || *f.Node("t").Position != [2]float64{1, 2} {
		t.Errorf("position not kept")
	}
	if f.Node("orphan").Type.Name != "pass" {
		t.Errorf("alias not resolved")
	}
	want := `flows/demo.json:1:82: warning: node "orphan": no trigger reaches it, so it never runs`
	if len(probs) != 1 || probs[0].Error() != want {
		t.Fatalf("problems = %v", probs)
	}
	if len(probs.Errors()) != 0 || !errors.Is(probs, probs[0]) {
		t.Errorf("warning counted as error, or not unwrapped")
	}
}

func TestLoadNodeStaticReads(t *testing.T) {
	f := mustLoad(t, `{"nodes": [{"name": "t", "type": "trigger"},
		{"name": "s", "type": "set", "parameters": {"key": "k", "value": "{{ $static.a + $static.b }}"}}],
		"connections": {"t": ["s"]}}`)
	n := f.Node("s")
	if !n.readsStatic || n.staticAll || !slices.Equal(n.staticKeys, []string{"a", "b"}) {
		t.Fatalf("reads %v all %v keys %v", n.readsStatic, n.staticAll, n.staticKeys)
	}
}

func TestFindCycle(t *testing.T) {
	g := map[int][]int{0: {1}, 1: {2}, 2: {3}, 3: {1}}
	got := findCycle(4, func(i int) []int { return g[i] })
	if !slices.Equal(got, []int{1, 2, 3, 1}) {
		t.Fatalf("cycle = %v", got)
	}
	dag := map[int][]int{0: {1, 2}, 1: {3}, 2: {3}}
	if c := findCycle(4, func(i int) []int { return dag[i] }); c != nil {
		t.Fatalf("cycle in a DAG: %v", c)
	}
}

func TestParamEdgeCases(t *testing.T) {
	if _, err := parseDurationValue(1e300); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("huge duration: %v", err)
	}
	p, err := NewParamsJSON(`{"h": [{"name": "X-A"}]}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.TemplateMap("h"); len(got) != 0 || p.Err() == nil || !strings.Contains(p.Err().Error(), "parameters.h[0]: value: required") {
		t.Errorf("entry without value: %v, %v", got, p.Err())
	}
}

func TestItemsOf(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, "null"},
		{map[string]any{"a": int64(1)}, `[{"a":1}]`},
		{map[string]any{"json": map[string]any{"a": int64(1)}}, `[{"a":1}]`},
		{[]any{map[string]any{"json": map[string]any{"b": true}}, map[string]any{"c": "x"}}, `[{"b":true},{"c":"x"}]`},
		{[]any{map[string]any{}, "x"}, "element 1 is a string, want an object"},
		{int64(5), "got a number, want an object, a list of objects or null"},
	}
	for _, tt := range tests {
		items, err := ItemsOf(tt.in)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			b, _ := json.Marshal(items)
			got = string(b)
		}
		if got != tt.want {
			t.Errorf("ItemsOf(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
