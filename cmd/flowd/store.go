package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/storage/postgres"
)

// The store is chosen by --db (or FLOWD_DB): a postgres:// or postgresql:// URL selects
// PostgreSQL, which several flowd instances may share; anything else is the path of a SQLite
// file, which one flowd owns.

// isPostgres tells whether db names a PostgreSQL database rather than a SQLite file.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// openBackend opens the store db names, for the instance with the given id (only PostgreSQL
// records it, on the runs the instance starts). It returns the store and a description of it
// for logs: the file's path, or the database without its password.
func openBackend(ctx context.Context, db, instanceID string) (storage.Backend, string, error) {
	if isPostgres(db) {
		s, err := postgres.Open(ctx, db, postgres.Options{InstanceID: instanceID})
		if err != nil {
			return nil, "", err
		}
		return s, s.String(), nil
	}
	s, err := storage.Open(ctx, db)
	if err != nil {
		return nil, "", err
	}
	return s, s.Path(), nil
}

// newInstanceID names this process among the flowd instances sharing a store: host, pid and
// a random part, since a pid is reused after a restart and hosts may share names.
func newInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// errBackupPostgres says what to do instead of flowd backup with a PostgreSQL database.
const errBackupPostgres = "backup copies a SQLite file; %s is a PostgreSQL database: back it up with pg_dump (e.g. pg_dump --format=custom --file=flowd.dump '<url>') or your provider's snapshots"
