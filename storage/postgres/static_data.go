package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

// LoadStatic returns every key of the flow's static data with its value and version; an empty
// map when the flow has none. It reads the database each time: what another instance
// committed is seen at once.
func (s *Store) LoadStatic(ctx context.Context, flowID string) (map[string]engine.StaticValue, error) {
	rows, err := s.db.Query(ctx, `
SELECT key, value, version FROM static_data WHERE flow_id = $1 AND value IS NOT NULL`, flowID)
	if err != nil {
		return nil, fmt.Errorf("load static data of %s: %w", flowID, unavailable(err))
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
		if sv.Value, err = storage.DecodeValue(raw); err != nil {
			return nil, fmt.Errorf("load static data of %s: key %q: %w", flowID, key, err)
		}
		out[key] = sv
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load static data of %s: %w", flowID, unavailable(err))
	}
	return out, nil
}

// Static returns the flow's static data as one JSON object, without versions; an empty map
// when the flow has none.
func (s *Store) Static(ctx context.Context, flowID string) (map[string]any, error) {
	return storage.StaticValues(s.LoadStatic(ctx, flowID))
}

// CommitStatic applies c in one transaction, or nothing of it, with storage.SQLite's
// semantics: every key in c.Reads must still be at the version read (0: absent) and, with
// c.ReadAll, no other key may exist, else the error wraps engine.ErrStaticConflict; each set
// bumps the key's version, each delete keeps the key as a NULL row with a bumped version, and
// each change's Before gets the value it replaced.
//
// Commits of one flow are serialised across every process by a transaction-scoped advisory
// lock on the flow, taken before the check, so that check and write see one state.
func (s *Store) CommitStatic(ctx context.Context, c *engine.StaticCommit) error {
	after := make([][]byte, len(c.Changes))
	for i, ch := range c.Changes {
		if ch.Deleted {
			continue
		}
		b, err := storage.EncodeValue(ch.After)
		if err != nil {
			return fmt.Errorf("commit static data of %s: key %q: %w", c.FlowID, ch.Key, err)
		}
		after[i] = b
	}
	var before []any
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := lockFlowStatic(ctx, tx, c.FlowID); err != nil {
			return err
		}
		cur, err := staticRows(ctx, tx, c.FlowID)
		if err != nil {
			return err
		}
		if key := conflict(cur, c); key != "" {
			return fmt.Errorf("key %q: %w", key, engine.ErrStaticConflict)
		}
		before, err = applyStatic(ctx, tx, c, after, cur)
		return err
	})
	if err != nil {
		if errors.Is(err, engine.ErrStaticConflict) {
			return fmt.Errorf("commit static data of %s: %w", c.FlowID, err)
		}
		return fmt.Errorf("commit static data of %s: %w", c.FlowID, unavailable(err))
	}
	for i := range c.Changes {
		c.Changes[i].Before = before[i]
	}
	return nil
}

// lockFlowStatic serialises the static-data writes of one flow until tx ends.
func lockFlowStatic(ctx context.Context, tx pgx.Tx, flowID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockClassStatic, flowID)
	return err
}

// staticRow is one stored key: raw is nil for a deleted key.
type staticRow struct {
	raw     []byte
	version int64
}

// staticRows reads every row of the flow's static data, deleted keys included.
func staticRows(ctx context.Context, tx pgx.Tx, flowID string) (map[string]staticRow, error) {
	rows, err := tx.Query(ctx, `SELECT key, value, version FROM static_data WHERE flow_id = $1`, flowID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cur := map[string]staticRow{}
	for rows.Next() {
		var (
			k string
			r staticRow
		)
		if err := rows.Scan(&k, &r.raw, &r.version); err != nil {
			return nil, err
		}
		cur[k] = r
	}
	return cur, rows.Err()
}

// conflict returns the first key, in key order, whose stored version differs from the one
// c read, or with c.ReadAll the first live key c did not read; "" when c may commit.
func conflict(cur map[string]staticRow, c *engine.StaticCommit) string {
	keys := make([]string, 0, len(c.Reads))
	for k := range c.Reads {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var have int64
		if r := cur[k]; r.raw != nil {
			have = r.version
		}
		if have != c.Reads[k] {
			return k
		}
	}
	if !c.ReadAll {
		return ""
	}
	var extra []string
	for k, r := range cur {
		if _, read := c.Reads[k]; !read && r.raw != nil {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return ""
	}
	return slices.Min(extra)
}

// applyStatic writes c's changes (after holds the encoded values) over cur, in order, and
// returns the value each replaced.
func applyStatic(ctx context.Context, tx pgx.Tx, c *engine.StaticCommit, after [][]byte, cur map[string]staticRow) ([]any, error) {
	before := make([]any, len(c.Changes))
	now := time.Now().UnixMicro()
	for i, ch := range c.Changes {
		row := cur[ch.Key]
		if row.raw != nil {
			v, err := storage.DecodeValue(row.raw)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", ch.Key, err)
			}
			before[i] = v
		}
		if ch.Deleted {
			if row.raw == nil {
				continue // absent already
			}
			if _, err := tx.Exec(ctx, `
UPDATE static_data SET value = NULL, version = version + 1, updated_at = $1
WHERE flow_id = $2 AND key = $3`, now, c.FlowID, ch.Key); err != nil {
				return nil, fmt.Errorf("delete key %q: %w", ch.Key, err)
			}
			cur[ch.Key] = staticRow{version: row.version + 1}
			continue
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO static_data (flow_id, key, value, version, updated_at) VALUES ($1, $2, $3, 1, $4)
ON CONFLICT (flow_id, key) DO UPDATE
SET value = excluded.value, version = static_data.version + 1, updated_at = excluded.updated_at`,
			c.FlowID, ch.Key, string(after[i]), now); err != nil {
			return nil, fmt.Errorf("set key %q: %w", ch.Key, err)
		}
		cur[ch.Key] = staticRow{raw: after[i], version: row.version + 1}
	}
	return before, nil
}

// ResetStatic deletes every key of the flow's static data in one transaction, bumping each
// key's version so that a node that read the old data fails to commit.
func (s *Store) ResetStatic(ctx context.Context, flowID string) error {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := lockFlowStatic(ctx, tx, flowID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
UPDATE static_data SET value = NULL, version = version + 1, updated_at = $1
WHERE flow_id = $2 AND value IS NOT NULL`, time.Now().UnixMicro(), flowID)
		return err
	})
	if err != nil {
		return fmt.Errorf("reset static data of %s: %w", flowID, unavailable(err))
	}
	return nil
}

// EachStatic calls fn with every stored static value of every flow, ordered by flow and key;
// deleted keys are skipped. It reads one snapshot and stops at fn's first error, which it
// returns.
func (s *Store) EachStatic(ctx context.Context, fn func(flowID, key string, value any) error) error {
	rows, err := s.db.Query(ctx, `
SELECT flow_id, key, value FROM static_data WHERE value IS NOT NULL ORDER BY flow_id, key`)
	if err != nil {
		return fmt.Errorf("read static data: %w", unavailable(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			flowID, key string
			raw         []byte
		)
		if err := rows.Scan(&flowID, &key, &raw); err != nil {
			return fmt.Errorf("read static data: %w", err)
		}
		v, err := storage.DecodeValue(raw)
		if err != nil {
			return fmt.Errorf("read static data of %s: key %q: %w", flowID, key, err)
		}
		if err := fn(flowID, key, v); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read static data: %w", unavailable(err))
	}
	return nil
}

// RewriteStatic changes how static values are stored without changing what they are, as
// storage.SQLite.RewriteStatic does: in one transaction, which locks static data against
// writes by every process (reads go on), fn sees every stored value and the values it reports
// changed are written back with versions and update times kept. On fn's first error nothing
// is written. It returns how many values were rewritten.
func (s *Store) RewriteStatic(ctx context.Context, fn func(flowID, key string, value any) (any, bool, error)) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE static_data IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		type row struct {
			flowID, key string
			raw         []byte
		}
		var all []row
		rows, err := tx.Query(ctx, `
SELECT flow_id, key, value FROM static_data WHERE value IS NOT NULL ORDER BY flow_id, key`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.flowID, &r.key, &r.raw); err != nil {
				rows.Close()
				return err
			}
			all = append(all, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range all {
			v, err := storage.DecodeValue(r.raw)
			if err != nil {
				return fmt.Errorf("flow %s: key %q: %w", r.flowID, r.key, err)
			}
			out, changed, err := fn(r.flowID, r.key, v)
			if err != nil {
				return errFn{err}
			}
			if !changed {
				continue
			}
			b, err := storage.EncodeValue(out)
			if err != nil {
				return fmt.Errorf("flow %s: key %q: %w", r.flowID, r.key, err)
			}
			if _, err := tx.Exec(ctx, `UPDATE static_data SET value = $1 WHERE flow_id = $2 AND key = $3`,
				string(b), r.flowID, r.key); err != nil {
				return fmt.Errorf("flow %s: key %q: %w", r.flowID, r.key, err)
			}
			n++
		}
		return nil
	})
	var fe errFn
	if errors.As(err, &fe) {
		return 0, fe.err
	}
	if err != nil {
		return 0, fmt.Errorf("rewrite static data: %w", unavailable(err))
	}
	return n, nil
}

// errFn carries an error of a caller's function out of a transaction unwrapped.
type errFn struct{ err error }

func (e errFn) Error() string { return e.err.Error() }
func (e errFn) Unwrap() error { return e.err }
