package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowd/flowd/storage"
)

// ScheduleState returns the stored state of the flow's schedule trigger, and false when there
// is none. Times come back in UTC, to the microsecond.
func (s *Store) ScheduleState(ctx context.Context, flowID, trigger string) (storage.ScheduleState, bool, error) {
	var (
		st         storage.ScheduleState
		last, next *int64
	)
	err := s.db.QueryRow(ctx, `
SELECT spec, last_fire, next_fire FROM schedule_state WHERE flow_id = $1 AND trigger = $2`,
		flowID, trigger).Scan(&st.Spec, &last, &next)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ScheduleState{}, false, nil
	}
	if err != nil {
		return storage.ScheduleState{}, false, fmt.Errorf("read schedule state of %s/%s: %w", flowID, trigger, unavailable(err))
	}
	st.LastFire, st.NextFire = microsTime(last), microsTime(next)
	return st, true, nil
}

// SaveScheduleState stores st as the state of the flow's schedule trigger, replacing any
// earlier one. Times are kept to the microsecond.
func (s *Store) SaveScheduleState(ctx context.Context, flowID, trigger string, st storage.ScheduleState) error {
	if _, err := s.db.Exec(ctx, `
INSERT INTO schedule_state (flow_id, trigger, spec, last_fire, next_fire, updated_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (flow_id, trigger) DO UPDATE
SET spec = excluded.spec, last_fire = excluded.last_fire, next_fire = excluded.next_fire,
	updated_at = excluded.updated_at`,
		flowID, trigger, st.Spec, micros(st.LastFire), micros(st.NextFire), time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("save schedule state of %s/%s: %w", flowID, trigger, unavailable(err))
	}
	return nil
}
