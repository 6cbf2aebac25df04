package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

// tickRetention is how long claimed schedule ticks are kept: far longer than two instances
// can disagree about who fires a tick.
const tickRetention = 24 * time.Hour

// Heartbeat records inst as alive until inst.Expires, inserting or replacing its entry.
func (s *Store) Heartbeat(ctx context.Context, inst engine.Instance) error {
	flows := inst.Flows
	if flows == nil {
		flows = map[string]string{}
	}
	doc, err := json.Marshal(flows)
	if err != nil {
		return fmt.Errorf("heartbeat of %s: %w", inst.ID, err)
	}
	if _, err := s.db.Exec(ctx, `
INSERT INTO instances (id, host, pid, started_at, seen_at, expires, flows)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE
SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
	seen_at = excluded.seen_at, expires = excluded.expires, flows = excluded.flows`,
		inst.ID, inst.Host, inst.PID, inst.StartedAt.UnixMicro(), inst.SeenAt.UnixMicro(),
		inst.Expires.UnixMicro(), string(doc)); err != nil {
		return fmt.Errorf("heartbeat of %s: %w", inst.ID, unavailable(err))
	}
	return nil
}

// Instances lists the instances whose heartbeat has not expired at now, oldest first (by
// start, then id).
func (s *Store) Instances(ctx context.Context, now time.Time) ([]engine.Instance, error) {
	rows, err := s.db.Query(ctx, `
SELECT id, host, pid, started_at, seen_at, expires, flows::text FROM instances
WHERE expires > $1 ORDER BY started_at, id`, now.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", unavailable(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (engine.Instance, error) {
		var (
			in                     engine.Instance
			started, seen, expires int64
			flows                  []byte
		)
		if err := row.Scan(&in.ID, &in.Host, &in.PID, &started, &seen, &expires, &flows); err != nil {
			return in, err
		}
		in.StartedAt = time.UnixMicro(started).UTC()
		in.SeenAt = time.UnixMicro(seen).UTC()
		in.Expires = time.UnixMicro(expires).UTC()
		if err := json.Unmarshal(flows, &in.Flows); err != nil {
			return in, fmt.Errorf("instance %s: flows: %w", in.ID, err)
		}
		return in, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", unavailable(err))
	}
	if out == nil {
		out = []engine.Instance{}
	}
	return out, nil
}

// Leave removes the instance's entry and releases its leases, in one transaction.
func (s *Store) Leave(ctx context.Context, id string) error {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM leases WHERE holder = $1`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM instances WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("leave %s: %w", id, unavailable(err))
	}
	return nil
}

// AcquireLease takes the named lease for holder until expires when it is free or expired at
// now, or renews it when holder holds it, in one statement: of two instances racing for it,
// one wins. It reports whether holder holds the lease afterwards.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now, expires time.Time) (bool, error) {
	rows, err := s.db.Query(ctx, `
INSERT INTO leases (name, holder, expires) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
WHERE leases.holder = excluded.holder OR leases.expires <= $4
RETURNING holder`, name, holder, expires.UnixMicro(), now.UnixMicro())
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, unavailable(err))
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, unavailable(err))
	}
	return len(got) == 1, nil
}

// ReleaseLease gives the lease up when holder holds it; otherwise it does nothing.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, unavailable(err))
	}
	return nil
}

// ClaimTick records that holder fires the trigger's tick at the given time; false when that
// tick was claimed already, by anyone. Ticks more than a day older than this one are deleted
// on the way.
func (s *Store) ClaimTick(ctx context.Context, flowID, trigger string, tick time.Time, holder string) (bool, error) {
	var claimed bool
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
INSERT INTO ticks (flow_id, trigger, tick, holder) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING`, flowID, trigger, tick.UnixMicro(), holder)
		if err != nil {
			return err
		}
		claimed = tag.RowsAffected() == 1
		_, err = tx.Exec(ctx, `DELETE FROM ticks WHERE tick < $1`, tick.Add(-tickRetention).UnixMicro())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim tick %s of %s/%s: %w", tick.Format(time.RFC3339Nano), flowID, trigger, unavailable(err))
	}
	return claimed, nil
}

// RecoverRuns marks as crashed the runs still running that were started by an instance with
// no live heartbeat at now — runs of an instance that never beat included — and returns how
// many it marked. Each run's error names the instance. Each run marked is announced on
// runsChannel (notify.go) without an origin, in the same statement: no instance has told
// its pages about it.
func (s *Store) RecoverRuns(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.db.Exec(ctx, `
WITH w AS (
	UPDATE runs SET status = $1, finished_at = $2,
		error = CASE WHEN instance_id = '' THEN $3
			ELSE 'flowd instance ' || instance_id || ' stopped while the run was in progress' END
	WHERE status = $4 AND NOT EXISTS (
		SELECT 1 FROM instances i WHERE i.id = runs.instance_id AND i.expires > $5)
	RETURNING id, flow_id),
n AS (SELECT jsonb_build_object('id', id, 'status', $1::text) AS short,
	jsonb_build_object('id', id, 'status', $1::text, 'flowId', flow_id) AS long FROM w)
SELECT pg_notify('`+runsChannel+`', CASE WHEN octet_length(long::text) <= $6 THEN long ELSE short END::text) FROM n`,
		string(engine.StatusCrashed), now.UnixMicro(), storage.CrashedRunError, string(engine.StatusRunning), now.UnixMicro(), maxNoticeBytes)
	if err != nil {
		return 0, fmt.Errorf("recover runs: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}
