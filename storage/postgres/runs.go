package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

// CreateRun stores a run that has just started, stamped with the store's instance id. Its
// nodes, if any, are not stored: FinishRun stores them. A run with the same id already stored
// is an error.
func (s *Store) CreateRun(ctx context.Context, r *engine.Run) error {
	if err := s.insertRun(ctx, r, nil); err != nil {
		return fmt.Errorf("create run %s: %w", r.ID, unavailable(err))
	}
	return nil
}

// QueueCreateRun is CreateRun done at once (engine.RunQueuer): the record is committed before
// it returns, so the run's FinishRun lands after it, and wait returns nil.
func (s *Store) QueueCreateRun(ctx context.Context, r *engine.Run) (wait func() error, err error) {
	if err := s.CreateRun(ctx, r); err != nil {
		return nil, err
	}
	return func() error { return nil }, nil
}

// insertRun stores r and announces it on runsChannel (notify.go), in one statement.
func (s *Store) insertRun(ctx context.Context, r *engine.Run, nodes []byte) error {
	_, err := s.db.Exec(ctx, notifySQL(`
INSERT INTO runs (id, flow_id, flow_name, flow_version, trigger, mode, status, started_at,
	finished_at, error, error_node, instance_id, nodes)
VALUES ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`),
		s.notice(r), r.ID, r.FlowID, r.FlowName, r.FlowVersion, r.Trigger, r.Mode, string(r.Status),
		r.StartedAt.UnixMicro(), micros(r.FinishedAt), r.Error, r.ErrorNode, s.instance, text(nodes))
	return err
}

// FinishRun stores the run's final status, end time and error, and all its node executions,
// and announces the end on runsChannel (notify.go), in one statement; node records stored by
// an earlier FinishRun are replaced. Payloads larger than storage.MaxPayloadBytes are
// truncated. It returns an error wrapping storage.ErrNotFound when the run was never created.
func (s *Store) FinishRun(ctx context.Context, r *engine.Run) error {
	nodes, err := storage.EncodeRunNodes(r)
	if err != nil {
		return fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	// The notice is selected for the updated row only: the tag counts the rows updated.
	tag, err := s.db.Exec(ctx, notifySQL(`
UPDATE runs SET status = $2, finished_at = $3, error = $4, error_node = $5, nodes = $6
WHERE id = $7 RETURNING id`), s.notice(r), string(r.Status), micros(r.FinishedAt), r.Error, r.ErrorNode, text(nodes), r.ID)
	if err != nil {
		return fmt.Errorf("finish run %s: %w", r.ID, unavailable(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("finish run %s: %w", r.ID, storage.ErrNotFound)
	}
	return nil
}

// InsertRuns stores runs in bulk, each as it is, in one transaction: all of them or none. It
// is for tools that fill a database; ctx is checked between runs.
func (s *Store) InsertRuns(ctx context.Context, runs []*engine.Run) error {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows := make([][]any, 0, len(runs))
		for _, r := range runs {
			nodes, err := storage.EncodeRunNodes(r)
			if err != nil {
				return fmt.Errorf("run %s: %w", r.ID, err)
			}
			rows = append(rows, []any{r.ID, r.FlowID, r.FlowName, r.FlowVersion, r.Trigger, r.Mode,
				string(r.Status), r.StartedAt.UnixMicro(), micros(r.FinishedAt), r.Error, r.ErrorNode,
				s.instance, text(nodes)})
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"runs"}, []string{"id", "flow_id", "flow_name",
			"flow_version", "trigger", "mode", "status", "started_at", "finished_at", "error",
			"error_node", "instance_id", "nodes"}, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return fmt.Errorf("insert %d runs: %w", len(runs), unavailable(err))
	}
	return nil
}

// GetRun returns the run with its node executions in execution order, payloads included. It
// returns an error wrapping storage.ErrNotFound when there is no such run.
func (s *Store) GetRun(ctx context.Context, id string) (*engine.Run, error) {
	var nodes []byte
	r, err := scanRun(s.db.QueryRow(ctx, `SELECT `+runColumns+`, nodes FROM runs WHERE id = $1`, id), &nodes)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("get run %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, unavailable(err))
	}
	if r.Nodes, err = storage.DecodeRunNodes(nodes, r.StartedAt); err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	return r, nil
}

// ListRuns returns the runs matching f, newest first, without their node executions (Nodes
// is nil).
func (s *Store) ListRuns(ctx context.Context, f engine.RunFilter) ([]engine.Run, error) {
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = 50
	case limit > 1000:
		limit = 1000
	}
	q := `SELECT ` + runColumns + ` FROM runs WHERE true`
	var args []any
	arg := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(" AND %s $%d", cond, len(args))
	}
	if f.FlowID != "" {
		arg("flow_id =", f.FlowID)
	}
	if f.Status != "" {
		arg("status =", f.Status)
	}
	if f.Before != "" {
		arg("id <", f.Before)
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))

	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", unavailable(err))
	}
	defer rows.Close()
	out := []engine.Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", unavailable(err))
	}
	return out, nil
}

// CountRuns counts the flow's runs started since the given time, and those of them that
// failed (error or crashed).
func (s *Store) CountRuns(ctx context.Context, flowID string, since time.Time) (engine.RunCounts, error) {
	var c engine.RunCounts
	err := s.db.QueryRow(ctx, `
SELECT count(*), count(*) FILTER (WHERE status IN ($1, $2)) FROM runs WHERE flow_id = $3 AND id >= $4`,
		string(engine.StatusError), string(engine.StatusCrashed), flowID, engine.FirstRunIDAt(since)).Scan(&c.Total, &c.Failed)
	if err != nil {
		return c, fmt.Errorf("count runs of %s: %w", flowID, unavailable(err))
	}
	return c, nil
}

// MarkCrashed ends, with status crashed and finished at at, every running run whose instance
// has no live heartbeat by the database's clock — all of them when no instance heartbeats —
// and returns how
// many it ended. A process calls it at start-up, as with SQLite; in a cluster the runs of
// live instances are left alone. It is RecoverRuns under storage.Backend's name.
func (s *Store) MarkCrashed(ctx context.Context, at time.Time) (int, error) {
	n, err := s.RecoverRuns(ctx, at)
	if err != nil {
		return 0, fmt.Errorf("mark crashed runs: %w", err)
	}
	return n, nil
}

const runColumns = `id, flow_id, flow_name, flow_version, trigger, mode, status, started_at,
	finished_at, error, error_node`

// scanRun reads the runColumns of row, then the columns of extra, if any.
func scanRun(row pgx.Row, extra ...any) (*engine.Run, error) {
	var (
		r        engine.Run
		status   string
		started  int64
		finished *int64
	)
	dest := append([]any{&r.ID, &r.FlowID, &r.FlowName, &r.FlowVersion, &r.Trigger, &r.Mode,
		&status, &started, &finished, &r.Error, &r.ErrorNode}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	r.Status = engine.RunStatus(status)
	r.StartedAt = time.UnixMicro(started).UTC()
	if finished != nil {
		r.FinishedAt = time.UnixMicro(*finished).UTC()
	}
	return &r, nil
}

// micros is t in unix microseconds, or nil (NULL) for the zero time.
func micros(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixMicro()
	return &v
}

// microsTime is the time of a nullable microseconds column, in UTC; NULL is the zero time.
func microsTime(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return time.UnixMicro(*v).UTC()
}

// text is a JSON document as a text parameter: nil (NULL) for none.
func text(doc []byte) *string {
	if doc == nil {
		return nil
	}
	s := string(doc)
	return &s
}
