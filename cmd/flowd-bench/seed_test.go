package main

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/nodes"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/web"
)

func tokenFlowSource(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "flows", "token-refresh.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteFlowsLoadAsOneSet(t *testing.T) {
	dir := t.TempDir()
	list, err := writeFlows(dir, 40, tokenFlowSource(t))
	if err != nil {
		t.Fatal(err)
	}
	flows, probs := (&engine.Loader{Registry: nodes.NewRegistry()}).LoadDir(dir)
	if errs := probs.Errors(); len(errs) > 0 {
		t.Fatalf("generated flows do not load:\n%v", errs)
	}
	if len(flows) != 40 || len(list) != 40 {
		t.Fatalf("loaded %d flows, listed %d, want 40", len(flows), len(list))
	}
	// One route table: no two flows claim a webhook path.
	if _, err := web.NewFlowSet(flows); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, f := range list {
		ids[f.ID] = true
	}
	for _, f := range flows {
		if !ids[f.ID] {
			t.Errorf("flow %s loaded but not listed", f.ID)
		}
	}
	if !ids[tokenFlowID] {
		t.Error("the token flow is not among them")
	}

	if _, err := writeFlows(t.TempDir(), 0, tokenFlowSource(t)); err == nil {
		t.Error("0 flows: no error")
	}
}

func TestSeedRuns(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "flowd.db")
	s, err := storage.Open(ctx, db) // creates and migrates, as flowd does
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	flows := []seedFlow{{"a", "A"}, {"b", "B"}, {"c", "C"}}
	const n, deep = 3000, 2700
	cursor, err := seedRuns(ctx, db, n, flows, deep)
	if err != nil {
		t.Fatal(err)
	}

	s, err = storage.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	newest, err := s.ListRuns(ctx, engine.RunFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range newest {
		if r.FinishedAt.Before(r.StartedAt) || r.Status == engine.StatusRunning || (i > 0 && r.ID >= newest[i-1].ID) {
			t.Fatalf("run %d: %+v", i, r)
		}
	}
	// deep runs are newer than the cursor, so n-1-deep are older.
	older, err := s.ListRuns(ctx, engine.RunFilter{Before: cursor, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(older) != n-1-deep {
		t.Errorf("%d runs before the cursor, want %d", len(older), n-1-deep)
	}
	for _, f := range flows {
		runs, err := s.ListRuns(ctx, engine.RunFilter{FlowID: f.ID, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) < n/len(flows)/2 || runs[0].FlowName != f.Name {
			t.Errorf("flow %s: %d runs, first %+v", f.ID, len(runs), runs[0])
		}
	}
	failed, err := s.ListRuns(ctx, engine.RunFilter{Status: "error", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) == 0 || len(failed) > n/10 || failed[0].Error == "" {
		t.Errorf("%d failed runs of %d, first %+v", len(failed), n, failed)
	}
	s.Close()

	bytes, runs, err := dbStats(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if runs != n || bytes <= 0 {
		t.Errorf("dbStats: %d runs in %d bytes, want %d runs", runs, bytes, n)
	}
}

func TestSeedRunsRefusesAnUnknownSchema(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, schema, want string }{
		{"no runs table", `CREATE TABLE other (x INTEGER)`, "no runs table"},
		{"unknown required column", `CREATE TABLE runs (id TEXT PRIMARY KEY, flow_id TEXT NOT NULL, status TEXT NOT NULL, started_at INTEGER NOT NULL, shard INTEGER NOT NULL)`, `required column "shard"`},
		{"no started_at", `CREATE TABLE runs (id TEXT PRIMARY KEY, flow_id TEXT NOT NULL, status TEXT NOT NULL, began INTEGER)`, `no "started_at" column`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.db")
			dsn, err := sqliteDSN(path, url.Values{})
			if err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("sqlite3", dsn)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(tc.schema); err != nil {
				t.Fatal(err)
			}
			db.Close()
			_, err = seedRuns(ctx, path, 10, []seedFlow{{"a", "A"}}, 5)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %s", err, tc.want)
			}
		})
	}
	if _, err := seedRuns(ctx, filepath.Join(t.TempDir(), "x.db"), 10, []seedFlow{{"a", "A"}}, 10); err == nil {
		t.Error("a cursor as deep as all runs: no error")
	}
}
