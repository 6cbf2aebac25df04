package engine

import (
	"context"
	"testing"
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
// a pass-through, recorded in an in-memory store.
func BenchmarkRunThreeNodes(b *testing.B) {
	f := mustLoad(b, `{"nodes": [{"name": "t", "type": "trigger"},
		{"name": "e", "type": "emit", "parameters": {"items": [{"greeting": "hi {{ $json.name }}"}]}},
		{"name": "p", "type": "pass"}], "connections": {"t": ["e"], "e": ["p"]}}`)
	x := &Executor{Store: newMemStore(), Logger: quiet}
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
