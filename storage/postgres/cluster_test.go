package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage/postgres/pgtest"
)

// TestHeartbeatTimesAreTheDatabases checks that a heartbeat is stamped with the database's
// time whatever the caller's clock says, keeping the caller's ttl.
func TestHeartbeatTimesAreTheDatabases(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	s := openStore(t, dsn, "a").Store
	admin, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	dbNow := func() time.Time {
		t.Helper()
		var now time.Time
		if err := admin.QueryRow(context.Background(), `SELECT clock_timestamp()`).Scan(&now); err != nil {
			t.Fatal(err)
		}
		return now
	}

	ahead := time.Now().Add(time.Hour) // the caller's clock is an hour fast
	before := dbNow().Truncate(time.Microsecond)
	err = s.Heartbeat(context.Background(), engine.Instance{ID: "a", Host: "h", PID: 1, StartedAt: ahead,
		SeenAt: ahead, Expires: ahead.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	after := dbNow()
	live, err := s.Instances(context.Background(), ahead)
	if err != nil || len(live) != 1 {
		t.Fatalf("Instances = %+v, %v; want a", live, err)
	}
	in := live[0]
	if in.SeenAt.Before(before) || in.SeenAt.After(after) {
		t.Errorf("SeenAt %v; want the database's time, between %v and %v", in.SeenAt, before, after)
	}
	if ttl := in.Expires.Sub(in.SeenAt); ttl != time.Minute {
		t.Errorf("Expires is %s after SeenAt; want the caller's ttl of 1m", ttl)
	}
	if !in.StartedAt.Equal(ahead.Truncate(time.Microsecond)) {
		t.Errorf("StartedAt %v; want %v as the caller gave it", in.StartedAt, ahead)
	}
}

// TestClusterRejectsExpiriesNotAfterNow checks that a ttl of zero or less is an error rather
// than an entry or lease that is dead on arrival.
func TestClusterRejectsExpiriesNotAfterNow(t *testing.T) {
	t.Parallel()
	s := openStore(t, pgtest.NewDatabase(t), "a").Store
	ctx := context.Background()
	now := time.Now()
	for _, expires := range []time.Time{now, now.Add(-time.Second), now.Add(time.Nanosecond)} {
		err := s.Heartbeat(ctx, engine.Instance{ID: "a", Host: "h", PID: 1, StartedAt: now, SeenAt: now, Expires: expires})
		if err == nil {
			t.Errorf("Heartbeat expiring %s after it was seen: no error", expires.Sub(now))
		}
		if ok, err := s.AcquireLease(ctx, "l", "a", now, expires); err == nil || ok {
			t.Errorf("AcquireLease for %s = %v, %v; want an error", expires.Sub(now), ok, err)
		}
	}
	if live, err := s.Instances(ctx, now); err != nil || len(live) != 0 {
		t.Errorf("Instances after rejected heartbeats = %+v, %v; want none", live, err)
	}
	if ok, err := s.AcquireLease(ctx, "l", "b", now, now.Add(time.Minute)); err != nil || !ok {
		t.Errorf("lease after rejected acquisitions = %v, %v; want it free", ok, err)
	}
}
