package storage

import (
	"context"
	"fmt"
)

// EachStatic calls fn with every stored static value of every flow, ordered by flow and key;
// deleted keys are skipped. Values are decoded as LoadStatic decodes them and are the stored
// form (SealedStore does not open them here). It reads one snapshot and stops at fn's first
// error, which it returns.
func (s *SQLite) EachStatic(ctx context.Context, fn func(flowID, key string, value any) error) error {
	rows, err := s.r.QueryContext(ctx, `
SELECT flow_id, key, value FROM static_data WHERE value IS NOT NULL ORDER BY flow_id, key`)
	if err != nil {
		return fmt.Errorf("read static data: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			flowID, key string
			raw         []byte
			v           any
		)
		if err := rows.Scan(&flowID, &key, &raw); err != nil {
			return fmt.Errorf("read static data: %w", err)
		}
		if err := decodeJSON(raw, &v); err != nil {
			return fmt.Errorf("read static data of %s: key %q: %w", flowID, key, err)
		}
		if err := fn(flowID, key, v); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read static data: %w", err)
	}
	return nil
}

// RewriteStatic changes how static values are stored without changing what they are: in one
// write transaction it passes every stored value (deleted keys skipped) to fn, ordered by flow
// and key, and stores the value fn returns for each one it reports changed. Versions and
// update times stay as they are, so CommitStatic's conflict checks see no change. On fn's
// first error nothing is written and that error is returned. fn runs inside the transaction,
// holding the database's write lock: it must be quick and must not use the store. It returns
// how many values were rewritten.
func (s *SQLite) RewriteStatic(ctx context.Context, fn func(flowID, key string, value any) (any, bool, error)) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("rewrite static data: %w", err)
	}
	defer tx.Rollback()

	type row struct {
		flowID, key string
		raw         []byte
	}
	var all []row
	rows, err := tx.QueryContext(ctx, `
SELECT flow_id, key, value FROM static_data WHERE value IS NOT NULL ORDER BY flow_id, key`)
	if err != nil {
		return 0, fmt.Errorf("rewrite static data: %w", err)
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.flowID, &r.key, &r.raw); err != nil {
			rows.Close()
			return 0, fmt.Errorf("rewrite static data: %w", err)
		}
		all = append(all, r)
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("rewrite static data: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("rewrite static data: %w", err)
	}

	upd, err := tx.PrepareContext(ctx, `UPDATE static_data SET value = ? WHERE flow_id = ? AND key = ?`)
	if err != nil {
		return 0, fmt.Errorf("rewrite static data: %w", err)
	}
	defer upd.Close()
	n := 0
	for _, r := range all {
		var v any
		if err := decodeJSON(r.raw, &v); err != nil {
			return 0, fmt.Errorf("rewrite static data of %s: key %q: %w", r.flowID, r.key, err)
		}
		out, changed, err := fn(r.flowID, r.key, v)
		if err != nil {
			return 0, err
		}
		if !changed {
			continue
		}
		b, err := encodeJSON(out)
		if err != nil {
			return 0, fmt.Errorf("rewrite static data of %s: key %q: %w", r.flowID, r.key, err)
		}
		if _, err := upd.ExecContext(ctx, string(b), r.flowID, r.key); err != nil {
			return 0, fmt.Errorf("rewrite static data of %s: key %q: %w", r.flowID, r.key, err)
		}
		n++
	}
	err = tx.Commit()
	s.static.dropAll()
	if err != nil {
		return 0, fmt.Errorf("rewrite static data: %w", err)
	}
	return n, nil
}
