package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

// pruneBatch is the most runs one delete statement removes, to keep each transaction short.
const pruneBatch = 500

// Prune deletes the finished runs r does not keep as of now, in batches of pruneBatch, and
// returns what it did so far also when it fails. Space is reclaimed by PostgreSQL's
// autovacuum, so FreedBytes is 0. Several instances may prune at once: they delete the same
// runs, each once.
func (s *Store) Prune(ctx context.Context, r storage.Retention, now time.Time) (storage.PruneResult, error) {
	var res storage.PruneResult
	if err := r.Validate(); err != nil {
		return res, err
	}
	var err error
	if r.MaxAge > 0 {
		cutoff := now.Add(-r.MaxAge)
		res.ByAge, err = s.deleteRuns(ctx, `
SELECT id FROM runs WHERE id < $1 AND started_at < $2 AND status != 'running' ORDER BY id LIMIT $3`,
			engine.FirstRunIDAt(cutoff), cutoff.UnixMicro())
		if err != nil {
			return res, fmt.Errorf("prune runs older than %s: %w", r.MaxAge, unavailable(err))
		}
	}
	if r.MaxRunsPerFlow > 0 {
		res.ByCount, err = s.pruneByCount(ctx, r.MaxRunsPerFlow)
		if err != nil {
			return res, fmt.Errorf("prune runs beyond %d per flow: %w", r.MaxRunsPerFlow, unavailable(err))
		}
	}
	return res, nil
}

// pruneByCount deletes each flow's finished runs older than its keep-th newest run.
func (s *Store) pruneByCount(ctx context.Context, keep int) (int, error) {
	flows, err := s.flowIDs(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, flow := range flows {
		var oldestKept string
		err := s.db.QueryRow(ctx, `SELECT id FROM runs WHERE flow_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2`,
			flow, keep-1).Scan(&oldestKept)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // no more than keep runs
		}
		if err != nil {
			return total, fmt.Errorf("flow %s: %w", flow, err)
		}
		n, err := s.deleteRuns(ctx, `
SELECT id FROM runs WHERE flow_id = $1 AND id < $2 AND status != 'running' ORDER BY id LIMIT $3`,
			flow, oldestKept)
		total += n
		if err != nil {
			return total, fmt.Errorf("flow %s: %w", flow, err)
		}
	}
	return total, nil
}

// flowIDs lists the flows that have runs, one index lookup per flow.
func (s *Store) flowIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, `
WITH RECURSIVE f (id) AS (
	SELECT MIN(flow_id) FROM runs
	UNION ALL
	SELECT (SELECT MIN(flow_id) FROM runs WHERE flow_id > f.id) FROM f WHERE f.id IS NOT NULL
)
SELECT id FROM f WHERE id IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// deleteRuns deletes the runs query selects — its last parameter is the batch size — a batch
// per statement, until a batch comes up short. It returns how many it deleted.
func (s *Store) deleteRuns(ctx context.Context, query string, args ...any) (int, error) {
	args = append(args, pruneBatch)
	total := 0
	for {
		tag, err := s.db.Exec(ctx, `DELETE FROM runs WHERE id IN (`+query+`)`, args...)
		if err != nil {
			return total, err
		}
		n := int(tag.RowsAffected())
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

// StartPruning prunes the runs r does not keep in the background: at once, then every
// interval until Close (see storage.Pruner).
func (s *Store) StartPruning(r storage.Retention, interval time.Duration, logger *slog.Logger) error {
	return s.pruner.Start(r, interval, logger, s.Prune)
}
