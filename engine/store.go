package engine

import (
	"context"
	"time"
)

// RunFilter selects runs to list. Empty fields do not filter.
type RunFilter struct {
	FlowID string
	Status string
	// Before is a cursor: only runs whose id sorts before it (older runs) are listed. Pass the
	// last id of one page to get the next.
	Before string
	// Limit is the most runs returned: 50 when zero or less, at most 1000.
	Limit int
}

// RunReader reads stored runs, for the API and the UI.
type RunReader interface {
	// GetRun returns a run with its node executions; an error wrapping ErrNotFound when
	// there is no such run.
	GetRun(ctx context.Context, id string) (*Run, error)
	// ListRuns returns matching runs, newest first, without node executions.
	ListRuns(ctx context.Context, f RunFilter) ([]Run, error)
}

// The engine's needs from storage, declared here so that storage depends on the engine and not
// the other way round. storage.SQLite satisfies all of them; tests may use small fakes.

// StaticStore keeps each flow's static data: a JSON object, stored key by key.
type StaticStore interface {
	// LoadStatic returns the latest committed value and version of every key of the flow's
	// static data; an empty map when the flow has none.
	LoadStatic(ctx context.Context, flowID string) (map[string]StaticValue, error)
	// CommitStatic applies c atomically and durably, or not at all. It returns an error
	// wrapping ErrStaticConflict when a key c read has changed since; it fills each change's
	// Before with the value it replaced.
	CommitStatic(ctx context.Context, c *StaticCommit) error
}

// RunRecorder stores run records.
type RunRecorder interface {
	// CreateRun stores a run that has just started (status running, no nodes yet).
	CreateRun(ctx context.Context, r *Run) error
	// FinishRun stores the run's final status, error, end time and node executions.
	FinishRun(ctx context.Context, r *Run) error
}

// RunQueuer is implemented by stores that can queue a run's start record without waiting for
// it. The executor uses it for runs nobody waits to see recorded (RunRequest.Started nil): the
// start record then shares a commit with the run's end when the run is quick. wait blocks
// until the record is committed and returns the outcome, the same each call. err is for a
// store that knows at once it cannot take the record (it is closed, or cannot write): then
// the run does not start. The store must write a run's records in the order they were
// queued, so a FinishRun after QueueCreateRun lands after it.
type RunQueuer interface {
	QueueCreateRun(ctx context.Context, r *Run) (wait func() error, err error)
}

// Store is everything the executor needs from storage.
type Store interface {
	StaticStore
	RunRecorder
}

// RunCounts counts a flow's runs over a period.
type RunCounts struct {
	Total int `json:"total"`
	// Failed counts the runs that ended in error or crashed.
	Failed int `json:"failed"`
}

// RunCounter counts runs, for overviews such as the UI's flows page.
type RunCounter interface {
	// CountRuns counts the flow's runs started since the given time.
	CountRuns(ctx context.Context, flowID string, since time.Time) (RunCounts, error)
}
