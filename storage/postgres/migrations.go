package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flowd/flowd/storage"
)

// migrations is the schema's history: migrations[i] takes the database to version i+1. The
// list is append-only — a released migration is never edited, reordered or removed.
//
// Times are unix microseconds in bigint columns, as in the SQLite schema, so that both stores
// keep them exactly alike. Ids and flow ids sort bytewise (COLLATE "C") whatever the
// database's locale: run ids are ULIDs whose order is their start time.
var migrations = []string{
	// v1: runs with their node executions, static data, schedule state, and what several
	// instances share: their heartbeats, leases and the schedule ticks they claimed.
	`
CREATE TABLE runs (
	id           text COLLATE "C" PRIMARY KEY,
	flow_id      text COLLATE "C" NOT NULL,
	flow_name    text NOT NULL DEFAULT '',
	flow_version text NOT NULL DEFAULT '',
	trigger      text NOT NULL DEFAULT '',
	mode         text NOT NULL DEFAULT '',
	status       text NOT NULL,
	started_at   bigint NOT NULL,
	finished_at  bigint,          -- NULL while running
	error        text NOT NULL DEFAULT '',
	error_node   text NOT NULL DEFAULT '',
	instance_id  text NOT NULL DEFAULT '', -- the instance that started the run
	nodes        text             -- storage's run document (storage.EncodeRunNodes); NULL: none
);
CREATE INDEX runs_flow ON runs (flow_id, id, status);
CREATE INDEX runs_status ON runs (status, id);
CREATE INDEX runs_flow_status ON runs (flow_id, status, id);
CREATE INDEX runs_running ON runs (instance_id) WHERE status = 'running';

-- A row whose value is NULL is a deleted key, kept so that the key's version keeps growing.
CREATE TABLE static_data (
	flow_id    text COLLATE "C" NOT NULL,
	key        text COLLATE "C" NOT NULL,
	value      text,             -- JSON (storage.EncodeValue)
	version    bigint NOT NULL,
	updated_at bigint NOT NULL,
	PRIMARY KEY (flow_id, key)
);

CREATE TABLE schedule_state (
	flow_id    text NOT NULL,
	trigger    text NOT NULL,
	spec       text NOT NULL,
	last_fire  bigint,
	next_fire  bigint,
	updated_at bigint NOT NULL,
	PRIMARY KEY (flow_id, trigger)
);

CREATE TABLE instances (
	id         text PRIMARY KEY,
	host       text NOT NULL,
	pid        integer NOT NULL,
	started_at bigint NOT NULL,
	seen_at    bigint NOT NULL,
	expires    bigint NOT NULL,
	flows      jsonb NOT NULL    -- flow id → version
);

CREATE TABLE leases (
	name    text PRIMARY KEY,
	holder  text NOT NULL,
	expires bigint NOT NULL
);

CREATE TABLE ticks (
	flow_id    text NOT NULL,
	trigger    text NOT NULL,
	tick       bigint NOT NULL,
	holder     text NOT NULL,
	PRIMARY KEY (flow_id, trigger, tick)
);
CREATE INDEX ticks_tick ON ticks (tick);
`,
}

// Advisory lock classes: the first key of the two-key advisory locks flowd takes, so that
// they never meet the one-key locks of Lock or each other.
const (
	lockClassMigrate int32 = 0x666c6f00 + iota // "flo\0"
	lockClassStatic
)

// migrate brings the database up to the newest schema this binary knows, one transaction per
// migration. Each takes an advisory lock first and re-reads the version, so processes opening
// one new database at once apply every migration exactly once.
func migrate(ctx context.Context, db *pgxpool.Pool) error {
	for {
		done, err := migrateOne(ctx, db)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// migrateOne applies the next pending migration; done reports that none was pending.
func migrateOne(ctx context.Context, db *pgxpool.Pool) (done bool, err error) {
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockClassMigrate); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	applied_at bigint NOT NULL
)`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
			return err
		}
		if have > len(migrations) {
			return fmt.Errorf("%w: database is at v%d, this binary knows up to v%d", storage.ErrSchemaTooNew, have, len(migrations))
		}
		if have == len(migrations) {
			done = true
			return nil
		}
		if _, err := tx.Exec(ctx, migrations[have]); err != nil {
			return fmt.Errorf("v%d: %w", have+1, err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
			have+1, time.Now().UnixMicro())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	return done, nil
}
