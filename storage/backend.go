package storage

import (
	"context"
	"log/slog"
	"time"

	"github.com/flowd/flowd/engine"
)

// Backend is a whole store as flowd serve uses it: *SQLite, or storage/postgres's Store for
// several flowd processes sharing one database. The conformance suite in storage/storagetest
// holds every implementation to the contracts *SQLite documents on each method.
type Backend interface {
	engine.Store
	engine.RunQueuer
	engine.RunReader
	engine.RunCounter

	// Static returns the flow's static data without versions; ResetStatic deletes it all.
	Static(ctx context.Context, flowID string) (map[string]any, error)
	ResetStatic(ctx context.Context, flowID string) error
	// EachStatic and RewriteStatic read and rewrite every stored static value (SealedStore).
	EachStatic(ctx context.Context, fn func(flowID, key string, value any) error) error
	RewriteStatic(ctx context.Context, fn func(flowID, key string, value any) (any, bool, error)) (int, error)

	ScheduleState(ctx context.Context, flowID, trigger string) (ScheduleState, bool, error)
	SaveScheduleState(ctx context.Context, flowID, trigger string, st ScheduleState) error

	// MarkCrashed ends the runs left running by processes that are gone; see each backend.
	MarkCrashed(ctx context.Context, at time.Time) (int, error)
	Prune(ctx context.Context, r Retention, now time.Time) (PruneResult, error)
	StartPruning(r Retention, interval time.Duration, logger *slog.Logger) error

	// Ping checks that the store answers and takes writes.
	Ping(ctx context.Context) error
	Close() error
}

var _ Backend = (*SQLite)(nil)
