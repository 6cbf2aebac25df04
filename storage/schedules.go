package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ScheduleState is what flowd keeps about one schedule trigger between restarts, so that a
// restart knows which ticks it missed.
type ScheduleState struct {
	// Spec is the schedule's definition as the scheduler wrote it, e.g.
	// "cron:*/5 * * * *@UTC" or "interval:30s". A stored state whose Spec differs from the
	// trigger's current one describes an older schedule.
	Spec string
	// LastFire is the time up to which the scheduler has dealt with the schedule's ticks: its
	// latest tick fired (or skipped because the previous run still ran), or when this Spec
	// took effect. Ticks after it that are already due were missed. NextFire is the tick the
	// scheduler expects next. The zero time means none and is stored as NULL.
	LastFire, NextFire time.Time
}

// ScheduleState returns the stored state of the flow's schedule trigger, and false when there
// is none. Times come back in UTC, to the microsecond.
func (s *SQLite) ScheduleState(ctx context.Context, flowID, trigger string) (ScheduleState, bool, error) {
	var (
		st         ScheduleState
		last, next sql.NullInt64
	)
	err := s.r.QueryRowContext(ctx, `
SELECT spec, last_fire, next_fire FROM schedule_state
WHERE flow_id = ? AND trigger = ?`, flowID, trigger).Scan(&st.Spec, &last, &next)
	if errors.Is(err, sql.ErrNoRows) {
		return ScheduleState{}, false, nil
	}
	if err != nil {
		return ScheduleState{}, false, fmt.Errorf("read schedule state of %s/%s: %w", flowID, trigger, err)
	}
	st.LastFire = microsTime(last)
	st.NextFire = microsTime(next)
	return st, true, nil
}

// SaveScheduleState stores st as the state of the flow's schedule trigger, replacing any
// earlier one. Times are kept to the microsecond.
func (s *SQLite) SaveScheduleState(ctx context.Context, flowID, trigger string, st ScheduleState) error {
	if _, err := s.w.ExecContext(ctx, `
INSERT INTO schedule_state (flow_id, trigger, spec, last_fire, next_fire, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (flow_id, trigger) DO UPDATE
SET spec = excluded.spec, last_fire = excluded.last_fire, next_fire = excluded.next_fire,
	updated_at = excluded.updated_at`,
		flowID, trigger, st.Spec, micros(st.LastFire), micros(st.NextFire), time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("save schedule state of %s/%s: %w", flowID, trigger, err)
	}
	return nil
}

// microsTime is the time of a nullable unix-microseconds column, in UTC; NULL is the zero time.
func microsTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}
