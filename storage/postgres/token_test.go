package postgres_test

// The shipped token flow on real stores, with the real node types: what recording a run
// costs on each backend. (The burst across instances is cmd/flowd's burst_test.go.)

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/storage/postgres/pgtest"
)

func tokenFlow(t testing.TB) *engine.Flow {
	t.Helper()
	flow, probs := (&engine.Loader{Registry: nodes.NewRegistry()}).LoadFile(filepath.Join("..", "..", "flows", "token-refresh.json"))
	if flow == nil {
		t.Fatal(probs)
	}
	return flow
}

// tokenEndpoint counts token requests; each answers a new token after delay.
func tokenEndpoint(t testing.TB, delay time.Duration) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		time.Sleep(delay) // the endpoint's own latency, not synchronisation
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token": "tok-%d", "expires_in": 3600}`, n)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// BenchmarkTokenFlowRun is one whole run of the shipped token flow in steady state (the token
// is valid: read static data, decide, end), recorded on each backend: start and finish of the
// run with four node records. The -parallel cases run 16 at once on one store. The PostgreSQL
// server is pgtest's: local unix socket, fsync off — a lower bound for a real server.
func BenchmarkTokenFlowRun(b *testing.B) {
	flow := tokenFlow(b)
	srv, hits := tokenEndpoint(b, 0)
	sqlite := func(b *testing.B) engine.Store {
		s, err := storage.Open(context.Background(), filepath.Join(b.TempDir(), "flowd.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	pg := func(b *testing.B) engine.Store { return openStore(b, pgtest.NewDatabase(b), "bench") }
	for _, bc := range []struct {
		name     string
		parallel bool
		store    func(b *testing.B) engine.Store
	}{
		{"sqlite", false, sqlite},
		{"postgres", false, pg},
		{"sqlite-parallel", true, sqlite},
		{"postgres-parallel", true, pg},
	} {
		b.Run(bc.name, func(b *testing.B) {
			x := &engine.Executor{Store: bc.store(b), Logger: slog.New(slog.DiscardHandler),
				Env: map[string]string{"TOKEN_URL": srv.URL}}
			run := func() error {
				r, err := x.Run(context.Background(), flow, engine.RunRequest{Mode: "webhook"})
				if err == nil && r.Status != engine.StatusSuccess {
					err = fmt.Errorf("run %s: %s", r.Status, r.Error)
				}
				return err
			}
			if err := run(); err != nil { // fetches the token
				b.Fatal(err)
			}
			before := hits.Load()
			b.ReportAllocs()
			if bc.parallel {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := run(); err != nil {
							b.Error(err)
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
			if hits.Load() != before {
				b.Fatal("token requests in steady state")
			}
		})
	}
}
