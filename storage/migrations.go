package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations is the schema's history: migrations[i] takes the database to version i+1. The
// list is append-only — a released migration is never edited, reordered or removed; a change
// to the schema is a new entry at the end.
var migrations = []string{
	// v1: runs, node executions, static data.
	`
CREATE TABLE runs (
	id           TEXT PRIMARY KEY, -- ULID layout: sorts by start time
	flow_id      TEXT NOT NULL,
	flow_name    TEXT NOT NULL DEFAULT '',
	flow_version TEXT NOT NULL DEFAULT '',
	trigger      TEXT NOT NULL DEFAULT '',
	mode         TEXT NOT NULL DEFAULT '',
	status       TEXT NOT NULL,
	started_at   INTEGER NOT NULL, -- unix microseconds
	finished_at  INTEGER,          -- unix microseconds; NULL while running
	error        TEXT NOT NULL DEFAULT '',
	error_node   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_flow ON runs (flow_id, id DESC);
CREATE INDEX runs_status ON runs (status, id DESC);

CREATE TABLE node_runs (
	run_id        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	seq           INTEGER NOT NULL,
	node          TEXT NOT NULL,
	type          TEXT NOT NULL,
	status        TEXT NOT NULL,
	started_at    INTEGER NOT NULL, -- unix microseconds
	duration_us   INTEGER NOT NULL,
	tries         INTEGER NOT NULL,
	input_count   INTEGER NOT NULL, -- real count, also when input is truncated
	output_counts TEXT NOT NULL,    -- JSON array of real counts per port
	ports         TEXT NOT NULL,    -- JSON array of port names
	input         BLOB,             -- JSON array of items; NULL for none
	output        BLOB,             -- JSON array per port of items; NULL for none
	truncated     INTEGER NOT NULL DEFAULT 0,
	error         TEXT NOT NULL DEFAULT '',
	static        TEXT,             -- JSON array of static-data changes; NULL for none
	PRIMARY KEY (run_id, seq)
);

-- A row whose value is NULL is a deleted key. It is kept so that the key's version keeps
-- growing: a node that read the old value must conflict with a re-created one.
CREATE TABLE static_data (
	flow_id    TEXT NOT NULL,
	key        TEXT NOT NULL,
	value      TEXT,             -- JSON
	version    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL, -- unix microseconds
	PRIMARY KEY (flow_id, key)
);
`,
	// v2: node executions repeated under a lock to check a decision again.
	`ALTER TABLE node_runs ADD COLUMN recheck INTEGER NOT NULL DEFAULT 0;`,
	// v3: schedule triggers' fire times, so a restart knows which ticks it missed.
	`
CREATE TABLE schedule_state (
	flow_id    TEXT NOT NULL,
	trigger    TEXT NOT NULL,
	spec       TEXT NOT NULL,    -- the schedule's definition, e.g. "cron:*/5 * * * *@UTC", "interval:30s"
	last_fire  INTEGER,          -- unix microseconds; NULL: none
	next_fire  INTEGER,          -- unix microseconds; NULL: none
	updated_at INTEGER NOT NULL, -- unix microseconds
	PRIMARY KEY (flow_id, trigger)
);
`,
	// v4: a run's node executions as one JSON document (run_nodes.go) in place of a row per
	// execution, so that repeated payloads are stored once; v3 rows are converted as they
	// are, without references. Indexes that match ListRuns, per-flow counts and retention,
	// ascending so that runs started in order append to them.
	`
CREATE TABLE run_nodes (
	run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
	nodes  TEXT NOT NULL -- JSON array, one object per node execution; see run_nodes.go
);
INSERT INTO run_nodes (run_id, nodes)
SELECT n.run_id, json_group_array(json_object(
	'n', n.node, 'q', n.seq, 't', n.type, 's', n.status, 'a', n.started_at - r.started_at,
	'd', n.duration_us, 'c', n.tries,
	'i', json(CAST(n.input AS TEXT)), 'o', json(CAST(n.output AS TEXT)), 'p', json(n.ports),
	'ic', n.input_count, 'oc', json(n.output_counts),
	'x', json(CASE WHEN n.truncated THEN 'true' ELSE 'false' END), 'e', n.error,
	'st', json(n.static), 'r', json(CASE WHEN n.recheck THEN 'true' ELSE 'false' END)
) ORDER BY n.seq)
FROM node_runs n JOIN runs r ON r.id = n.run_id
GROUP BY n.run_id;
DROP TABLE node_runs;

DROP INDEX runs_flow;
DROP INDEX runs_status;
CREATE INDEX runs_flow ON runs (flow_id, id, status);
CREATE INDEX runs_status ON runs (status, id);
CREATE INDEX runs_flow_status ON runs (flow_id, status, id);
`,
	// v5: fewer B-trees touched per run recorded, which was half the writer's cost under load.
	// The node executions move into the run's row (run_nodes was a table and its primary-key
	// index, 2 of the 7 B-trees a run was written to), and the indexes by status cover only
	// the runs not successful: the few that a status filter looks for (every other one is
	// found by scanning runs newest first), and that a run leaves when it succeeds.
	`
ALTER TABLE runs ADD COLUMN nodes TEXT; -- JSON array, one object per node execution; see run_nodes.go
UPDATE runs SET nodes = (SELECT nodes FROM run_nodes WHERE run_nodes.run_id = runs.id);
DROP TABLE run_nodes;

DROP INDEX runs_status;
DROP INDEX runs_flow_status;
CREATE INDEX runs_status ON runs (status, id) WHERE status <> 'success';
CREATE INDEX runs_flow_status ON runs (flow_id, status, id) WHERE status <> 'success';
`,
}

// migrate brings the database up to the newest schema this binary knows, one transaction per
// migration. Each transaction re-reads the version, so two processes opening one new file at
// once apply every migration exactly once.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at INTEGER NOT NULL -- unix microseconds
)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	have, err := schemaVersion(ctx, db)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("migrate: %w: database is at v%d, this binary knows up to v%d", ErrSchemaTooNew, have, len(migrations))
	}
	for i := have; i < len(migrations); i++ {
		if err := applyMigration(ctx, db, i+1, migrations[i]); err != nil {
			return fmt.Errorf("migrate v%d: %w", i+1, err)
		}
	}
	return nil
}

func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

func applyMigration(ctx context.Context, db *sql.DB, version int, script string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	have, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if have >= version {
		return nil // applied by another process meanwhile
	}
	if _, err := tx.ExecContext(ctx, script); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		version, time.Now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}
