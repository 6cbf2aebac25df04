package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestScheduleStateRoundTrip(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	last := time.Date(2026, 3, 1, 12, 0, 0, 123456789, berlin)
	tests := []struct {
		name string
		in   ScheduleState
		want ScheduleState
	}{
		{
			"both times, kept to the microsecond in UTC",
			ScheduleState{Spec: "cron:*/5 * * * *@UTC", LastFire: last, NextFire: last.Add(5 * time.Minute)},
			ScheduleState{Spec: "cron:*/5 * * * *@UTC", LastFire: last.Truncate(time.Microsecond).UTC(), NextFire: last.Add(5 * time.Minute).Truncate(time.Microsecond).UTC()},
		},
		{
			"no last fire",
			ScheduleState{Spec: "interval:30s", NextFire: last},
			ScheduleState{Spec: "interval:30s", NextFire: last.Truncate(time.Microsecond).UTC()},
		},
		{
			"no times at all",
			ScheduleState{Spec: "interval:1m0s"},
			ScheduleState{Spec: "interval:1m0s"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flowID := fmt.Sprint("flow", i)
			if err := s.SaveScheduleState(ctx, flowID, "Every", tt.in); err != nil {
				t.Fatal(err)
			}
			got, ok, err := s.ScheduleState(ctx, flowID, "Every")
			if err != nil || !ok {
				t.Fatalf("read: ok %v, err %v", ok, err)
			}
			if got.Spec != tt.want.Spec || !got.LastFire.Equal(tt.want.LastFire) || !got.NextFire.Equal(tt.want.NextFire) {
				t.Fatalf("read %+v, want %+v", got, tt.want)
			}
			if got.LastFire.Location() != time.UTC || got.NextFire.Location() != time.UTC {
				t.Errorf("times not in UTC: %v, %v", got.LastFire.Location(), got.NextFire.Location())
			}
			if tt.want.LastFire.IsZero() != got.LastFire.IsZero() || tt.want.NextFire.IsZero() != got.NextFire.IsZero() {
				t.Errorf("zero times not kept as zero: %+v", got)
			}
		})
	}
}

func TestScheduleStateNullColumns(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if err := s.SaveScheduleState(ctx, "f", "Every", ScheduleState{Spec: "interval:1s"}); err != nil {
		t.Fatal(err)
	}
	var lastNull, nextNull bool
	var updated int64
	if err := s.r.QueryRowContext(ctx, `
SELECT last_fire IS NULL, next_fire IS NULL, updated_at FROM schedule_state
WHERE flow_id = 'f' AND trigger = 'Every'`).Scan(&lastNull, &nextNull, &updated); err != nil {
		t.Fatal(err)
	}
	if !lastNull || !nextNull {
		t.Errorf("zero times stored as last_fire NULL %v, next_fire NULL %v; want both NULL", lastNull, nextNull)
	}
	if updated <= 0 {
		t.Errorf("updated_at = %d", updated)
	}
}

func TestScheduleStateAbsentAndKeyed(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if _, ok, err := s.ScheduleState(ctx, "nope", "Every"); ok || err != nil {
		t.Fatalf("absent state: ok %v, err %v; want false, nil", ok, err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	save := map[[2]string]ScheduleState{
		{"a", "Every"}: {Spec: "interval:1s", LastFire: t0},
		{"a", "Daily"}: {Spec: "cron:0 9 * * *@UTC", LastFire: t0.Add(time.Hour)},
		{"b", "Every"}: {Spec: "interval:2s", LastFire: t0.Add(2 * time.Hour)},
	}
	for k, st := range save {
		if err := s.SaveScheduleState(ctx, k[0], k[1], st); err != nil {
			t.Fatal(err)
		}
	}
	for k, want := range save {
		got, ok, err := s.ScheduleState(ctx, k[0], k[1])
		if err != nil || !ok || got.Spec != want.Spec || !got.LastFire.Equal(want.LastFire) {
			t.Errorf("%s/%s: read %+v (ok %v, err %v), want %+v", k[0], k[1], got, ok, err, want)
		}
	}
	if _, ok, _ := s.ScheduleState(ctx, "b", "Daily"); ok {
		t.Error("b/Daily has a state; only a/Daily was saved")
	}
}

func TestScheduleStateReplaces(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []ScheduleState{
		{Spec: "interval:1m0s", LastFire: t0, NextFire: t0.Add(time.Minute)},
		{Spec: "interval:1m0s", LastFire: t0.Add(time.Minute), NextFire: t0.Add(2 * time.Minute)},
		{Spec: "cron:0 * * * *@UTC", NextFire: t0.Add(time.Hour)}, // a new spec clears LastFire
	}
	for i, st := range steps {
		if err := s.SaveScheduleState(ctx, "f", "T", st); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.ScheduleState(ctx, "f", "T")
		if err != nil || !ok {
			t.Fatalf("step %d: ok %v, err %v", i, ok, err)
		}
		if got.Spec != st.Spec || !got.LastFire.Equal(st.LastFire) || !got.NextFire.Equal(st.NextFire) {
			t.Fatalf("step %d: read %+v, want %+v", i, got, st)
		}
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schedule_state`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
}

// TestScheduleStateSurvivesReopen checks the state is durable: a new process (here: a new
// store on the same file) reads what the last one saved.
func TestScheduleStateSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "flowd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	want := ScheduleState{Spec: "interval:1m0s", LastFire: time.UnixMicro(1_700_000_000_000_000).UTC(), NextFire: time.UnixMicro(1_700_000_060_000_000).UTC()}
	if err := s.SaveScheduleState(ctx, "f", "Every", want); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, ok, err := s.ScheduleState(ctx, "f", "Every")
	if err != nil || !ok || got != want {
		t.Fatalf("after reopen: %+v (ok %v, err %v), want %+v", got, ok, err, want)
	}
}

// TestScheduleStateConcurrentWriters saves many triggers' states at once, as concurrent
// schedule fires do, and expects no "database is locked".
func TestScheduleStateConcurrentWriters(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	const writers, each = 8, 25
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				st := ScheduleState{Spec: "interval:1s", LastFire: t0.Add(time.Duration(i) * time.Second), NextFire: t0.Add(time.Duration(i+1) * time.Second)}
				if err := s.SaveScheduleState(ctx, fmt.Sprint("flow", w), "Every", st); err != nil {
					errs <- err
				}
				if _, _, err := s.ScheduleState(ctx, fmt.Sprint("flow", w), "Every"); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range writers {
		got, ok, err := s.ScheduleState(ctx, fmt.Sprint("flow", w), "Every")
		if err != nil || !ok || !got.LastFire.Equal(t0.Add((each-1)*time.Second)) {
			t.Errorf("flow%d: %+v (ok %v, err %v)", w, got, ok, err)
		}
	}
}
