package engine_test

// The token-flow benchmark needs the real node types (package nodes imports engine) and the
// real store, so it lives in the external test package; engine itself still imports neither.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
	"github.com/flowd/flowd/storage"
)

// webhookItem is what the webhook trigger hands the token flow for an empty POST.
var webhookItem = engine.Item{
	"headers": map[string]any{"host": "127.0.0.1:5678", "user-agent": "flowd-bench", "content-length": "0", "accept-encoding": "gzip"},
	"params":  map[string]any{},
	"query":   map[string]any{},
	"body":    map[string]any{},
}

// BenchmarkTokenFlowRun is one whole run of the shipped token flow in process, as a webhook
// starts it but without HTTP, in steady state: the token is valid, so the run reads static
// data, decides and ends without calling the token endpoint. "memory" is the engine and
// node cost alone; "sqlite" adds recording the run (start and finish, four node records) in
// a real SQLite file; "sqlite-parallel" runs 16 at once on the one store, as a loaded
// server does.
func BenchmarkTokenFlowRun(b *testing.B) {
	flow, probs := (&engine.Loader{Registry: nodes.NewRegistry()}).LoadFile(filepath.Join("..", "flows", "token-refresh.json"))
	if flow == nil {
		b.Fatal(probs)
	}
	var hits atomic.Int64
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token": "bench-token", "token_type": "Bearer", "expires_in": 86400}`)
	}))
	defer tokens.Close()

	for _, bc := range []struct {
		name     string
		parallel bool
		store    func(b *testing.B) engine.Store
	}{
		{"memory", false, func(*testing.B) engine.Store { return engine.NewMemStore() }},
		{"sqlite", false, openStore},
		{"sqlite-parallel", true, openStore},
	} {
		b.Run(bc.name, func(b *testing.B) {
			x := &engine.Executor{Store: bc.store(b), Logger: slog.New(slog.DiscardHandler),
				Env: map[string]string{"TOKEN_URL": tokens.URL, "CLIENT_ID": "bench", "CLIENT_SECRET": "secret"}}
			run := func() error {
				r, err := x.Run(context.Background(), flow, engine.RunRequest{Mode: "webhook", Items: []engine.Item{webhookItem}})
				if err == nil && r.Status != engine.StatusSuccess {
					err = fmt.Errorf("run %s: %s", r.Status, r.Error)
				}
				return err
			}
			before := hits.Load()
			if err := run(); err != nil { // fetches the token: the measured runs all find it valid
				b.Fatal(err)
			}
			if got := hits.Load() - before; got != 1 {
				b.Fatalf("priming run made %d token requests, want 1", got)
			}
			b.ReportAllocs()
			if bc.parallel {
				b.SetParallelism(8) // 8 per core: 16 runs in flight on 2 cores
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := run(); err != nil {
							b.Error(err) // Fatal is only for the benchmark's own goroutine
							return
						}
					}
				})
			} else {
				for b.Loop() {
					if err := run(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if got := hits.Load() - before; got != 1 {
				b.Fatalf("%d token requests in steady state, want none after the first", got-1)
			}
		})
	}
}

func openStore(b *testing.B) engine.Store {
	s, err := storage.Open(context.Background(), filepath.Join(b.TempDir(), "flowd.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
