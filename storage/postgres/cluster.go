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

// dbNow is the database server's clock in Unix microseconds, the unit of every time column.
// Every expiry is anchored on it and compared with it, so that the instances' clocks — which
// may disagree by minutes — never decide who is alive or who holds a lease: only the
// durations the callers pass count. now() is fixed for the statement (these run outside an
// explicit transaction), so one statement reads one time however often it names it.
const dbNow = `(floor(extract(epoch FROM now()) * 1000000))::bigint`

// ttlOf is the duration between a caller's now and expires, which the store anchors on its
// own clock; an expiry not after now, or less than the columns' microsecond apart, is an error.
func ttlOf(now, expires time.Time) (time.Duration, error) {
	ttl := expires.Sub(now)
	if ttl < time.Microsecond {
		return 0, fmt.Errorf("expiry %s is %s after now %s; want at least 1µs",
			expires.Format(time.RFC3339Nano), ttl, now.Format(time.RFC3339Nano))
	}
	return ttl, nil
}

// Heartbeat records inst as alive for inst.Expires − inst.SeenAt from the database's current
// time, inserting or replacing its entry: the entry's SeenAt and Expires are read on the
// database's clock, not the caller's. StartedAt is stored as given.
func (s *Store) Heartbeat(ctx context.Context, inst engine.Instance) error {
	ttl, err := ttlOf(inst.SeenAt, inst.Expires)
	if err != nil {
		return fmt.Errorf("heartbeat of %s: %w", inst.ID, err)
	}
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
VALUES ($1, $2, $3, $4, `+dbNow+`, `+dbNow+` + $5, $6)
ON CONFLICT (id) DO UPDATE
SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
	seen_at = excluded.seen_at, expires = excluded.expires, flows = excluded.flows`,
		inst.ID, inst.Host, inst.PID, inst.StartedAt.UnixMicro(), ttl.Microseconds(), string(doc)); err != nil {
		return fmt.Errorf("heartbeat of %s: %w", inst.ID, unavailable(err))
	}
	return nil
}

// Instances lists the instances whose heartbeat has not expired by the database's clock,
// oldest first (by start, then id); the caller's now is not used.
func (s *Store) Instances(ctx context.Context, _ time.Time) ([]engine.Instance, error) {
	rows, err := s.db.Query(ctx, `
SELECT id, host, pid, started_at, seen_at, expires, flows::text FROM instances
WHERE expires > `+dbNow+` ORDER BY started_at, id`)
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

// AcquireLease takes the named lease for holder, for expires − now from the database's
// current time, when it is free or expired by the database's clock, or renews it when holder
// holds it, in one statement: of two instances racing for it, one wins. It reports whether
// holder holds the lease afterwards.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now, expires time.Time) (bool, error) {
	ttl, err := ttlOf(now, expires)
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	rows, err := s.db.Query(ctx, `
INSERT INTO leases (name, holder, expires) VALUES ($1, $2, `+dbNow+` + $3)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
WHERE leases.holder = excluded.holder OR leases.expires <= `+dbNow+`
RETURNING holder`, name, holder, ttl.Microseconds())
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

// RecoverRuns marks as crashed, finished at now, the runs still running that were started by
// an instance with no live heartbeat by the database's clock — runs of an instance that never
// beat included — and returns how many it marked. now is only the runs' finish time, on the
// caller's clock like the times of the runs it records. Each run's error names the instance. Each run marked is announced on
// runsChannel (notify.go) without an origin, in the same statement: no instance has told
// its pages about it.
func (s *Store) RecoverRuns(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.db.Exec(ctx, `
WITH w AS (
	UPDATE runs SET status = $1, finished_at = $2,
		error = CASE WHEN instance_id = '' THEN $3
			ELSE 'flowd instance ' || instance_id || ' stopped while the run was in progress' END
	WHERE status = $4 AND NOT EXISTS (
		SELECT 1 FROM instances i WHERE i.id = runs.instance_id AND i.expires > `+dbNow+`)
	RETURNING id, flow_id),
n AS (SELECT jsonb_build_object('id', id, 'status', $1::text) AS short,
	jsonb_build_object('id', id, 'status', $1::text, 'flowId', flow_id) AS long FROM w)
SELECT pg_notify('`+runsChannel+`', CASE WHEN octet_length(long::text) <= $5 THEN long ELSE short END::text) FROM n`,
		string(engine.StatusCrashed), now.UnixMicro(), storage.CrashedRunError, string(engine.StatusRunning), maxNoticeBytes)
	if err != nil {
		return 0, fmt.Errorf("recover runs: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}
