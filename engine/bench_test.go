package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/flowd/flowd/engine/redact"
)

func BenchmarkTemplateEval(b *testing.B) {
	tp := MustTemplate("{{ $json.refreshAt != nil && toDateTime($json.refreshAt) > $now ? 'valid' : 'stale' }}")
	env := testEnv()
	env.JSON = Item{"refreshAt": "2030-01-01T00:00:00.000Z"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Eval(env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTemplateInterpolate(b *testing.B) {
	tp := MustTemplate("Bearer {{ $static.token }} for {{ $json.name }}")
	env := testEnv()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.EvalString(env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunThreeNodes is the executor's own cost per run: a trigger, an expression node and
// a pass-through, recorded in an in-memory store; "redacted" adds what redacting the record
// before it is stored costs, with ten secrets configured.
func BenchmarkRunThreeNodes(b *testing.B) {
	secrets := map[string]string{}
	for i := range 10 {
		secrets[fmt.Sprintf("SECRET_%d", i)] = fmt.Sprintf("secret-value-%d", i)
	}
	for _, bc := range []struct {
		name string
		red  *redact.Redactor
	}{{"plain", nil}, {"redacted", redact.New(nil, secrets)}} {
		b.Run(bc.name, func(b *testing.B) { benchmarkRunThreeNodes(b, bc.red) })
	}
}

func benchmarkRunThreeNodes(b *testing.B, red *redact.Redactor) {
	f := mustLoad(b, `{"nodes": [{"name": "t", "type": "trigger"},
		{"name": "e", "type": "emit", "parameters": {"items": [{"greeting": "hi {{ $json.name }}"}]}},
		{"name": "p", "type": "pass"}], "connections": {"t": ["e"], "e": ["p"]}}`)
	x := &Executor{Store: newMemStore(), Logger: quiet, Redactor: red}
	items := []Item{{"name": "Ada"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r, err := x.Run(ctx, f, RunRequest{Items: items})
		if err != nil || r.Status != StatusSuccess {
			b.Fatal(err, r.Error)
		}
	}
}
