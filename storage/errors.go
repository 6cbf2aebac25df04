package storage

import "errors"

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrNotFound means the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrSchemaTooNew means the database was migrated by a newer flowd than this one; opening
	// it could misread or damage data, so Open refuses.
	ErrSchemaTooNew = errors.New("database schema is newer than this flowd")
)
