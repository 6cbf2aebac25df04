package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flowd/flowd/engine"
)

// LoadStatic returns every key of the flow's static data with its value and version; an empty
// map when the flow has none. Numbers decode as int64 when integral, float64 otherwise. ctx is
// checked before the query, which is short and runs to its end: go-sqlite3 would watch a
// cancellable ctx from a goroutine of its own, which costs more CPU than the query (12 vs 31
// µs in BenchmarkLoadStatic), and every run loads static data.
//
// Reads are served from the store's cache when they can be (static_cache.go says when).
func (s *SQLite) LoadStatic(ctx context.Context, flowID string) (map[string]engine.StaticValue, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load static data of %s: %w", flowID, err)
	}
	m, hit, fresh, gen := s.static.get(flowID, time.Now())
	if hit {
		return m, nil
	}
	if !fresh {
		if err := s.checkDataVersion(context.WithoutCancel(ctx)); err != nil {
			return nil, fmt.Errorf("load static data of %s: %w", flowID, err)
		}
		gen = s.static.generation() // the check drops everything when another process wrote
	}
	m, err := s.loadStatic(ctx, flowID)
	if err != nil {
		return nil, err
	}
	s.static.put(flowID, gen, m)
	return m, nil
}

// loadStatic reads the flow's static data from the database.
func (s *SQLite) loadStatic(ctx context.Context, flowID string) (map[string]engine.StaticValue, error) {
	rows, err := s.r.QueryContext(context.WithoutCancel(ctx), `
SELECT key, value, version FROM static_data
WHERE flow_id = ? AND value IS NOT NULL`, flowID)
	if err != nil {
		return nil, fmt.Errorf("load static data of %s: %w", flowID, err)
	}
	defer rows.Close()
	out := map[string]engine.StaticValue{}
	for rows.Next() {
		var (
			key string
			raw []byte
			sv  engine.StaticValue
		)
		if err := rows.Scan(&key, &raw, &sv.Version); err != nil {
			return nil, fmt.Errorf("load static data of %s: %w", flowID, err)
		}
		if err := decodeJSON(raw, &sv.Value); err != nil {
			return nil, fmt.Errorf("load static data of %s: key %q: %w", flowID, key, err)
		}
		out[key] = sv
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load static data of %s: %w", flowID, err)
	}
	return out, nil
}

// Static returns the flow's static data as one JSON object, without versions; an empty map
// when the flow has none.
func (s *SQLite) Static(ctx context.Context, flowID string) (map[string]any, error) {
	return StaticValues(s.LoadStatic(ctx, flowID))
}

// StaticValues drops the versions of loaded static data: a store's Static from its LoadStatic.
func StaticValues(loaded map[string]engine.StaticValue, err error) (map[string]any, error) {
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(loaded))
	for k, sv := range loaded {
		out[k] = sv.Value
	}
	return out, nil
}

// CommitStatic applies c in one write transaction, or nothing of it. First every key in
// c.Reads must still be at the version read (0: absent) and, with c.ReadAll, no key outside
// c.Reads may exist; otherwise it returns an error wrapping engine.ErrStaticConflict. Then the
// changes are applied in order: each set bumps the key's version by one (a new key starts at
// 1), each delete removes the key (deleting an absent key does nothing), and each change's
// Before is set to the value it replaced (nil when the key was absent). c.Changes' Before
// fields are written only when the commit succeeds.
func (s *SQLite) CommitStatic(ctx context.Context, c *engine.StaticCommit) error {
	err := s.commitStatic(ctx, c)
	s.static.drop(c.FlowID) // also on failure: a commit's outcome may be unknown
	if errors.Is(err, engine.ErrStaticConflict) {
		return err // the store wrote nothing, but it answered
	}
	return s.noteWrite(err)
}

func (s *SQLite) commitStatic(ctx context.Context, c *engine.StaticCommit) error {
	// Encode before the transaction, to keep it short.
	after := make([][]byte, len(c.Changes))
	for i, ch := range c.Changes {
		if ch.Deleted {
			continue
		}
		b, err := encodeJSON(ch.After)
		if err != nil {
			return fmt.Errorf("commit static data of %s: key %q: %w", c.FlowID, ch.Key, err)
		}
		after[i] = b
	}

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("commit static data of %s: %w", c.FlowID, err)
	}
	defer tx.Rollback()
	st, err := newStaticTx(ctx, tx, c.FlowID)
	if err != nil {
		return fmt.Errorf("commit static data of %s: %w", c.FlowID, err)
	}
	defer st.get.Close()

	key, err := st.conflict(ctx, c)
	if err != nil {
		return fmt.Errorf("commit static data of %s: %w", c.FlowID, err)
	}
	if key != "" {
		return fmt.Errorf("commit static data of %s: key %q: %w", c.FlowID, key, engine.ErrStaticConflict)
	}

	before := make([]any, len(c.Changes))
	now := time.Now().UnixMicro()
	for i, ch := range c.Changes {
		row, err := st.row(ctx, ch.Key)
		if err != nil {
			return fmt.Errorf("commit static data of %s: key %q: %w", c.FlowID, ch.Key, err)
		}
		if row.raw != nil {
			if err := decodeJSON(row.raw, &before[i]); err != nil {
				return fmt.Errorf("commit static data of %s: key %q: %w", c.FlowID, ch.Key, err)
			}
		}
		if ch.Deleted {
			if row.raw == nil {
				continue // absent already
			}
			if _, err := tx.ExecContext(ctx, `
UPDATE static_data SET value = NULL, version = version + 1, updated_at = ?
WHERE flow_id = ? AND key = ?`, now, c.FlowID, ch.Key); err != nil {
				return fmt.Errorf("commit static data of %s: delete key %q: %w", c.FlowID, ch.Key, err)
			}
			st.cur[ch.Key] = staticRow{version: row.version + 1}
			continue
		}
		if _, err := tx.ExecContext(ctx, `
INSERT INTO static_data (flow_id, key, value, version, updated_at) VALUES (?, ?, ?, 1, ?)
ON CONFLICT (flow_id, key) DO UPDATE
SET value = excluded.value, version = version + 1, updated_at = excluded.updated_at`,
			c.FlowID, ch.Key, string(after[i]), now); err != nil {
			return fmt.Errorf("commit static data of %s: set key %q: %w", c.FlowID, ch.Key, err)
		}
		st.cur[ch.Key] = staticRow{raw: after[i], version: row.version + 1}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit static data of %s: %w", c.FlowID, err)
	}
	for i := range c.Changes {
		c.Changes[i].Before = before[i]
	}
	return nil
}

// staticRow is one static_data row as CommitStatic sees it. A deleted key has a nil raw value
// and the version of its deletion; an absent key is the zero staticRow.
type staticRow struct {
	raw     []byte
	version int64
}

// staticTx reads the rows of one flow's static data inside a write transaction, each key once,
// and tracks the changes the transaction makes to them.
type staticTx struct {
	tx     *sql.Tx
	flowID string
	get    *sql.Stmt
	cur    map[string]staticRow
}

func newStaticTx(ctx context.Context, tx *sql.Tx, flowID string) (*staticTx, error) {
	get, err := tx.PrepareContext(ctx, `SELECT value, version FROM static_data WHERE flow_id = ? AND key = ?`)
	if err != nil {
		return nil, err
	}
	return &staticTx{tx: tx, flowID: flowID, get: get, cur: map[string]staticRow{}}, nil
}

func (st *staticTx) row(ctx context.Context, key string) (staticRow, error) {
	if row, ok := st.cur[key]; ok {
		return row, nil
	}
	var row staticRow
	err := st.get.QueryRowContext(ctx, st.flowID, key).Scan(&row.raw, &row.version)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return staticRow{}, err
	}
	st.cur[key] = row
	return row, nil
}

// conflict checks c's reads against the stored rows and returns the first offending key in
// key order, or "" when the commit may go ahead.
func (st *staticTx) conflict(ctx context.Context, c *engine.StaticCommit) (string, error) {
	keys := make([]string, 0, len(c.Reads))
	for k := range c.Reads {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		row, err := st.row(ctx, k)
		if err != nil {
			return "", err
		}
		var have int64
		if row.raw != nil {
			have = row.version
		}
		if have != c.Reads[k] {
			return k, nil
		}
	}
	if !c.ReadAll {
		return "", nil
	}
	rows, err := st.tx.QueryContext(ctx, `
SELECT key FROM static_data WHERE flow_id = ? AND value IS NOT NULL ORDER BY key`, st.flowID)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return "", err
		}
		if _, read := c.Reads[k]; !read {
			return k, nil
		}
	}
	return "", rows.Err()
}

// ResetStatic deletes every key of the flow's static data in one transaction. Like a node's
// delete, it bumps each key's version, so a node that read the old data fails to commit.
func (s *SQLite) ResetStatic(ctx context.Context, flowID string) error {
	_, err := s.w.ExecContext(ctx, `
UPDATE static_data SET value = NULL, version = version + 1, updated_at = ?
WHERE flow_id = ? AND value IS NOT NULL`, time.Now().UnixMicro(), flowID)
	s.static.drop(flowID)
	if err != nil {
		return fmt.Errorf("reset static data of %s: %w", flowID, err)
	}
	return nil
}
