// Package postgres keeps what happens in flowd — runs, static data, schedule state — in a
// PostgreSQL database that several flowd processes share, and coordinates those processes:
// heartbeats, leases, schedule tick claims (engine.Coordinator) and flow locks held as
// advisory locks (engine.Locker). It stores the same documents as package storage, in the
// same encodings; docs/storage.md describes both backends.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

var (
	_ storage.Backend    = (*Store)(nil)
	_ engine.Coordinator = (*Store)(nil)
	_ engine.Locker      = (*Store)(nil)
)

// Options configures a Store.
type Options struct {
	// InstanceID names the flowd process using the store: every run it creates is stamped
	// with it, so that RecoverRuns can tell whose runs died with their process. "" is allowed
	// for a process that is not part of a cluster (its runs are recovered by anyone).
	InstanceID string
	// MaxConns bounds the connections for queries and writes; 0: the DSN's pool_max_conns,
	// else 16.
	MaxConns int32
	// MaxLockConns bounds the connections that hold flow locks (Lock), a pool of their own so
	// that held locks never starve the queries run under them; 0: 32.
	MaxLockConns int32
}

// Store is flowd's store on PostgreSQL. It implements storage.Backend, engine.Coordinator
// and engine.Locker, and is safe for concurrent use by many goroutines and many processes.
// Every read goes to the database: nothing is cached, so what one process commits the
// others see at once.
type Store struct {
	db       *pgxpool.Pool
	locks    *pgxpool.Pool // connections holding advisory locks
	instance string
	local    engine.LocalLocker
	pruner   storage.Pruner
	desc     string

	closeOnce sync.Once
}

// Open connects to the database at dsn (a postgres:// URL or key=value string), applies
// pending migrations and returns the store. It fails when the database was migrated by a
// newer flowd (storage.ErrSchemaTooNew). The caller must Close the store.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	s, err := open(ctx, dsn, opts)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", Redact(dsn), err)
	}
	return s, nil
}

func open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !strings.Contains(dsn, "pool_max_conns"):
		cfg.MaxConns = 16
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "flowd"
	lcfg := cfg.Copy()
	lcfg.MaxConns = 32
	if opts.MaxLockConns > 0 {
		lcfg.MaxConns = opts.MaxLockConns
	}
	lcfg.MinConns = 0

	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	locks, err := pgxpool.NewWithConfig(ctx, lcfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, locks: locks, instance: opts.InstanceID, desc: Redact(dsn)}, nil
}

// Redact is dsn without its password, for logs and errors.
func Redact(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "postgres (unparsable DSN)"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// String names the database, without the password.
func (s *Store) String() string { return s.desc }

// InstanceID is the instance the store stamps the runs it creates with.
func (s *Store) InstanceID() string { return s.instance }

// Ping checks that the database answers and takes writes: a read-only server (a standby, or
// one out of disk) fails with an error wrapping engine.ErrStoreUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	var readOnly string
	if err := s.db.QueryRow(ctx, `SHOW transaction_read_only`).Scan(&readOnly); err != nil {
		return fmt.Errorf("ping store %s: %w", s.desc, unavailable(err))
	}
	if readOnly == "on" {
		return fmt.Errorf("ping store %s: %w: the server is read-only", s.desc, engine.ErrStoreUnavailable)
	}
	return nil
}

// Close stops pruning and closes every connection, waiting for queries in progress and for
// held locks' connections to be given back. Use of the store after Close fails.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.pruner.Stop()
		s.locks.Close()
		s.db.Close()
	})
	return nil
}

// unavailable wraps err in engine.ErrStoreUnavailable when it says the database cannot be
// reached or written at all — so that flowd answers 503 rather than 500 — and returns other
// errors as they are.
func unavailable(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),  // insufficient resources: disk full, too many connections
			strings.HasPrefix(pe.Code, "57P"), // shutting down
			pe.Code == "25006":                // read-only transaction
			return fmt.Errorf("%w: %w", engine.ErrStoreUnavailable, err)
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) {
		return fmt.Errorf("%w: %w", engine.ErrStoreUnavailable, err)
	}
	return err
}
