package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/flowd/flowd/engine"
)

// MaxPayloadBytes caps the stored JSON of one node execution's input, and separately of its
// output. A larger payload is stored as the leading items that fit, with NodeRun.Truncated set
// and the real counts kept in InputCount and OutputCounts.
const MaxPayloadBytes = 256 << 10

// crashedError is the error of a run that MarkCrashed ended.
const crashedError = "flowd stopped while the run was in progress"

// CreateRun stores a run that has just started. Its nodes, if any, are not stored: FinishRun
// stores them. A run with the same id already stored is an error.
func (s *SQLite) CreateRun(ctx context.Context, r *engine.Run) error {
	if _, err := s.w.ExecContext(ctx, `
INSERT INTO runs (id, flow_id, flow_name, flow_version, trigger, mode, status, started_at,
	finished_at, error, error_node)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.FlowID, r.FlowName, r.FlowVersion, r.Trigger, r.Mode, string(r.Status),
		r.StartedAt.UnixMicro(), micros(r.FinishedAt), r.Error, r.ErrorNode); err != nil {
		return fmt.Errorf("create run %s: %w", r.ID, err)
	}
	return nil
}

// FinishRun stores the run's final status, end time and error, and all its node executions,
// in one transaction; node records stored by an earlier FinishRun of the run are replaced.
// Payloads larger than MaxPayloadBytes are truncated (see MaxPayloadBytes). It returns an
// error wrapping ErrNotFound when the run was never created.
func (s *SQLite) FinishRun(ctx context.Context, r *engine.Run) error {
	nodes := make([]nodeRow, len(r.Nodes))
	for i := range r.Nodes {
		row, err := encodeNodeRun(&r.Nodes[i])
		if err != nil {
			return fmt.Errorf("finish run %s: node %q: %w", r.ID, r.Nodes[i].Node, err)
		}
		nodes[i] = row
	}

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `
UPDATE runs SET status = ?, finished_at = ?, error = ?, error_node = ?
WHERE id = ?`,
		string(r.Status), micros(r.FinishedAt), r.Error, r.ErrorNode, r.ID)
	if err != nil {
		return fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("finish run %s: %w", r.ID, err)
	} else if n == 0 {
		return fmt.Errorf("finish run %s: %w", r.ID, ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM node_runs WHERE run_id = ?`, r.ID); err != nil {
		return fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	stmt, err := tx.PrepareContext(ctx, `
INSERT INTO node_runs (run_id, seq, node, type, status, started_at, duration_us, tries,
	input_count, output_counts, ports, input, output, truncated, error, static, recheck)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	defer stmt.Close()
	for i, nr := range r.Nodes {
		row := nodes[i]
		if _, err := stmt.ExecContext(ctx,
			r.ID, nr.Seq, nr.Node, nr.Type, string(nr.Status), nr.StartedAt.UnixMicro(),
			nr.DurationMicros, nr.Tries, nr.InputCount, row.outputCounts, row.ports,
			row.input, row.output, row.truncated, nr.Error, row.static, nr.Recheck); err != nil {
			return fmt.Errorf("finish run %s: node %q: %w", r.ID, nr.Node, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	return nil
}

// GetRun returns the run with its node executions in execution order, payloads included. It
// returns an error wrapping ErrNotFound when there is no such run.
func (s *SQLite) GetRun(ctx context.Context, id string) (*engine.Run, error) {
	// One read transaction, so that the run and its nodes come from the same snapshot.
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	defer tx.Rollback()

	r, err := scanRun(tx.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	rows, err := tx.QueryContext(ctx, `
SELECT seq, node, type, status, started_at, duration_us, tries, input_count, output_counts,
	ports, input, output, truncated, error, static, recheck
FROM node_runs WHERE run_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	defer rows.Close()
	r.Nodes = []engine.NodeRun{}
	for rows.Next() {
		var (
			nr      engine.NodeRun
			status  string
			started int64
			row     nodeRow
		)
		if err := rows.Scan(&nr.Seq, &nr.Node, &nr.Type, &status, &started, &nr.DurationMicros,
			&nr.Tries, &nr.InputCount, &row.outputCounts, &row.ports, &row.input, &row.output,
			&row.truncated, &nr.Error, &row.static, &nr.Recheck); err != nil {
			return nil, fmt.Errorf("get run %s: %w", id, err)
		}
		nr.Status = engine.RunStatus(status)
		nr.StartedAt = time.UnixMicro(started).UTC()
		if err := row.decode(&nr); err != nil {
			return nil, fmt.Errorf("get run %s: node %q: %w", id, nr.Node, err)
		}
		r.Nodes = append(r.Nodes, nr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	return r, nil
}

// ListRuns returns the runs matching f, newest first, without their node executions
// (Run.Nodes is nil); it never reads node payloads.
func (s *SQLite) ListRuns(ctx context.Context, f engine.RunFilter) ([]engine.Run, error) {
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = 50
	case limit > 1000:
		limit = 1000
	}
	q := `SELECT ` + runColumns + ` FROM runs WHERE 1 = 1`
	var args []any
	if f.FlowID != "" {
		q += ` AND flow_id = ?`
		args = append(args, f.FlowID)
	}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.Before != "" {
		q += ` AND id < ?`
		args = append(args, f.Before)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)

	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
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
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// MarkCrashed ends every run still marked running with status crashed, finished at at, and
// returns how many it ended. Call it at start-up, before any run starts: a run found running
// then was cut short when flowd last stopped.
func (s *SQLite) MarkCrashed(ctx context.Context, at time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `
UPDATE runs SET status = ?, finished_at = ?, error = ?
WHERE status = ?`,
		string(engine.StatusCrashed), at.UnixMicro(), crashedError, string(engine.StatusRunning))
	if err != nil {
		return 0, fmt.Errorf("mark crashed runs: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("mark crashed runs: %w", err)
	}
	return int(n), nil
}

const runColumns = `id, flow_id, flow_name, flow_version, trigger, mode, status, started_at,
	finished_at, error, error_node`

func scanRun(row interface{ Scan(...any) error }) (*engine.Run, error) {
	var (
		r        engine.Run
		status   string
		started  int64
		finished sql.NullInt64
	)
	if err := row.Scan(&r.ID, &r.FlowID, &r.FlowName, &r.FlowVersion, &r.Trigger, &r.Mode,
		&status, &started, &finished, &r.Error, &r.ErrorNode); err != nil {
		return nil, err
	}
	r.Status = engine.RunStatus(status)
	r.StartedAt = time.UnixMicro(started).UTC()
	if finished.Valid {
		r.FinishedAt = time.UnixMicro(finished.Int64).UTC()
	}
	return &r, nil
}

// micros is t in unix microseconds, or NULL for the zero time.
func micros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// nodeRow is the encoded form of the JSON columns of one node_runs row. Nil byte slices are
// NULL.
type nodeRow struct {
	outputCounts, ports []byte
	input, output       []byte
	static              []byte
	truncated           bool
}

func encodeNodeRun(nr *engine.NodeRun) (nodeRow, error) {
	var (
		row nodeRow
		err error
	)
	counts := nr.OutputCounts
	if counts == nil {
		counts = []int{}
	}
	if row.outputCounts, err = encodeJSON(counts); err != nil {
		return row, fmt.Errorf("output counts: %w", err)
	}
	ports := nr.Ports
	if ports == nil {
		ports = []string{}
	}
	if row.ports, err = encodeJSON(ports); err != nil {
		return row, fmt.Errorf("ports: %w", err)
	}
	var cut bool
	if nr.Input != nil {
		if row.input, cut, err = encodeItems(nr.Input, MaxPayloadBytes); err != nil {
			return row, fmt.Errorf("input: %w", err)
		}
		row.truncated = cut
	}
	if nr.Output != nil {
		if row.output, cut, err = encodePorts(nr.Output, MaxPayloadBytes); err != nil {
			return row, fmt.Errorf("output: %w", err)
		}
		row.truncated = row.truncated || cut
	}
	row.truncated = row.truncated || nr.Truncated
	if len(nr.Static) > 0 {
		if row.static, err = encodeJSON(nr.Static); err != nil {
			return row, fmt.Errorf("static data changes: %w", err)
		}
	}
	return row, nil
}

func (row *nodeRow) decode(nr *engine.NodeRun) error {
	if err := decodeJSON(row.outputCounts, &nr.OutputCounts); err != nil {
		return fmt.Errorf("output counts: %w", err)
	}
	if err := decodeJSON(row.ports, &nr.Ports); err != nil {
		return fmt.Errorf("ports: %w", err)
	}
	if row.input != nil {
		if err := decodeJSON(row.input, &nr.Input); err != nil {
			return fmt.Errorf("input: %w", err)
		}
	}
	if row.output != nil {
		if err := decodeJSON(row.output, &nr.Output); err != nil {
			return fmt.Errorf("output: %w", err)
		}
	}
	if row.static != nil {
		if err := decodeJSON(row.static, &nr.Static); err != nil {
			return fmt.Errorf("static data changes: %w", err)
		}
	}
	nr.Truncated = row.truncated
	return nil
}

// encodeItems renders items as a JSON array of at most limit bytes: all of them when they fit,
// else the leading items that fit, reporting the cut. Items after the cut are not encoded.
func encodeItems(items []engine.Item, limit int) (b []byte, cut bool, err error) {
	b = append(b, '[')
	for i, item := range items {
		e, err := encodeJSON(item)
		if err != nil {
			return nil, false, fmt.Errorf("item %d: %w", i, err)
		}
		n := len(e)
		if i > 0 {
			n++ // comma
		}
		if len(b)+n+1 > limit { // and the closing bracket
			cut = true
			break
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, ']'), cut, nil
}

// encodePorts renders output ports as a JSON array of item arrays of at most limit bytes: all
// of them when they fit, else leading items of each port taken round-robin — the first of
// every port, then the second, and so on — so that one large port does not crowd out the
// others. A port stops at its first item that does not fit. A nil port is rendered as null.
func encodePorts(ports [][]engine.Item, limit int) (b []byte, cut bool, err error) {
	// The skeleton: the outer brackets, commas between ports, each port's brackets or null.
	size := 2 + max(len(ports)-1, 0)
	for _, p := range ports {
		if p == nil {
			size += len("null")
		} else {
			size += 2
		}
	}
	kept := make([][][]byte, len(ports))
	open := make([]bool, len(ports))
	for i, p := range ports {
		open[i] = len(p) > 0
	}
	for depth, more := 0, true; more; depth++ {
		more = false
		for i, p := range ports {
			if !open[i] {
				continue
			}
			if depth >= len(p) {
				open[i] = false
				continue
			}
			e, err := encodeJSON(p[depth])
			if err != nil {
				return nil, false, fmt.Errorf("port %d item %d: %w", i, depth, err)
			}
			n := len(e)
			if depth > 0 {
				n++ // comma
			}
			if size+n > limit {
				open[i], cut = false, true
				continue
			}
			size += n
			kept[i] = append(kept[i], e)
			more = true
		}
	}
	b = make([]byte, 0, size)
	b = append(b, '[')
	for i, p := range ports {
		if i > 0 {
			b = append(b, ',')
		}
		if p == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, e := range kept[i] {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, e...)
		}
		b = append(b, ']')
	}
	return append(b, ']'), cut, nil
}

var _ engine.RunReader = (*SQLite)(nil)
