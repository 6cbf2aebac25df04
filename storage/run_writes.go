package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Run records are written through go-sqlite3's connection directly, with statements prepared
// once: on the development machine a one-row insert took about 1 µs this way against 3.5 µs
// with a database/sql statement prepared in the transaction and 8-10 µs with tx.Exec, and an
// empty transaction's begin and commit 6 µs against 18 (docs/storage.md). The write
// connection is still taken from its database/sql pool for each transaction and given back,
// so other writes take turns with the run writer.

const finishRunSQL = `
UPDATE runs SET status = ?, finished_at = ?, error = ?, error_node = ?, nodes = ?
WHERE id = ?`

// runStmts are the run writes prepared on one connection. Only the holder of the connection
// uses them.
type runStmts struct {
	insert, finish driver.StmtExecContext
	all            []driver.Stmt
	args           [12]driver.NamedValue

	flowID, flowName, flowVersion, trigger, mode, status lastValue
}

func prepareRunStmts(c *sqlite3.SQLiteConn) (*runStmts, error) {
	st := &runStmts{}
	for _, p := range []struct {
		dst *driver.StmtExecContext
		sql string
	}{
		{&st.insert, insertRunSQL}, {&st.finish, finishRunSQL},
	} {
		s, err := c.Prepare(p.sql)
		if err != nil {
			st.close()
			return nil, err
		}
		st.all = append(st.all, s)
		*p.dst = s.(driver.StmtExecContext)
	}
	for i := range st.args {
		st.args[i].Ordinal = i + 1
	}
	return st, nil
}

func (st *runStmts) close() error {
	var errs []error
	for _, s := range st.all {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// exec runs s with values as its parameters, in order.
func (st *runStmts) exec(s driver.StmtExecContext, values ...driver.Value) (driver.Result, error) {
	args := st.args[:len(values)]
	for i, v := range values {
		args[i].Value = v
	}
	res, err := s.ExecContext(context.Background(), args)
	for i := range args {
		args[i].Value = nil // let the values go
	}
	return res, err
}

// nullable is v as a driver value: nil for NULL.
func nullable(v sql.NullInt64) driver.Value {
	if !v.Valid {
		return nil
	}
	return v.Int64
}

// nodesValue is an encoded nodes document as a driver value: NULL for none. The string shares
// the document's bytes rather than copying them in the writer every run waits for: nothing
// changes a document once encoded, and SQLite copies the text it is given to bind.
func nodesValue(nodes []byte) driver.Value {
	if nodes == nil {
		return nil
	}
	return unsafe.String(unsafe.SliceData(nodes), len(nodes))
}

// insertRun inserts a run and its encoded node executions (nil: none).
func (st *runStmts) insertRun(r *runRow, nodes []byte) error {
	_, err := st.exec(st.insert, r.id, st.flowID.of(r.flowID), st.flowName.of(r.flowName),
		st.flowVersion.of(r.flowVersion), st.trigger.of(r.trigger), st.mode.of(r.mode),
		st.status.of(r.status), r.started, nullable(r.finished), r.err, r.errNode, nodesValue(nodes))
	return err
}

// lastValue is a column's value as last written, as a driver.Value. Consecutive runs mostly
// share their flow, trigger, mode and status: reusing the value saves the allocation that
// converting a string to an interface costs, in the writer every run waits for.
type lastValue struct {
	s string
	v driver.Value
}

func (c *lastValue) of(s string) driver.Value {
	if c.v == nil || c.s != s {
		c.s, c.v = s, s
	}
	return c.v
}

// finishRun stores a run's end and replaces its node executions with nodes (nil: none). It
// reports false, having written nothing, when the run is not stored.
func (st *runStmts) finishRun(r *runRow, nodes []byte) (bool, error) {
	res, err := st.exec(st.finish, r.status, nullable(r.finished), r.err, r.errNode, nodesValue(nodes), r.id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return err == nil && n > 0, err
}

// runWrites runs transactions of run writes on the write connection.
type runWrites struct {
	db *sql.DB
	mu sync.Mutex // guards conn and st
	// conn is the connection st is prepared on; the pool keeps one write connection open
	// for the store's life, but should it replace it, the statements are prepared again.
	conn *sqlite3.SQLiteConn
	st   *runStmts
	// observe, when set, is told the connection's data_version after a transaction of inTx,
	// which tells the static cache whether another process has written: after the first
	// transaction that ends observeEvery after the last reading (a reading costs as much as
	// inserting a run; busy, the writer commits a thousand times a second).
	observe  func(version int64, at time.Time)
	observed time.Time
}

// observeEvery spaces the writer's readings of data_version; well under staticStaleness, so
// that while runs are written, reads of static data never wait for a reading of their own.
const observeEvery = 5 * time.Millisecond

// inTx runs fn in one write transaction on the write connection, with its statements, and
// commits unless fn fails. It waits for the connection, which other writes may hold.
func (rw *runWrites) inTx(ctx context.Context, fn func(*runStmts) error) error {
	return rw.withConn(ctx, func(c *sqlite3.SQLiteConn, st *runStmts) error {
		if err := inTx(c, func() error { return fn(st) }); err != nil {
			return err
		}
		if at := time.Now(); rw.observe != nil && at.Sub(rw.observed) >= observeEvery {
			var v int64
			if queryInt(c, "PRAGMA data_version", &v) == nil {
				rw.observe(v, at)
				rw.observed = at
			}
		}
		return nil
	})
}

// bulkCacheKiB is the page cache a bulk insert works with: index inserts spread over many
// pages, which the default 2 MiB cache would write out and read back again and again.
const bulkCacheKiB = 64 << 10

// bulk is inTx with a large page cache, for inserting many runs; the connection's cache is
// back to its default size after.
func (rw *runWrites) bulk(ctx context.Context, fn func(*runStmts) error) error {
	return rw.withConn(ctx, func(c *sqlite3.SQLiteConn, st *runStmts) error {
		var def int64
		if err := queryInt(c, "PRAGMA cache_size", &def); err != nil {
			return err
		}
		if _, err := c.Exec(fmt.Sprintf("PRAGMA cache_size = -%d", bulkCacheKiB), nil); err != nil {
			return err
		}
		err := inTx(c, func() error { return fn(st) })
		_, errReset := c.Exec(fmt.Sprintf("PRAGMA cache_size = %d", def), nil)
		return errors.Join(err, errReset)
	})
}

// withConn runs fn with the write connection as go-sqlite3 has it and the statements
// prepared on it.
func (rw *runWrites) withConn(ctx context.Context, fn func(*sqlite3.SQLiteConn, *runStmts) error) error {
	conn, err := rw.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("write connection is a %T, not go-sqlite3's", dc)
		}
		st, err := rw.stmts(c)
		if err != nil {
			return err
		}
		return fn(c, st)
	})
}

// inTx runs fn in a transaction on c and commits unless fn fails.
func inTx(c *sqlite3.SQLiteConn, fn func() error) error {
	tx, err := c.BeginTx(context.Background(), driver.TxOptions{})
	if err != nil {
		return err
	}
	if err := fn(); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// queryInt reads the one integer q returns into dst.
func queryInt(c *sqlite3.SQLiteConn, q string, dst *int64) error {
	rows, err := c.Query(q, nil)
	if err != nil {
		return err
	}
	defer rows.Close()
	row := make([]driver.Value, 1)
	if err := rows.Next(row); err != nil {
		return err
	}
	v, ok := row[0].(int64)
	if !ok {
		return fmt.Errorf("%s: got %T", q, row[0])
	}
	*dst = v
	return nil
}

func (rw *runWrites) stmts(c *sqlite3.SQLiteConn) (*runStmts, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.conn == c {
		return rw.st, nil
	}
	st, err := prepareRunStmts(c)
	if err != nil {
		return nil, fmt.Errorf("prepare run writes: %w", err)
	}
	rw.conn, rw.st = c, st
	return st, nil
}

// close finalizes the prepared statements; call it before the write pool closes.
func (rw *runWrites) close(ctx context.Context) error {
	conn, err := rw.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		rw.mu.Lock()
		defer rw.mu.Unlock()
		if rw.st == nil || rw.conn != dc {
			return nil
		}
		err := rw.st.close()
		rw.conn, rw.st = nil, nil
		return err
	})
}
