package storage

import (
	"errors"

	"github.com/flowd/flowd/engine"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrNotFound means the requested record does not exist. It is engine.ErrNotFound, so
	// callers that know only the engine can test for it.
	ErrNotFound = engine.ErrNotFound
	// ErrSchemaTooNew means the database was migrated by a newer flowd than this one; opening
	// it could misread or damage data, so Open refuses.
	ErrSchemaTooNew = errors.New("database schema is newer than this flowd")
	// ErrClosed means the store was closed before the write was queued.
	ErrClosed = errors.New("store is closed")
)
