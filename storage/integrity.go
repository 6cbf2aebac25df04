package storage

import (
	"context"
	"fmt"
	"strings"
)

// IntegrityCheck runs SQLite's full integrity check and returns an error listing what it
// found, or nil when the database is sound.
func (s *SQLite) IntegrityCheck(ctx context.Context) error {
	rows, err := s.r.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("integrity check: %w", err)
		}
		if line != "ok" {
			found = append(found, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(found) > 0 {
		return fmt.Errorf("integrity check: %s", strings.Join(found, "; "))
	}
	return nil
}

// Ping checks that the database answers on the write connection, and, after a write failed
// because the database could not be written (see faults.go), that it takes writes again: the
// error wraps engine.ErrStoreUnavailable until one succeeds.
func (s *SQLite) Ping(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, "SELECT 1"); err != nil {
		return fmt.Errorf("ping store %s: %w", s.path, s.noteWrite(err))
	}
	if s.faults.last.Load() != nil {
		if err := s.writeProbe(ctx); err != nil {
			return fmt.Errorf("ping store %s: %w", s.path, err)
		}
	}
	return nil
}
