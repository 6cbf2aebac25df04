package engine

import (
	"encoding/json"
	"math"
	"testing"
)

func TestAppendStringIsEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "<&> stay", "tab\tnew\nline\rret", "\x00\x01\x1f\x7f",
		"ü 🙂 日本", "\u2028\u2029", "bad \xff utf-8 \xc3", "\xed\xa0\x80 surrogate",
	} {
		want, err := MarshalJSON(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("AppendJSONString(%q) = %s, want %s", s, got[1:], want)
		}
	}
}

func TestAppendValueIsEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, false, "s", int64(0), int64(-7), int64(math.MaxInt64), int64(math.MinInt64), 3,
		0.0, math.Copysign(0, -1), 1.5, -0.25, 1e20, 1e21, 1e-6, 1e-7, 123456789.125, 1e300, -2.5e-300,
		math.SmallestNonzeroFloat64, math.MaxFloat64,
		map[string]any{}, []any{}, map[string]any{"b": int64(1), "a": []any{"x", nil, map[string]any{"z": 1.25, "é": true}}},
		map[string]any{"<&>": "\u2028", "": ""}, json.Number("123456789012345678901234567890"),
		[]Item{{"typed": "slice"}}, float32(1.5), uint8(7),
	}
	for _, v := range values {
		want, err := MarshalJSON(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendJSON(nil, v)
		if err != nil || string(got) != string(want) {
			t.Errorf("AppendJSON(%#v) = %s, %v; want %s", v, got, err, want)
		}
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), map[string]any{"x": math.Inf(-1)}, []any{func() {}}} {
		if got, err := AppendJSON(nil, bad); err == nil {
			t.Errorf("AppendJSON(%#v) = %s, want an error", bad, got)
		}
	}
}
