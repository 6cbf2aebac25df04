package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/flowd/flowd/engine"
)

// countRunsSQL counts a flow's runs, and those of them with either of two statuses, with ids
// from a floor on: args are the two statuses, the flow and the floor.
const countRunsSQL = `SELECT count(*), coalesce(sum(status IN (?, ?)), 0) FROM runs WHERE flow_id = ? AND id >= ?`

// CountRuns counts the flow's runs started since the given time. Run ids sort by start time,
// so one scan of the covering index runs_flow (flow_id, id, status) gives both counts.
func (s *SQLite) CountRuns(ctx context.Context, flowID string, since time.Time) (engine.RunCounts, error) {
	var c engine.RunCounts
	if err := s.r.QueryRowContext(ctx, countRunsSQL, string(engine.StatusError), string(engine.StatusCrashed), flowID, engine.FirstRunIDAt(since)).Scan(&c.Total, &c.Failed); err != nil {
		return c, fmt.Errorf("count runs of %s: %w", flowID, err)
	}
	return c, nil
}
