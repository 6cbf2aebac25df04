package engine

import (
	"strings"
	"testing"
	"time"
)

func testEnv() *Env {
	now := time.Date(2026, 11, 27, 10, 30, 0, 0, time.FixedZone("CET", 3600))
	return &Env{
		JSON:   Item{"name": "Ada", "n": int64(3), "ts": "2026-11-27T09:29:00Z", "nested": map[string]any{"k": "v"}},
		Input:  []Item{{"a": int64(1)}, {"a": int64(2)}},
		Node:   map[string]any{"Fetch": map[string]any{"json": Item{"token": "abc"}}},
		Static: map[string]any{"token": "T", "count": int64(7)},
		Now:    now,
		OSEnv:  map[string]any{"HOME": "/root"},
		Flow:   map[string]any{"id": "f1"},
		Run:    map[string]any{"id": "r1"},
		Vars:   map[string]any{},
	}
}

func TestTemplates(t *testing.T) {
	tests := []struct {
		src  string
		want any
	}{
		{"plain text", "plain text"},
		{"{{ $json.n }}", int64(3)},
		{"={{ $json.n + 1 }}", 4},
		{"n={{ $json.n }}", "n=3"},
		{"=https://x/{{ $json.n }}", "https://x/3"},
		{"=plain", "=plain"},
		{"{{ $json.name }} has {{ $json.n }} items", "Ada has 3 items"},
		{"{{ $json.missing }}", nil},
		{"{{ $json.missing.deeper.still ?? 'default' }}", "default"},
		{"{{ $now.Format('2006') }}", "2026"},
		{"[{{ $json.missing }}]", "[]"},
		{"{{ $json.nested }}", map[string]any{"k": "v"}},
		{"obj: {{ $json.nested }}", `obj: {"k":"v"}`},
		{"{{ $input.first().a }}-{{ $input.last().a }}-{{ len($input.all()) }}", "1-2-2"},
		{"{{ $node['Fetch'].json.token }}", "abc"},
		{"{{ $static.token }}/{{ $static.count }}", "T/7"},
		{"{{ $env.HOME }}", "/root"},
		{"{{ $env.NOPE ?? 'unset' }}", "unset"},
		{"{{ $flow.id }}:{{ $run.id }}", "f1:r1"},
		{"{{ $now.toISO() }}", "2026-11-27T10:30:00.000+01:00"},
		{"at {{ $now }}", "at 2026-11-27T10:30:00.000+01:00"},
		{"{{ $now.minus(1, 'minute').toISO() }}", "2026-11-27T10:29:00.000+01:00"},
		{"{{ $now.plus(2, 'hours').format('15:04') }}", "12:30"},
		{"{{ $now.plus('90s').toISO() }}", "2026-11-27T10:31:30.000+01:00"},
		{"{{ $now.minus(duration('1h')).toISO() }}", "2026-11-27T09:30:00.000+01:00"},
		{"{{ $now - duration('1m') > toDateTime($json.ts) }}", false},
		{"{{ $json.ts.toDateTime().isBefore($now) }}", true},
		{"{{ toDateTime('2026-11-27').toISO() }}", ""}, // zone-dependent; checked below
		{"{{ $now.diff(toDateTime($json.ts), 'minutes') }}", 1.0},
		{"{{ $now.startOf('day').toISO() }}", "2026-11-27T00:00:00.000+01:00"},
		{"{{ $now.endOf('month').toISO() }}", "2026-11-30T23:59:59.999+01:00"},
		{"{{ $now.startOf('week').toISO() }}", "2026-11-23T00:00:00.000+01:00"},
		{"{{ $now.plus(1, 'month').toISO() }}", "2026-12-27T10:30:00.000+01:00"},
		{"{{ $now.toMillis() }}", int64(1795771800000)},
		{"{{ fromMillis(0).toMillis() }}", int64(0)},
		{"{{ isEmpty($json.missing) && !isEmpty($json.name) }}", true},
		{"{{ upper($json.name) }}", "ADA"},
		{"{{ {a: {b: 1}}.a.b }}", int64(1)},
		{`x{{ "}}" + '{{' }}y`, "x}}{{y"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tp, err := CompileTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tp.Eval(testEnv())
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(tt.src, "toDateTime('2026-11-27')") {
				if !strings.HasPrefix(got.(string), "2026-11-27T00:00:00.000") {
					t.Errorf("got %v", got)
				}
				return
			}
			if FormatValue(got) != FormatValue(tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestTemplateCompileErrors(t *testing.T) {
	tests := []struct {
		src        string
		wantOffset int
		wantMsg    string
	}{
		{"a {{ 1 + }} b", 7, "unexpected token EOF"},
		{"{{ $json.a", 0, "unclosed {{"},
		{"x {{   }}", 2, "empty expression"},
		{"{{ nosuchfunc(1) }}", 3, "unknown name nosuchfunc"},
		{"={{ $json.a +* 2 }}", 13, "unexpected token Operator(\"*\")"},
		// $secrets names one secret, with a constant, so the loader knows every secret used.
		{"{{ toJSON($secrets) }}", 10, "$secrets can only be used as $secrets.NAME"},
		{"{{ $secrets[$json.name] }}", 3, "$secrets can only be used as $secrets.NAME"},
		{`{{ $secrets["a-b"] }}`, 12, `secret name "a-b"`},
		{`{{ "é" + $secrets.A + toJSON($secrets) }}`, 30, "$secrets can only be used"}, // byte offsets
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := CompileTemplate(tt.src)
			ee, ok := err.(*ExprError)
			if !ok {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if ee.Offset != tt.wantOffset || !strings.Contains(ee.Msg, tt.wantMsg) {
				t.Errorf("offset %d msg %q, want %d %q", ee.Offset, ee.Msg, tt.wantOffset, tt.wantMsg)
			}
		})
	}
}

func TestExprRuntimeErrorsAndLimits(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{"{{ fail('custom message') }}", "custom message"},
		{"{{ $now.minus(1, 'fortnight') }}", `unknown unit "fortnight"`},
		{"{{ toDateTime('not a date') }}", "the string 'not a date' can't be converted to a dateTime"},
		{"{{ 1..100000000 }}", "memory budget exceeded"},
		{"{{ map(1..2000, map(1..2000, #)) }}", "memory budget exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tp, err := CompileTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			_, err = tp.Eval(testEnv())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestStaticReadTracking(t *testing.T) {
	tests := []struct {
		src  string
		keys []string
		all  bool
	}{
		{"{{ $json.a }}", nil, false},
		{"{{ $static.a + $static['b'] }}", []string{"a", "b"}, false},
		{"{{ $static[$json.k] }}", nil, true},
		{"{{ keys($static) }}", nil, true},
		{"{{ $static.a ?? $static }}", []string{"a"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			tp := MustTemplate(tt.src)
			e := tp.Exprs()[0]
			got := map[string]bool{}
			for _, k := range e.staticKeys {
				got[k] = true
			}
			if len(got) != len(tt.keys) || e.staticAll != tt.all {
				t.Fatalf("keys %v all %v, want %v %v", e.staticKeys, e.staticAll, tt.keys, tt.all)
			}
			for _, k := range tt.keys {
				if !got[k] {
					t.Errorf("missing key %q", k)
				}
			}
		})
	}
}

func TestParseDateTime(t *testing.T) {
	utc := time.UTC
	want := time.Date(2026, 5, 1, 12, 0, 0, 0, utc)
	for _, s := range []string{
		"2026-05-01T12:00:00Z", "2026-05-01T14:00:00+02:00", "2026-05-01T12:00:00.000Z",
		"2026-05-01T12:00:00", "2026-05-01 12:00:00", "Fri, 01 May 2026 12:00:00 GMT",
		"20260501T1200",
	} {
		got, err := ParseDateTime(s, utc)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q → %v, %v", s, got, err)
		}
	}
	for _, bad := range []any{"", "tomorrow", int64(1700000000000), nil} {
		if _, err := ParseDateTime(bad, utc); err == nil {
			t.Errorf("%v parsed", bad)
		}
	}
}
