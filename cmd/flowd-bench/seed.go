package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver

	"github.com/flowd/flowd/engine"
)

// tokenFlowID and tokenWebhook are the shipped token flow's id and webhook path.
const (
	tokenFlowID  = "token-refresh"
	tokenWebhook = "/webhook/token-refresh"
)

// seedFlow names a flow for the runs seeded into the database.
type seedFlow struct{ ID, Name string }

// writeFlows fills dir with the token flow (tokenFlow, the file's bytes) and n-1 generated
// flows, each with its own webhook path, and returns all n. The generated flows are small
// and real — a lastNode webhook, a code node with expressions, a noOp — and every other one
// has a path parameter, so the router holds literal and parameter routes.
func writeFlows(dir string, n int, tokenFlow []byte) ([]seedFlow, error) {
	if n < 1 {
		return nil, fmt.Errorf("write flows: %d flows, want at least 1 (the token flow)", n)
	}
	if err := os.WriteFile(filepath.Join(dir, tokenFlowID+".json"), tokenFlow, 0o644); err != nil {
		return nil, fmt.Errorf("write flows: %w", err)
	}
	flows := []seedFlow{{tokenFlowID, "Access token management with static data"}}
	for i := 1; i < n; i++ {
		id := fmt.Sprintf("bench-%04d", i)
		path := fmt.Sprintf("bench/%04d", i)
		if i%2 == 0 {
			path += "/:id"
		}
		src := fmt.Sprintf(`{
  "id": %q,
  "name": "bench flow %d",
  "nodes": [
    {"name": "Webhook", "type": "webhook", "parameters": {"path": %q, "httpMethod": "POST", "responseMode": "lastNode"}},
    {"name": "Answer", "type": "code", "parameters": {"return": {"flow": "{{ $flow.id }}", "id": "{{ $json.params.id ?? '' }}", "at": "{{ $now.toISO() }}"}}},
    {"name": "Done", "type": "noOp"}
  ],
  "connections": {"Webhook": ["Answer"], "Answer": ["Done"]}
}
`, id, i, path)
		if err := os.WriteFile(filepath.Join(dir, id+".json"), []byte(src), 0o644); err != nil {
			return nil, fmt.Errorf("write flows: %w", err)
		}
		flows = append(flows, seedFlow{id, fmt.Sprintf("bench flow %d", i)})
	}
	return flows, nil
}

// sqliteDSN is a file: URI for the database at path with go-sqlite3's _options in query.
func sqliteDSN(path string, query url.Values) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: "file", Path: abs, RawQuery: query.Encode()}).String(), nil
}

// runsColumns are the runs table's columns this tool knows how to fill, from
// storage/migrations.go. Others are left to their defaults.
var runsColumns = []string{"id", "flow_id", "flow_name", "flow_version", "trigger", "mode",
	"status", "started_at", "finished_at", "error", "error_node"}

// seedRuns inserts n finished runs of flows straight into the runs table of the flowd
// database at path — which flowd must have created, and must not have open — in one
// transaction with one prepared statement. Their ids are in flowd's ULID layout, one per
// millisecond, ending a second before now, so runs flowd records later sort after them; 2%
// are errors and 0.1% canceled, spread over flows at random (fixed seed). It returns the id
// of the run deep places from the newest, as a cursor for a deep page.
//
// Only the runs table is filled — the list API and page read nothing else. When a newer
// schema has a required column this tool does not know, it fails saying so.
func seedRuns(ctx context.Context, path string, n int, flows []seedFlow, deep int) (cursor string, err error) {
	if n < 1 || len(flows) == 0 || deep < 0 || deep >= n {
		return "", fmt.Errorf("seed runs: bad request: %d runs, %d flows, cursor %d deep", n, len(flows), deep)
	}
	dsn, err := sqliteDSN(path, url.Values{"_busy_timeout": {"5000"}, "_txlock": {"immediate"}, "mode": {"rw"}})
	if err != nil {
		return "", fmt.Errorf("seed runs: %w", err)
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return "", fmt.Errorf("seed runs: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// Speed over durability for a throw-away benchmark database: no journal (the pages are
	// written once, not to the WAL and then again), so a crash mid-seed loses it. flowd puts
	// it back in WAL mode when it opens it.
	for _, p := range []string{"PRAGMA journal_mode = OFF", "PRAGMA synchronous = OFF", "PRAGMA cache_size = -262144"} {
		if _, err := db.ExecContext(ctx, p); err != nil {
			return "", fmt.Errorf("seed runs: %s: %w", p, err)
		}
	}
	cols, err := insertableColumns(ctx, db)
	if err != nil {
		return "", fmt.Errorf("seed runs: %w", err)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("seed runs: %w", err)
	}
	defer tx.Rollback()
	// Indexes are dropped and made again after the inserts: building one from a full table
	// is many times faster than keeping it up to date row by row.
	indexes, err := dropIndexes(ctx, tx)
	if err != nil {
		return "", fmt.Errorf("seed runs: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO runs (%s) VALUES (%s)",
		strings.Join(cols, ", "), strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")))
	if err != nil {
		return "", fmt.Errorf("seed runs: %w", err)
	}
	defer stmt.Close()

	rng := rand.New(rand.NewPCG(5, 1_000_000))
	first := time.Now().Add(-time.Second - time.Duration(n)*time.Millisecond)
	args := make([]any, len(cols))
	for i := range n {
		if i%10_000 == 0 && ctx.Err() != nil {
			return "", ctx.Err()
		}
		started := first.Add(time.Duration(i) * time.Millisecond)
		id := engine.NewRunID(started)
		if i == n-1-deep {
			cursor = id
		}
		f := flows[rng.IntN(len(flows))]
		status, errMsg, errNode := "success", "", ""
		switch r := rng.IntN(1000); {
		case r < 20:
			status, errNode = "error", "get new accessToken"
			errMsg = `node "get new accessToken" (httpRequest): POST http://127.0.0.1:9/token: status 503`
		case r < 21:
			status, errMsg = "canceled", "run canceled: flowd is shutting down"
		}
		for j, c := range cols {
			switch c {
			case "id":
				args[j] = id
			case "flow_id":
				args[j] = f.ID
			case "flow_name":
				args[j] = f.Name
			case "flow_version":
				args[j] = "5eed00000000"
			case "trigger":
				args[j] = "Webhook"
			case "mode":
				args[j] = "webhook"
			case "status":
				args[j] = status
			case "started_at":
				args[j] = started.UnixMicro()
			case "finished_at":
				args[j] = started.Add(2 * time.Millisecond).UnixMicro()
			case "error":
				args[j] = errMsg
			case "error_node":
				args[j] = errNode
			}
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return "", fmt.Errorf("seed runs: insert run %d: %w", i, err)
		}
	}
	for _, ddl := range indexes {
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return "", fmt.Errorf("seed runs: %s: %w", ddl, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("seed runs: commit: %w", err)
	}
	return cursor, nil
}

// dropIndexes drops the runs table's own indexes (not the primary key's) and returns the
// statements that make them again.
func dropIndexes(ctx context.Context, tx *sql.Tx) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs' AND sql IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("list the runs table's indexes: %w", err)
	}
	var names, ddl []string
	for rows.Next() {
		var name, stmt string
		if err := rows.Scan(&name, &stmt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list the runs table's indexes: %w", err)
		}
		names, ddl = append(names, name), append(ddl, stmt)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the runs table's indexes: %w", err)
	}
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, `DROP INDEX "`+strings.ReplaceAll(name, `"`, `""`)+`"`); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", name, err)
		}
	}
	return ddl, nil
}

// insertableColumns returns the known runs columns the table has. It fails when the table
// is missing, lacks a column a run cannot do without, or has a required column without a
// default that this tool does not know.
func insertableColumns(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, "PRAGMA table_info(runs)")
	if err != nil {
		return nil, fmt.Errorf("read the runs table's columns: %w", err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var (
			cid, notNull, pk int
			name, typ        string
			dflt             sql.NullString
		)
		if err := rows.Scan(&cid, &name, &typ, &notNull, &dflt, &pk); err != nil {
			return nil, fmt.Errorf("read the runs table's columns: %w", err)
		}
		switch {
		case slices.Contains(runsColumns, name):
			cols = append(cols, name)
		case notNull == 1 && !dflt.Valid:
			return nil, fmt.Errorf("the runs table has a required column %q this tool does not fill: teach cmd/flowd-bench/seed.go the new schema (storage/migrations.go)", name)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the runs table's columns: %w", err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("no runs table: has flowd created this database?")
	}
	for _, need := range []string{"id", "flow_id", "status", "started_at"} {
		if !slices.Contains(cols, need) {
			return nil, fmt.Errorf("the runs table has no %q column: teach cmd/flowd-bench/seed.go the new schema (storage/migrations.go)", need)
		}
	}
	return cols, nil
}

// dbStats returns the bytes the database at path takes on disk (the file and its WAL) and
// how many runs it holds. flowd must have stopped.
func dbStats(ctx context.Context, path string) (bytes, runs int64, err error) {
	for _, p := range []string{path, path + "-wal"} {
		st, err := os.Stat(p)
		if err == nil {
			bytes += st.Size()
		} else if !os.IsNotExist(err) {
			return 0, 0, fmt.Errorf("database size: %w", err)
		}
	}
	dsn, err := sqliteDSN(path, url.Values{"mode": {"ro"}, "_busy_timeout": {"5000"}})
	if err != nil {
		return 0, 0, fmt.Errorf("count runs: %w", err)
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return 0, 0, fmt.Errorf("count runs: %w", err)
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM runs").Scan(&runs); err != nil {
		return 0, 0, fmt.Errorf("count runs in %s: %w", path, err)
	}
	return bytes, runs, nil
}
