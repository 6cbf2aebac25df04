package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/storage/postgres"
	"github.com/flowd/flowd/storage/postgres/pgtest"
)

// TestTokenFlowBurstRefreshesOnce runs the shipped token flow 50 times at once on an expired
// token, in one process with the real nodes and a real SQLite file, as flowd serve will: the
// token endpoint must see exactly one request and every run must end with that one token —
// also when the endpoint takes 200 ms. Repeated to catch the race it guards against. On
// PostgreSQL the runs are spread over three executors, each with a store of its own as its
// Locker, as three flowd instances on one database are.
func TestTokenFlowBurstRefreshesOnce(t *testing.T) {
	flow, probs := (&engine.Loader{Registry: nodes.NewRegistry()}).LoadFile(filepath.Join(repoRoot(t), "flows", "token-refresh.json"))
	if flow == nil {
		t.Fatal(probs)
	}
	for _, tc := range []struct {
		name  string
		delay time.Duration
		execs func(t *testing.T, env map[string]string) []*engine.Executor
	}{
		{"sqlite", 0, sqliteExecutor},
		{"sqlite endpoint delay 200ms", 200 * time.Millisecond, sqliteExecutor},
		{"postgres 3 instances endpoint delay 200ms", 200 * time.Millisecond, postgresExecutors},
	} {
		delay := tc.delay
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := hits.Add(1)
				time.Sleep(delay) // the endpoint's own latency, not synchronisation
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"access_token": "tok-%d", "expires_in": 3600}`, n)
			}))
			defer srv.Close()
			execs := tc.execs(t, map[string]string{"TOKEN_URL": srv.URL})

			const rounds, burst = 10, 50
			for round := range rounds {
				// Expire the token: the first round starts with none, later ones with a stale one.
				if round > 0 {
					if err := execs[0].Store.CommitStatic(context.Background(), &engine.StaticCommit{FlowID: flow.ID,
						Changes: []engine.StaticChange{{Key: "refreshAt", After: "2000-01-01T00:00:00.000Z"}}}); err != nil {
						t.Fatal(err)
					}
				}
				before := hits.Load()
				tokens := make([]any, burst)
				var wg sync.WaitGroup
				for i := range burst {
					wg.Go(func() {
						r, err := execs[i%len(execs)].Run(context.Background(), flow, engine.RunRequest{Mode: "webhook"})
						if err != nil || r.Status != engine.StatusSuccess {
							t.Errorf("run: %v %+v", err, r)
							return
						}
						last := r.Nodes[len(r.Nodes)-1]
						tokens[i] = last.Output[0][0]["accessToken"]
					})
				}
				wg.Wait()
				if got := hits.Load() - before; got != 1 {
					t.Fatalf("round %d: %d requests to the token endpoint, want 1", round, got)
				}
				want := fmt.Sprintf("tok-%d", hits.Load())
				for i, tok := range tokens {
					if tok != want {
						t.Fatalf("round %d: run %d ended with token %v, want %s", round, i, tok, want)
					}
				}
			}
		})
	}
}

func sqliteExecutor(t *testing.T, env map[string]string) []*engine.Executor {
	store, err := storage.Open(context.Background(), filepath.Join(t.TempDir(), "flowd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return []*engine.Executor{{Store: store, Logger: slog.New(slog.DiscardHandler), Env: env}}
}

func postgresExecutors(t *testing.T, env map[string]string) []*engine.Executor {
	dsn := pgtest.NewDatabase(t)
	var execs []*engine.Executor
	for i := range 3 {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{InstanceID: fmt.Sprint("i", i)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		execs = append(execs, &engine.Executor{Store: s, Locker: s, Logger: slog.New(slog.DiscardHandler), Env: env})
	}
	return execs
}
