package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// loadRun reads a run record as the API printed it: testdata/token-run.json is a steady-state
// run of flows/token-refresh.json through its webhook (token still valid, four nodes);
// testdata/token-refresh-run.json is the first run, which fetched and stored a token.
func loadRun(t testing.TB, name string) *engine.Run {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var r engine.Run
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers in items as the engine has them: int64 when whole
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// Items as the executor has them: numbers int64 when whole, and an item that a node
	// passes on is the same map in the next node's input, not a copy.
	first := map[string]engine.Item{}
	share := func(items []engine.Item) {
		engine.PlainNumbers(items)
		for i, item := range items {
			b, err := encodeJSON(item)
			if err != nil {
				t.Fatal(err)
			}
			if m, ok := first[string(b)]; ok {
				items[i] = m
			} else {
				first[string(b)] = item
			}
		}
	}
	for _, nr := range r.Nodes {
		share(nr.Input)
		for _, p := range nr.Output {
			share(p)
		}
		for i := range nr.Static {
			nr.Static[i].Before = engine.PlainNumbers(nr.Static[i].Before)
			nr.Static[i].After = engine.PlainNumbers(nr.Static[i].After)
		}
	}
	return &r
}

// recordCopies stores n copies of tmpl as the executor would, from workers goroutines at
// once: CreateRun, then FinishRun. Each copy has a new id and start time.
func recordCopies(t testing.TB, s *SQLite, tmpl *engine.Run, n, workers int) {
	t.Helper()
	ctx := context.Background()
	ids := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range ids {
				start := tmpl.StartedAt.Add(time.Duration(i) * time.Millisecond)
				r := *tmpl
				r.ID = engine.NewRunID(start)
				r.StartedAt = start
				r.FinishedAt = start.Add(tmpl.FinishedAt.Sub(tmpl.StartedAt))
				r.Status, r.Nodes = engine.StatusRunning, nil
				started := r
				started.FinishedAt = time.Time{}
				if err := s.CreateRun(ctx, &started); err != nil {
					t.Error(err)
					continue // keep taking ids, so that the sender is not stuck
				}
				r.Status, r.Nodes = tmpl.Status, tmpl.Nodes
				if err := s.FinishRun(ctx, &r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range n {
		ids <- i
	}
	close(ids)
	wg.Wait()
}

// fileBytes checkpoints the WAL into the database file and returns the file's size.
func fileBytes(t testing.TB, s *SQLite) int64 {
	t.Helper()
	// A checkpoint the background checkpointer is running makes this one answer busy
	// without checkpointing: ask again until it is done.
	for deadline := time.Now().Add(30 * time.Second); ; {
		var busy, log, done int64
		if err := s.w.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &done); err != nil {
			t.Fatal(err)
		}
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the WAL could not be checkpointed for 30 s")
		}
		time.Sleep(time.Millisecond) // polling the checkpoint's outcome
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// maxBytesPerRun is the budget of database bytes per recorded steady-state token-flow run
// (issue 5 asks for at most 2 KB; this keeps a margin).
const maxBytesPerRun = 2048

func TestBytesPerTokenRun(t *testing.T) {
	tmpl := loadRun(t, "token-run.json")
	for _, workers := range []int{1, 64} {
		s := openTest(t)
		const n = 1000
		recordCopies(t, s, tmpl, n, workers)
		per := fileBytes(t, s) / n
		t.Logf("%d workers: %d bytes per run", workers, per)
		if per > maxBytesPerRun {
			t.Errorf("%d workers: %d bytes per token-flow run, budget %d", workers, per, maxBytesPerRun)
		}
	}
	// For the record: the run that refreshes the token (8 node executions, 3 static writes).
	s := openTest(t)
	recordCopies(t, s, loadRun(t, "token-refresh-run.json"), 1000, 64)
	t.Logf("refreshing run: %d bytes per run", fileBytes(t, s)/1000)
}
