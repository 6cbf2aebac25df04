package storage

import (
	"bytes"
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/flowd/flowd/engine"
)

// createV3 makes a database as flowd left it at schema v3, holding runs: a row per node
// execution in node_runs, JSON columns as v3 wrote them.
func createV3(t *testing.T, path string, runs []*engine.Run) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite3", dsn(path, url.Values{
		"_journal_mode": {"WAL"}, "_foreign_keys": {"on"}, "_txlock": {"immediate"}, "_auto_vacuum": {"incremental"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for v := 1; v <= 3; v++ {
		if err := applyMigration(ctx, db, v, migrations[v-1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range runs {
		if _, err := db.ExecContext(ctx, `
INSERT INTO runs (id, flow_id, flow_name, flow_version, trigger, mode, status, started_at,
	finished_at, error, error_node)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.FlowID, r.FlowName, r.FlowVersion, r.Trigger,
			r.Mode, string(r.Status), r.StartedAt.UnixMicro(), micros(r.FinishedAt), r.Error, r.ErrorNode); err != nil {
			t.Fatal(err)
		}
		for _, nr := range r.Nodes {
			if _, err := db.ExecContext(ctx, `
INSERT INTO node_runs (run_id, seq, node, type, status, started_at, duration_us, tries,
	input_count, output_counts, ports, input, output, truncated, error, static, recheck)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, v3NodeArgs(t, r.ID, &nr)...); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// v3NodeArgs encodes a node execution as v3's FinishRun did.
func v3NodeArgs(t *testing.T, runID string, nr *engine.NodeRun) []any {
	t.Helper()
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var input, output, static []byte
	truncated := nr.Truncated
	if nr.Input != nil {
		b, _, cut, err := encodeItems(nil, nr.Input, MaxPayloadBytes)
		input, truncated = must(b, err), truncated || cut
	}
	if nr.Output != nil {
		ports, _, cut, err := encodePorts(nil, nr.Output, MaxPayloadBytes)
		must(nil, err)
		for i, p := range ports {
			if p == nil {
				ports[i] = []byte("null")
			}
		}
		output = append(append([]byte{'['}, bytes.Join(ports, []byte{','})...), ']')
		truncated = truncated || cut
	}
	if len(nr.Static) > 0 {
		static = must(encodeJSON(nr.Static))
	}
	return []any{runID, nr.Seq, nr.Node, nr.Type, string(nr.Status), nr.StartedAt.UnixMicro(),
		nr.DurationMicros, nr.Tries, nr.InputCount, must(encodeJSON(orEmpty(nr.OutputCounts))),
		must(encodeJSON(orEmpty(nr.Ports))), input, output, truncated, nr.Error, static, nr.Recheck}
}

// orEmpty is s, or an empty slice for nil, so that it encodes as [] rather than null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func TestMigrateV3Runs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "flowd.db")
	var runs []*engine.Run
	for _, r := range nodeShapes(t) {
		runs = append(runs, r)
	}
	runs = append(runs, testRun("still-running", "f", 0))
	createV3(t, path, runs)

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range runs {
		got, err := s.GetRun(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if w := normalized(want); !reflect.DeepEqual(got, w) {
			t.Errorf("run %s after migration:\ngot  %+v\nwant %+v", want.ID, got, w)
		}
	}
	if n := countRows(t, s, `SELECT count(*) FROM sqlite_schema WHERE name = 'node_runs'`); n != 0 {
		t.Error("node_runs still exists")
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	// Migrated runs are finished like any other, and no table of node records is left.
	if err := s.FinishRun(ctx, finished(testRun("still-running", "f", 0))); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, `SELECT count(*) FROM sqlite_master WHERE name IN ('node_runs', 'run_nodes')`); n != 0 {
		t.Errorf("%d tables of node records left after the migrations", n)
	}
}
