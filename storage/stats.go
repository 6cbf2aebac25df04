package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/flowd/flowd/engine"
)

// CountRuns counts the flow's runs started since the given time. Run ids sort by start time,
// so both counts are range scans of an index on (flow_id, …, id).
func (s *SQLite) CountRuns(ctx context.Context, flowID string, since time.Time) (engine.RunCounts, error) {
	var c engine.RunCounts
	floor := engine.FirstRunIDAt(since)
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM runs WHERE flow_id = ? AND id >= ?`,
		flowID, floor).Scan(&c.Total); err != nil {
		return c, fmt.Errorf("count runs of %s: %w", flowID, err)
	}
	if c.Total == 0 {
		return c, nil
	}
	if err := s.r.QueryRowContext(ctx, `
SELECT (SELECT count(*) FROM runs WHERE flow_id = ? AND status = ? AND id >= ?)
     + (SELECT count(*) FROM runs WHERE flow_id = ? AND status = ? AND id >= ?)`,
		flowID, string(engine.StatusError), floor, flowID, string(engine.StatusCrashed), floor).Scan(&c.Failed); err != nil {
		return c, fmt.Errorf("count failed runs of %s: %w", flowID, err)
	}
	return c, nil
}
