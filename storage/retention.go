package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Retention says which finished runs to keep; a zero field sets no limit. Runs still running
// are always kept, and count towards MaxRunsPerFlow.
type Retention struct {
	// MaxAge deletes the runs that started longer ago than this. Run ids sort by start time
	// (engine.NewRunID), which is how old runs are found.
	MaxAge time.Duration
	// MaxRunsPerFlow keeps only the newest this many runs of each flow.
	MaxRunsPerFlow int
}

// Validate reports a negative limit.
func (r Retention) Validate() error {
	if r.MaxAge < 0 {
		return fmt.Errorf("retention: max age %s is negative", r.MaxAge)
	}
	if r.MaxRunsPerFlow < 0 {
		return fmt.Errorf("retention: max runs per flow %d is negative", r.MaxRunsPerFlow)
	}
	return nil
}

// PruneResult is what one pass of Prune did.
type PruneResult struct {
	ByAge, ByCount int   // runs deleted for their age, and beyond a flow's count
	FreedBytes     int64 // bytes given back to the file system
}

const (
	// pruneBatch is the most runs one delete transaction removes, so that the run writer,
	// which waits for the write connection meanwhile, is held up for a few milliseconds only.
	pruneBatch = 500
	// vacuumPages is the most free pages one incremental_vacuum transaction releases (4 MiB
	// of 4 KiB pages), for the same reason.
	vacuumPages = 1024
)

// Prune deletes the finished runs that r does not keep as of now, with their node
// executions, in transactions of at most pruneBatch runs, then gives the freed pages back to
// the file system, so that the database file shrinks. It returns what it did so far also when
// it fails or ctx ends.
func (s *SQLite) Prune(ctx context.Context, r Retention, now time.Time) (PruneResult, error) {
	var res PruneResult
	if err := r.Validate(); err != nil {
		return res, err
	}
	var err error
	if r.MaxAge > 0 {
		cutoff := now.Add(-r.MaxAge)
		res.ByAge, err = s.deleteRuns(ctx, oldRunsSQL, idAt(cutoff), cutoff.UnixMicro())
		if err != nil {
			return res, fmt.Errorf("prune runs older than %s: %w", r.MaxAge, err)
		}
	}
	if r.MaxRunsPerFlow > 0 {
		res.ByCount, err = s.pruneByCount(ctx, r.MaxRunsPerFlow)
		if err != nil {
			return res, fmt.Errorf("prune runs beyond %d per flow: %w", r.MaxRunsPerFlow, err)
		}
	}
	if res.ByAge+res.ByCount > 0 {
		res.FreedBytes, err = s.vacuum(ctx)
		if err != nil {
			return res, fmt.Errorf("prune runs: vacuum: %w", err)
		}
	}
	return res, nil
}

// The queries of pruning; each selects through an index (see TestQueryPlans).
const (
	// oldRunsSQL selects finished runs started before a time: the id a run started then
	// would have, and the time. started_at guards against ids that are not ULIDs.
	oldRunsSQL = `
SELECT id FROM runs
WHERE id < ? AND started_at < ? AND status != 'running'
ORDER BY id LIMIT ?`
	// oldestKeptSQL is the id of a flow's n+1-th newest run (OFFSET n).
	oldestKeptSQL = `SELECT id FROM runs WHERE flow_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?`
	// flowRunsBeforeSQL selects a flow's finished runs older than a run.
	flowRunsBeforeSQL = `
SELECT id FROM runs
WHERE flow_id = ? AND id < ? AND status != 'running'
ORDER BY id LIMIT ?`
	// flowIDsSQL lists the flows that have runs with one index lookup per flow, where
	// SELECT DISTINCT would read every run.
	flowIDsSQL = `
WITH RECURSIVE f (id) AS (
	SELECT MIN(flow_id) FROM runs
	UNION ALL
	SELECT (SELECT MIN(flow_id) FROM runs WHERE flow_id > f.id) FROM f WHERE f.id IS NOT NULL
)
SELECT id FROM f WHERE id IS NOT NULL`
)

// pruneByCount deletes each flow's finished runs older than its keep-th newest run.
func (s *SQLite) pruneByCount(ctx context.Context, keep int) (int, error) {
	flows, err := s.flowIDs(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, flow := range flows {
		var oldestKept string
		err := s.r.QueryRowContext(ctx, oldestKeptSQL, flow, keep-1).Scan(&oldestKept)
		if errors.Is(err, sql.ErrNoRows) {
			continue // no more than keep runs
		}
		if err != nil {
			return total, fmt.Errorf("flow %s: %w", flow, err)
		}
		n, err := s.deleteRuns(ctx, flowRunsBeforeSQL, flow, oldestKept)
		total += n
		if err != nil {
			return total, fmt.Errorf("flow %s: %w", flow, err)
		}
	}
	return total, nil
}

// flowIDs lists the flows that have runs.
func (s *SQLite) flowIDs(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, flowIDsSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// deleteRuns deletes the runs that query selects — its last parameter is the batch size — a
// batch per transaction, until a batch comes up short. It returns how many it deleted.
func (s *SQLite) deleteRuns(ctx context.Context, query string, args ...any) (int, error) {
	args = append(args, pruneBatch)
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		res, err := s.w.ExecContext(ctx, `DELETE FROM runs WHERE id IN (`+query+`)`, args...)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += int(n)
		if n < pruneBatch {
			return total, nil
		}
	}
}

// vacuum gives the database's free pages back to the file system, at most vacuumPages per
// transaction, then checkpoints the WAL so that the file itself shrinks. It returns the bytes
// released.
func (s *SQLite) vacuum(ctx context.Context) (int64, error) {
	var pageSize int64
	if err := s.w.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return 0, err
	}
	var freed int64
	for {
		var free int64
		if err := s.w.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
			return freed * pageSize, err
		}
		if free == 0 {
			break
		}
		if err := drain(s.w.QueryContext(ctx, fmt.Sprintf("PRAGMA incremental_vacuum(%d)", min(free, vacuumPages)))); err != nil {
			return freed * pageSize, err
		}
		var left int64
		if err := s.w.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&left); err != nil {
			return freed * pageSize, err
		}
		freed += free - left
		if left >= free {
			break // auto_vacuum is off in this file: nothing to release
		}
	}
	_, err := s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	return freed * pageSize, err
}

// idAt is the smallest run id (ULID layout, engine.NewRunID) of a run started at t or later.
func idAt(t time.Time) string {
	var id [26]byte
	ms := uint64(max(t.UnixMilli(), 0))
	// 26 characters of 5 bits hold 130 bits: 2 zero bits and 48 of time in the first 10.
	for i := 9; i >= 0; i-- {
		id[i] = crockford[ms&31]
		ms >>= 5
	}
	for i := 10; i < len(id); i++ {
		id[i] = '0'
	}
	return string(id[:])
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Pruner runs a store's pruning in the background: at most one, stopped by Stop. The zero
// value is ready to use. Stores embed one to implement StartPruning.
type Pruner struct {
	mu      sync.Mutex
	cancel  context.CancelFunc // nil: not started
	done    chan struct{}
	stopped bool
}

// PruneFunc is one pass of a store's Prune.
type PruneFunc func(ctx context.Context, r Retention, now time.Time) (PruneResult, error)

// StartPruning prunes the runs r does not keep (see Prune) in the background: at once, then
// every interval until Close, logging what each pass deleted. It does nothing when r sets no
// limit. It fails for an invalid r or interval, when pruning was started already, and after
// Close.
func (s *SQLite) StartPruning(r Retention, interval time.Duration, logger *slog.Logger) error {
	return s.pruner.Start(r, interval, logger, s.Prune)
}

// Start calls prune with r at once, then every interval until Stop, logging what each pass
// deleted. It does nothing when r sets no limit. It fails for an invalid r or interval, when
// pruning was started already, and after Stop.
func (p *Pruner) Start(r Retention, interval time.Duration, logger *slog.Logger, prune PruneFunc) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if interval <= 0 {
		return fmt.Errorf("retention: pruning interval %s is not positive", interval)
	}
	if r.MaxAge == 0 && r.MaxRunsPerFlow == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.stopped:
		return ErrClosed
	case p.cancel != nil:
		return errors.New("retention: pruning is running already")
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		pruneEvery(ctx, prune, r, interval, logger)
	}()
	return nil
}

func pruneEvery(ctx context.Context, prune PruneFunc, r Retention, interval time.Duration, logger *slog.Logger) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		res, err := prune(ctx, r, start)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			logger.Warn("pruning runs", "error", err, "deletedByAge", res.ByAge, "deletedByCount", res.ByCount)
		} else if res.ByAge+res.ByCount > 0 {
			logger.Info("pruned runs", "deletedByAge", res.ByAge, "deletedByCount", res.ByCount,
				"freedBytes", res.FreedBytes, "took", time.Since(start).Round(time.Millisecond))
		}
		timer.Reset(interval)
	}
}

// Stop ends background pruning and waits for it; pruning cannot start after.
func (p *Pruner) Stop() {
	p.mu.Lock()
	p.stopped = true
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
