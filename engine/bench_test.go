package engine

import (
	"context"
	"fmt"
	"strings"
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

// NewMemStore exports the in-memory fake store to this package's external benchmarks
// (bench_token_test.go), which need the real node types and so cannot be in package engine.
func NewMemStore() Store { return newMemStore() }

// BenchmarkExprEval is one compiled expression evaluated, for the kinds the token flow uses.
func BenchmarkExprEval(b *testing.B) {
	for _, bc := range []struct{ name, src string }{
		{"static field", "$static.token"},
		{"env with default", "$env.HOME ?? fail('HOME is not set')"},
		{"date compare", "toDateTime($json.ts) < $now"},
		{"date arithmetic", "$now.plus(3600 - min(10, 3600 / 10), 'seconds').toISO()"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e, err := CompileExpr(bc.src)
			if err != nil {
				b.Fatal(err)
			}
			env := testEnv()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Eval(env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNodeStep is the executor's cost of one node step — deliver the items, run the
// node, record its input and output — measured on a chain of pass-through nodes so that the
// run's own start and finish are spread over many steps. ns/node is the figure to read;
// nodes=1 shows the fixed cost of a run.
func BenchmarkNodeStep(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var src strings.Builder
			src.WriteString(`{"nodes": [{"name": "t", "type": "trigger"}`)
			for i := range n {
				fmt.Fprintf(&src, `, {"name": "p%d", "type": "pass"}`, i)
			}
			src.WriteString(`], "connections": {"t": ["p0"]`)
			for i := 1; i < n; i++ {
				fmt.Fprintf(&src, `, "p%d": ["p%d"]`, i-1, i)
			}
			src.WriteString(`}}`)
			f := mustLoad(b, src.String())
			x := &Executor{Store: newMemStore(), Logger: quiet}
			items := []Item{{"accessToken": "demo-Xp-g6deHi0Z3iNo6pCk6AiHSRLFOklWj", "refreshAt": "2030-01-01T00:00:00.000Z"}}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				r, err := x.Run(ctx, f, RunRequest{Items: items})
				if err != nil || r.Status != StatusSuccess || len(r.Nodes) != n+1 {
					b.Fatal(err, r.Error)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(n+1)), "ns/node")
		})
	}
}
