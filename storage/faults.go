package storage

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/mattn/go-sqlite3"

	"github.com/flowd/flowd/engine"
)

// A store that cannot write at all — a full disk, a read-only or vanished file — is told
// apart from a problem with one record: its errors wrap engine.ErrStoreUnavailable, so that
// flowd answers 503 and callers send again later, and Ping reports it until a write succeeds.

// applicationID marks the database file as flowd's (PRAGMA application_id, "flow"); Ping
// writes it to find out whether the file takes writes again.
const applicationID = 0x666C6F77

// faults remembers the last write error that made the store unavailable.
type faults struct{ last atomic.Pointer[error] }

// noteWrite classifies the outcome of a write: nil clears a remembered fault; an error that
// means the database cannot be written is remembered and returned wrapping
// engine.ErrStoreUnavailable; any other error is returned as it is.
func (s *SQLite) noteWrite(err error) error {
	if err == nil {
		if s.faults.last.Load() != nil {
			s.faults.last.Store(nil)
		}
		return nil
	}
	if !cannotWrite(err) {
		return err
	}
	// A new variable: storing the address of the parameter would move every call's err to
	// the heap, also the nil of every successful write.
	unavailable := fmt.Errorf("%w: %w", engine.ErrStoreUnavailable, err)
	s.faults.last.Store(&unavailable)
	return unavailable
}

// cannotWrite reports whether err is SQLite saying the database takes no writes at all.
func cannotWrite(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrFull, sqlite3.ErrReadonly, sqlite3.ErrIoErr, sqlite3.ErrCantOpen, sqlite3.ErrPerm:
		return true
	}
	return false
}

// writeProbe checks that the database file takes a write again after a fault: it rewrites
// the header's application id, a write that needs no schema and changes nothing else.
func (s *SQLite) writeProbe(ctx context.Context) error {
	_, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID))
	return s.noteWrite(err)
}
