package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// TestKill9Under64Clients kills flowd with SIGKILL while 64 clients call the token flow's
// webhook, restarts it, and checks, round after round on the same database: every run whose
// webhook response was sent is stored, finished, exactly once; no run is left running (the
// restart marks them crashed); the database passes integrity_check. Each round also has a
// run of a slow flow in flight, waiting on a server that never answers, so every kill catches
// at least one run: the steady-state token runs are so quick that their start and end are
// usually committed together, and a kill rarely finds one of them started but not ended.
func TestKill9Under64Clients(t *testing.T) {
	const (
		rounds  = 8
		clients = 64
	)
	ts := newTokenServer(t, 3600)
	slowURL, arrived, _ := blockingServer(t)
	dir := flowsDir(t, map[string]string{"slow.json": slowFlow})
	db := filepath.Join(t.TempDir(), "flowd.db")
	env := []string{"TOKEN_URL=" + ts.URL, "SLOW_URL=" + slowURL}
	acked := map[string]bool{}
	crashed := 0

	for round := range rounds {
		s := startServe(t, dir, db, env)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
		var (
			mu      sync.Mutex
			ids     []string
			answers atomic.Int64
			wg      sync.WaitGroup
		)
		stop := make(chan struct{})
		for range clients {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					res, err := client.Post(s.url("/webhook/token-refresh"), "application/json", strings.NewReader(`{}`))
					if err != nil {
						continue // the server died under us: this request got no answer
					}
					res.Body.Close()
					if res.StatusCode == http.StatusOK {
						mu.Lock()
						ids = append(ids, res.Header.Get("X-Flowd-Run-Id"))
						mu.Unlock()
						answers.Add(1)
					}
				}
			})
		}
		go func() { _, _ = client.Post(s.url("/webhook/slow"), "application/json", nil) }()
		<-arrived // the slow run has started and is waiting
		// Kill once the server is busy: a few hundred runs answered in this round.
		deadline := time.Now().Add(20 * time.Second)
		for answers.Load() < 200 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		s.stop(syscall.SIGKILL)
		close(stop)
		wg.Wait()
		client.CloseIdleConnections()
		if len(ids) == 0 {
			t.Fatalf("round %d: no webhook answered before the kill", round)
		}
		for _, id := range ids {
			if id == "" || acked[id] {
				t.Fatalf("round %d: run id %q answered twice or missing", round, id)
			}
			acked[id] = true
		}

		// Restart: crashed runs are marked, and every answered run is there, finished.
		s = startServe(t, dir, db, env)
		store := openStore(t, db)
		ctx := context.Background()
		var stored []engine.Run
		for before := ""; ; {
			page, err := store.ListRuns(ctx, engine.RunFilter{Before: before, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, page...)
			if len(page) < 1000 {
				break
			}
			before = page[len(page)-1].ID
		}
		byID := map[string]engine.Run{}
		crashed = 0 // counted afresh over the whole database each round
		for _, r := range stored {
			if _, dup := byID[r.ID]; dup {
				t.Fatalf("round %d: run %s stored twice", round, r.ID)
			}
			byID[r.ID] = r
			switch r.Status {
			case engine.StatusRunning:
				t.Errorf("round %d: run %s still running after the restart", round, r.ID)
			case engine.StatusCrashed:
				crashed++
			}
		}
		for id := range acked {
			r, ok := byID[id]
			if !ok {
				t.Fatalf("round %d: run %s was answered but is not stored", round, id)
			}
			if r.Status != engine.StatusSuccess {
				t.Fatalf("round %d: answered run %s is stored as %s", round, id, r.Status)
			}
		}
		if err := store.IntegrityCheck(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		t.Logf("round %d: %d answered before the kill, %d runs stored in all, %d of them crashed", round, len(ids), len(stored), crashed)
		if code := s.stop(syscall.SIGTERM); code != 0 {
			t.Fatalf("round %d: exit %d after restart", round, code)
		}
	}
	if crashed < rounds {
		t.Errorf("%d runs crashed over %d kills, each with a slow run in flight", crashed, rounds)
	}
	if ts.hits.Load() != 1 {
		t.Errorf("%d token requests over %d restarts; the stored token should have been reused", ts.hits.Load(), rounds)
	}
}
