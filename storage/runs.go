package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"sync"
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
//
// The write is queued for the writer (see writer.go) and CreateRun returns once it is
// committed: nil means the run is in the database. When ctx ends while the write is still
// queued, the write is dropped and CreateRun returns ctx's error; once the writer has taken
// it, CreateRun waits for its transaction. After Close it returns ErrClosed.
func (s *SQLite) CreateRun(ctx context.Context, r *engine.Run) error {
	op := &runOp{kind: opCreate, row: newRunRow(r)}
	if err := s.noteWrite(s.wr.do(ctx, op)); err != nil {
		return fmt.Errorf("create run %s: %w", r.ID, err)
	}
	return nil
}

// QueueCreateRun queues the start record of a run and returns at once (engine.RunQueuer);
// wait blocks until it is committed and returns the outcome, the same each call. Queued
// writes are committed in order, so the run's FinishRun lands after it — often in the same
// transaction, as one insert. While the database is known not to take writes (see
// faults.go), the record is written at once instead, so that no run starts unrecorded.
func (s *SQLite) QueueCreateRun(ctx context.Context, r *engine.Run) (wait func() error, err error) {
	if s.faults.last.Load() != nil {
		if err := s.CreateRun(ctx, r); err != nil {
			return nil, err
		}
		return func() error { return nil }, nil
	}
	op := &runOp{kind: opCreate, row: newRunRow(r)}
	if err := s.wr.enqueue(ctx, op); err != nil {
		return nil, fmt.Errorf("create run %s: %w", r.ID, err)
	}
	c := &queuedCreate{s: s, op: op}
	return c.wait, nil
}

// queuedCreate is a start record queued by QueueCreateRun.
type queuedCreate struct {
	s    *SQLite
	op   *runOp
	once sync.Once
	err  error
}

// wait waits for the record's commit, once, and returns its outcome.
func (c *queuedCreate) wait() error {
	c.once.Do(func() {
		if err := c.s.noteWrite(<-c.op.done); err != nil {
			c.err = fmt.Errorf("create run %s: %w", c.op.row.id, err)
		}
	})
	return c.err
}

// FinishRun stores the run's final status, end time and error, and all its node executions,
// in one transaction; node records stored by an earlier FinishRun of the run are replaced.
// Payloads larger than MaxPayloadBytes are truncated (see MaxPayloadBytes). It returns an
// error wrapping ErrNotFound when the run was never created. Like CreateRun it queues the
// write and returns once it is committed, or with ctx's error when ctx ends before the
// writer took it, in which case nothing of it is written.
func (s *SQLite) FinishRun(ctx context.Context, r *engine.Run) error {
	nodes, err := encodeNodes(r)
	if err != nil {
		return fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	op := &runOp{kind: opFinish, row: newRunRow(r), nodes: nodes}
	if err := s.noteWrite(s.wr.do(ctx, op)); err != nil {
		return fmt.Errorf("finish run %s: %w", r.ID, err)
	}
	return nil
}

// InsertRuns stores runs in bulk, each as it is — running, or finished with its node
// executions — in one transaction with prepared statements, bypassing the writer's queue: all
// of them or, on error, none. It is for tools that fill a database (the benchmarks generate a
// million runs with it) and holds the write connection throughout, so other writes wait; a
// server records runs with CreateRun and FinishRun. ctx is checked between runs.
func (s *SQLite) InsertRuns(ctx context.Context, runs []*engine.Run) error {
	if err := s.insertRuns(ctx, runs); err != nil {
		return fmt.Errorf("insert %d runs: %w", len(runs), err)
	}
	return nil
}

func (s *SQLite) insertRuns(ctx context.Context, runs []*engine.Run) error {
	return s.runs.bulk(ctx, func(st *runStmts) error {
		for _, r := range runs {
			if err := ctx.Err(); err != nil {
				return err
			}
			nodes, err := encodeNodes(r)
			if err != nil {
				return fmt.Errorf("run %s: %w", r.ID, err)
			}
			row := newRunRow(r)
			if err := st.insertRun(&row, nodes); err != nil {
				return fmt.Errorf("run %s: %w", r.ID, err)
			}
		}
		return nil
	})
}

// GetRun returns the run with its node executions in execution order, payloads included. It
// returns an error wrapping ErrNotFound when there is no such run.
func (s *SQLite) GetRun(ctx context.Context, id string) (*engine.Run, error) {
	var nodes []byte
	r, err := scanRun(s.r.QueryRowContext(ctx, `
SELECT `+runColumns+`, nodes FROM runs WHERE id = ?`, id), &nodes)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	if r.Nodes, err = decodeNodes(nodes, r.StartedAt.UnixMicro()); err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	return r, nil
}

// ListRuns returns the runs matching f, newest first, without their node executions
// (Run.Nodes is nil); it never reads node payloads.
func (s *SQLite) ListRuns(ctx context.Context, f engine.RunFilter) ([]engine.Run, error) {
	q, args := listRunsQuery(f)
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

// listRunsQuery is ListRuns' query. Each filter has an index that yields its runs in id
// order (see migration v4), so a page costs the same at any depth.
func listRunsQuery(f engine.RunFilter) (string, []any) {
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
	switch f.Status {
	case "":
	case string(engine.StatusSuccess):
		// Most runs: found by scanning runs newest first, by flow or not.
		q += ` AND status = ?`
		args = append(args, f.Status)
	default:
		// The indexes by status hold the runs not successful; the condition, spelled as
		// theirs, lets SQLite use them.
		q += ` AND status = ?` + notSuccess
		args = append(args, f.Status)
	}
	if f.Before != "" {
		q += ` AND id < ?`
		args = append(args, f.Before)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	return q, append(args, limit)
}

// notSuccess is the condition of the partial indexes by status (migration v5), for queries
// that look for runs in another status: SQLite uses a partial index only when the query's
// WHERE implies the index's, which a bound parameter cannot show.
const notSuccess = ` AND status <> 'success'`

const markCrashedSQL = `UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE status = ?` + notSuccess

// MarkCrashed ends every run still marked running with status crashed, finished at at, and
// returns how many it ended. Call it at start-up, before any run starts: a run found running
// then was cut short when flowd last stopped.
func (s *SQLite) MarkCrashed(ctx context.Context, at time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, markCrashedSQL,
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

// scanRun reads the runColumns of row, then the columns of extra, if any.
func scanRun(row interface{ Scan(...any) error }, extra ...any) (*engine.Run, error) {
	var (
		r        engine.Run
		status   string
		started  int64
		finished sql.NullInt64
	)
	dest := append([]any{&r.ID, &r.FlowID, &r.FlowName, &r.FlowVersion, &r.Trigger, &r.Mode,
		&status, &started, &finished, &r.Error, &r.ErrorNode}, extra...)
	if err := row.Scan(dest...); err != nil {
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

// runRow is a run's columns in the runs table.
type runRow struct {
	id, flowID, flowName, flowVersion, trigger, mode, status string
	started                                                  int64
	finished                                                 sql.NullInt64
	err, errNode                                             string
}

func newRunRow(r *engine.Run) runRow {
	return runRow{
		id: r.ID, flowID: r.FlowID, flowName: r.FlowName, flowVersion: r.FlowVersion,
		trigger: r.Trigger, mode: r.Mode, status: string(r.Status),
		started: r.StartedAt.UnixMicro(), finished: micros(r.FinishedAt),
		err: r.Error, errNode: r.ErrorNode,
	}
}

// after is the run created as c once finished as f: c's columns with f's end.
func (f *runRow) after(c *runRow) runRow {
	r := *c
	r.status, r.finished, r.err, r.errNode = f.status, f.finished, f.err, f.errNode
	return r
}

// insertRunSQL stores a run with its node executions. The nodes document is bound as a
// string, so that it is TEXT that SQLite's JSON functions read.
const insertRunSQL = `
INSERT INTO runs (id, flow_id, flow_name, flow_version, trigger, mode, status, started_at,
	finished_at, error, error_node, nodes)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// itemJSON encodes items, each distinct map once. The nodes of a run pass the same items on
// (a node's input is its upstream node's output; If and noOp send on what they received),
// and while a finished run is encoded a map's identity stands for its content. A nil itemJSON
// encodes every time.
type itemJSON map[uintptr][]byte

func (c itemJSON) encode(item engine.Item) ([]byte, error) {
	if c == nil || item == nil {
		return engine.AppendJSON(nil, item)
	}
	id := reflect.ValueOf(item).Pointer()
	if b, ok := c[id]; ok {
		return b, nil
	}
	// Most items take a few hundred bytes: one allocation rather than a doubling series.
	b, err := engine.AppendJSON(make([]byte, 0, 256), item)
	if err != nil {
		return nil, err
	}
	c[id] = b
	return b, nil
}

// encodeItems renders items as a JSON array of at most limit bytes: all of them when they fit,
// else the leading items that fit, reporting the cut. It returns how many items it kept.
// Items after the cut are not encoded.
func encodeItems(c itemJSON, items []engine.Item, limit int) (b []byte, kept int, cut bool, err error) {
	// First the items that fit, then the array, allocated once.
	var small [8][]byte
	encs, size := small[:0], 2 // the brackets
	for i, item := range items {
		e, err := c.encode(item)
		if err != nil {
			return nil, 0, false, fmt.Errorf("item %d: %w", i, err)
		}
		n := len(e)
		if i > 0 {
			n++ // comma
		}
		if size+n > limit {
			cut = true
			break
		}
		size += n
		encs = append(encs, e)
	}
	b = append(make([]byte, 0, size), '[')
	for i, e := range encs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, ']'), len(encs), cut, nil
}

// encodePorts renders each output port as a JSON array of items (nil for a nil port) such
// that the ports as one JSON array of arrays take at most limit bytes: all items when they
// fit, else leading items of each port taken round-robin — the first of every port, then the
// second, and so on — so that one large port does not crowd out the others. A port stops at
// its first item that does not fit. It returns how many items it kept of each port.
func encodePorts(c itemJSON, ports [][]engine.Item, limit int) (out [][]byte, kept []int, cut bool, err error) {
	// The skeleton: the outer brackets, commas between ports, each port's brackets or null.
	size := 2 + max(len(ports)-1, 0)
	for _, p := range ports {
		if p == nil {
			size += len("null")
		} else {
			size += 2
		}
	}
	out, kept = make([][]byte, len(ports)), make([]int, len(ports))
	if all, err := portsSize(c, ports, size); err != nil {
		return nil, nil, false, err
	} else if all <= limit {
		// The usual case: everything fits, so each port is an array of all its items (their
		// JSON cached by portsSize).
		for i, p := range ports {
			if p == nil {
				continue
			}
			if out[i], kept[i], _, err = encodeItems(c, p, limit); err != nil {
				return nil, nil, false, err
			}
		}
		return out, kept, false, nil
	}
	items := make([][][]byte, len(ports))
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
			e, err := c.encode(p[depth])
			if err != nil {
				return nil, nil, false, fmt.Errorf("port %d item %d: %w", i, depth, err)
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
			items[i] = append(items[i], e)
			more = true
		}
	}
	for i, p := range ports {
		if p == nil {
			continue
		}
		n := 2 + max(len(items[i])-1, 0)
		for _, e := range items[i] {
			n += len(e)
		}
		b := append(make([]byte, 0, n), '[')
		for j, e := range items[i] {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, e...)
		}
		out[i] = append(b, ']')
		kept[i] = len(items[i])
	}
	return out, kept, cut, nil
}

// portsSize is the size of ports as encodePorts renders them when nothing is cut: skeleton
// bytes plus every item's JSON and the commas between them. It encodes every item once.
func portsSize(c itemJSON, ports [][]engine.Item, skeleton int) (int, error) {
	size := skeleton
	for i, p := range ports {
		for j, item := range p {
			e, err := c.encode(item)
			if err != nil {
				return 0, fmt.Errorf("port %d item %d: %w", i, j, err)
			}
			size += len(e)
			if j > 0 {
				size++
			}
		}
	}
	return size, nil
}

var _ engine.RunReader = (*SQLite)(nil)
