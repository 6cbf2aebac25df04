package nodes

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
)

func loadNode(t *testing.T, typ, params string) *engine.FlowNode {
	t.Helper()
	n, err := (&engine.Loader{Registry: NewRegistry()}).LoadNode(typ, params)
	if err != nil {
		t.Fatalf("load %s: %v", typ, err)
	}
	return n
}

func loadNodeErr(t *testing.T, typ, params string) string {
	t.Helper()
	_, err := (&engine.Loader{Registry: NewRegistry()}).LoadNode(typ, params)
	if err == nil {
		t.Fatalf("load %s %s: no error", typ, params)
	}
	return err.Error()
}

func TestCodeSeedNodes(t *testing.T) {
	// The shipped token flow's "2. set token in static data", on an OAuth2 response.
	set := loadNode(t, "code", `{
		"code": [
			"$vars.token = $json.access_token ?? $json.AccessToken ?? fail('the token response has neither access_token nor AccessToken')",
			"$vars.lifetime = float($json.expires_in ?? 60)",
			"$static.accessToken = $vars.token",
			"$static.expiresAt = $now.plus($vars.lifetime, 'seconds').toISO()"
		],
		"return": {"accessToken": "{{ $static.accessToken }}", "expiresAt": "{{ $static.expiresAt }}"}
	}`)
	tests := []struct {
		name      string
		in        engine.Item
		wantToken string
		wantErr   string
	}{
		{"oauth2 field", engine.Item{"access_token": "a1", "expires_in": int64(3600)}, "a1", ""},
		{"seed field", engine.Item{"AccessToken": "5763273631"}, "5763273631", ""},
		{"string expires_in", engine.Item{"access_token": "a2", "expires_in": "120"}, "a2", ""},
		{"no token", engine.Item{"error": "invalid_client"}, "", "the token response has neither access_token nor AccessToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := engine.ExecNode(context.Background(), set, []engine.Item{tt.in}, map[string]any{"accessToken": "old"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out := res.Ports[0]
			if len(out) != 1 || out[0]["accessToken"] != tt.wantToken {
				t.Fatalf("output = %v", out)
			}
			if _, err := engine.ParseDateTime(out[0]["expiresAt"], nil); err != nil {
				t.Errorf("expiresAt %v: %v", out[0]["expiresAt"], err)
			}
			if len(res.Static) != 2 || res.Static[0].Key != "accessToken" || res.Static[0].After != tt.wantToken {
				t.Errorf("static changes = %+v", res.Static)
			}
		})
	}
}

func TestCodeStatements(t *testing.T) {
	tests := []struct {
		name       string
		params     string
		items      []engine.Item
		static     map[string]any
		wantOut    string // FormatValue of port 0
		wantStatic string // FormatValue of the static changes' keys and values
	}{
		{
			name:    "return only",
			params:  `{"return": {"n": "{{ len($input) }}", "first": "{{ $json.a }}"}}`,
			items:   []engine.Item{{"a": "x"}, {"a": "y"}},
			wantOut: `[{"first":"x","n":2}]`,
		},
		{
			name:    "default output passes items",
			params:  `{"code": ["$vars.x = 1"]}`,
			items:   []engine.Item{{"a": int64(1)}},
			wantOut: `[{"a":1}]`,
		},
		{
			name:    "return a list and n8n json wrappers",
			params:  `{"return": "{{ [{json: {a: 1}}, {b: 2}] }}"}`,
			wantOut: `[{"a":1},{"b":2}]`,
		},
		{
			name:    "return null emits nothing",
			params:  `{"return": null}`,
			items:   []engine.Item{{}},
			wantOut: `[]`,
		},
		{
			name:    "each item assigns to $json without touching the input",
			params:  `{"mode": "runOnceForEachItem", "code": ["$json.double = $json.n * 2", "$json.meta.seen = true", "delete $json.n"]}`,
			items:   []engine.Item{{"n": int64(1)}, {"n": int64(5), "meta": map[string]any{"k": "v"}}},
			wantOut: `[{"double":2,"meta":{"seen":true}},{"double":10,"meta":{"k":"v","seen":true}}]`,
		},
		{
			name:       "static read-modify-write and nested keys",
			params:     `{"code": ["$static.count = ($static.count ?? 0) + 1", "$static.cfg.level = 3", "$static['odd key'] = $static.count * 10"]}`,
			static:     map[string]any{"count": int64(4), "cfg": map[string]any{"name": "x"}},
			items:      []engine.Item{{}},
			wantOut:    `[{}]`,
			wantStatic: `[{"key":"count","before":null,"after":5},{"key":"cfg","before":null,"after":{"level":3,"name":"x"}},{"key":"odd key","before":null,"after":50}]`,
		},
		{
			name:       "later statements see earlier writes; delete",
			params:     `{"code": ["$static.a = 'new'", "$vars.seen = $static.a", "delete $static.gone"], "return": {"seen": "{{ $vars.seen }}"}}`,
			static:     map[string]any{"a": "old", "gone": true},
			wantOut:    `[{"seen":"new"}]`,
			wantStatic: `[{"key":"a","before":null,"after":"new"},{"key":"gone","before":null,"after":null,"deleted":true}]`,
		},
		{
			name:       "writing an unchanged value is no change",
			params:     `{"code": ["$static.a = $static.a ?? 0"]}`,
			static:     map[string]any{"a": int64(3)},
			items:      []engine.Item{{}},
			wantOut:    `[{}]`,
			wantStatic: `null`,
		},
		{
			name:    "comparison is not an assignment",
			params:  `{"code": ["$vars.a = 1", "$vars.a == 1 || fail('no')", "$vars.a >= 1 || fail('no')"], "return": {"ok": true}}`,
			wantOut: `[{"ok":true}]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := loadNode(t, "code", tt.params)
			in := make([]engine.Item, len(tt.items))
			for i, it := range tt.items {
				in[i] = engine.ToJSONValue(it).(map[string]any)
			}
			before := engine.FormatValue(engine.ToJSONValue(in))
			res, err := engine.ExecNode(context.Background(), n, in, tt.static)
			if err != nil {
				t.Fatal(err)
			}
			if got := engine.FormatValue(engine.ToJSONValue(res.Ports[0])); got != tt.wantOut {
				t.Errorf("output = %s, want %s", got, tt.wantOut)
			}
			if after := engine.FormatValue(engine.ToJSONValue(in)); after != before {
				t.Errorf("input items changed: %s → %s", before, after)
			}
			if tt.wantStatic != "" {
				b, _ := json.Marshal(res.Static)
				if got := string(b); got != tt.wantStatic {
					t.Errorf("static = %s, want %s", got, tt.wantStatic)
				}
			}
		})
	}
}

func TestCodeEachItemFailuresArePerItem(t *testing.T) {
	n := loadNode(t, "code", `{"mode": "runOnceForEachItem", "code": ["$json.r = 10 / $json.n", "$json.n > 0 || fail('n must be positive')"]}`)
	res, err := engine.ExecNode(context.Background(), n, []engine.Item{{"n": int64(2)}, {"n": int64(-1)}, {"n": int64(5)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ports[0]) != 2 || len(res.Failed) != 1 || res.Failed[0].Index != 1 {
		t.Fatalf("out %v failed %+v", res.Ports[0], res.Failed)
	}
	if msg := res.Failed[0].Err.Error(); !strings.Contains(msg, "code[1]") || !strings.Contains(msg, "n must be positive") {
		t.Errorf("failure message %q", msg)
	}
}

func TestCodeLoadErrors(t *testing.T) {
	tests := []struct {
		name, params, want string
	}{
		{"nothing to do", `{}`, "give code, return or both"},
		{"broken expression", `{"code": ["$static.a = 1 +* 2"]}`, `parameters.code[0]: expression {{ 1 +* 2 }}: unexpected token Operator("*")`},
		{"broken bare expression", `{"code": ["len("]}`, "parameters.code[0]: expression {{ len( }}"},
		{"missing value", `{"code": ["$static.a ="]}`, "parameters.code[0]: missing value after ="},
		{"json in all-items mode", `{"code": ["$json.a = 1"]}`, `$json can be assigned only with "mode": "runOnceForEachItem"`},
		{"bad mode", `{"mode": "eachItem", "code": []}`, `parameters.mode: "eachItem" is not one of runOnceForAllItems, runOnceForEachItem`},
		{"code not strings", `{"code": [1]}`, "parameters.code[0]: want a string, got number"},
		{"broken return", `{"return": {"a": "{{ ) }}"}}`, "parameters.return.a: expression"},
		{"junk after delete", `{"code": ["delete $static.a 1"]}`, `unexpected "1" after delete target`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := loadNodeErr(t, "code", tt.params); !strings.Contains(got, tt.want) {
				t.Fatalf("error:\n%s\nwant it to contain %q", got, tt.want)
			}
		})
	}
}

func TestCodeErrorPositionPointsIntoTheStatement(t *testing.T) {
	src := "{\"nodes\": [{\"name\": \"c\", \"type\": \"code\", \"parameters\": {\"code\": [\n  \"$static.a = 1 +* 2\"]}}]}"
	_, probs := (&engine.Loader{Registry: NewRegistry()}).Load("f.json", []byte(src))
	errs := probs.Errors()
	// Line 2: `  "$static.a = 1 +* 2"` — the '*' is column 19.
	if len(errs) != 1 || errs[0].Pos != (engine.Position{Line: 2, Col: 19}) {
		t.Fatalf("problems = %v", probs)
	}
}
