// Package storage keeps what happens in flowd — runs, node results and static data — in one
// SQLite file. Flow definitions live in flow files, not here.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver

	"github.com/flowd/flowd/engine"
)

var _ engine.Store = (*SQLite)(nil)

// stmtCacheSize is how many prepared statements each connection keeps for reuse, keyed by
// their SQL text: more than flowd has, so that every statement is prepared once.
const stmtCacheSize = 64

// walSizeLimit is the size the WAL file is cut back to after a checkpoint, when a large
// transaction (pruning, vacuuming) grew it.
const walSizeLimit = 16 << 20

// busyTimeoutMillis is how long a connection waits for another process's lock before it fails
// with "database is locked". Within one process writes never wait on each other in SQLite:
// they queue on the single write connection.
const busyTimeoutMillis = 5000

// SQLite is flowd's store: one SQLite database in WAL mode with one write connection and a
// small pool of read-only connections, so reads never wait for writes and writes never race
// each other for the lock. Run records go through a writer that commits them in batches
// (writer.go). It satisfies engine.Store and is safe for concurrent use; docs/storage.md
// describes the design.
//
// Durability: the database runs with synchronous=NORMAL. Every committed transaction survives
// a crash of the process (kill -9, panic, OOM kill). A power loss or OS crash can lose the
// transactions committed since the last WAL checkpoint — at most the last moments of
// activity — but never corrupts the database: it reopens at an earlier consistent state.
type SQLite struct {
	path string
	w    *sql.DB    // exactly one connection; every transaction on it is BEGIN IMMEDIATE
	r    *sql.DB    // query_only connections
	runs *runWrites // run writes prepared on w
	wr   *writer    // commits run records in batches on w
	// static caches flows' static data (static_cache.go).
	static staticCache
	ckpt   *checkpointer // checkpoints the WAL in the background (checkpoint.go)

	closeOnce sync.Once
	closeErr  error
	pruner    Pruner
	faults    faults // see faults.go
}

// Open opens the database at path, creating it and its parent directories when missing, and
// applies pending migrations. It fails when the database was written by a newer flowd (see
// ErrSchemaTooNew). The caller must Close the store.
func Open(ctx context.Context, path string) (*SQLite, error) {
	s, err := open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

func open(ctx context.Context, path string) (*SQLite, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, err
	}

	// auto_vacuum is applied when each connection opens, which is before migrations create the
	// first table; on an existing database it is a no-op.
	w, err := sql.Open("sqlite3", dsn(abs, url.Values{
		"_journal_mode":    {"WAL"},
		"_synchronous":     {"NORMAL"},
		"_busy_timeout":    {fmt.Sprint(busyTimeoutMillis)},
		"_foreign_keys":    {"on"},
		"_txlock":          {"immediate"},
		"_auto_vacuum":     {"incremental"},
		"_stmt_cache_size": {fmt.Sprint(stmtCacheSize)},
	}))
	if err != nil {
		return nil, err
	}
	oneConn(w)

	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, err
	}
	if mode != "wal" {
		w.Close()
		return nil, fmt.Errorf("journal mode is %q, want wal (is the file on a network file system?)", mode)
	}
	if _, err := w.ExecContext(ctx, fmt.Sprintf("PRAGMA journal_size_limit = %d", walSizeLimit)); err != nil {
		w.Close()
		return nil, err
	}
	if _, err := w.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", autoCheckpointPages)); err != nil {
		w.Close()
		return nil, err
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}

	// The database is in WAL mode now (a persistent setting), so readers need not set it.
	r, err := sql.Open("sqlite3", dsn(abs, url.Values{
		"_busy_timeout":    {fmt.Sprint(busyTimeoutMillis)},
		"_foreign_keys":    {"on"},
		"_query_only":      {"1"},
		"_stmt_cache_size": {fmt.Sprint(stmtCacheSize)},
	}))
	if err != nil {
		w.Close()
		return nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	ckpt, err := startCheckpointer(ctx, abs)
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	s := &SQLite{path: abs, w: w, r: r, ckpt: ckpt}
	s.runs = &runWrites{db: w, observe: s.static.observe}
	s.wr = newWriter(s.runs)
	return s, nil
}

// dsn builds a file: URI that go-sqlite3 reads its _options from and SQLite its path from, so
// that a path holding '?', '#' or '%' still names the right file.
func dsn(abs string, opts url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: opts.Encode()}
	return u.String()
}

// oneConn makes db a pool of one connection, kept open for the store's life: the write
// connection (one writer at a time, statements prepared on it) and the checkpointer's.
func oneConn(db *sql.DB) {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
}

// Path is the absolute path of the database file.
func (s *SQLite) Path() string { return s.path }

// Close stops the pruner, writes every run record still queued, releases the free pages
// left by deletions, checkpoints the WAL into the database file and closes both pools. It
// waits for queries in progress. Writes queued after Close fail with ErrClosed; other use of
// the store after Close fails. Calling Close again returns the first call's result.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		s.pruner.Stop()
		s.wr.close()
		ctx := context.Background()
		errS := s.runs.close(ctx)
		errK := s.ckpt.close()
		errR := s.r.Close()
		errV := drain(s.w.QueryContext(ctx, "PRAGMA incremental_vacuum"))
		_, errC := s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
		errW := s.w.Close()
		if err := errors.Join(errS, errK, errR, errV, errC, errW); err != nil {
			s.closeErr = fmt.Errorf("close store %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// drain reads every row of a statement that does its work one row at a time, as
// incremental_vacuum does (one freed page per row).
func drain(rows *sql.Rows, err error) error {
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return err
	}
	return rows.Close()
}
