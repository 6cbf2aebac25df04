package storagetest

import (
	"slices"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage"
)

var scheduleTests = []test{
	{"state round trip", func(t *testing.T, open Opener) {
		s := open(t)
		if _, ok, err := s.ScheduleState(ctx(t), "f", "every"); ok || err != nil {
			t.Fatalf("state of an unknown trigger: ok %v, %v", ok, err)
		}
		local := time.FixedZone("x", 3600)
		want := storage.ScheduleState{Spec: "interval:30s", LastFire: t0.In(local).Add(789 * time.Nanosecond)}
		if err := s.SaveScheduleState(ctx(t), "f", "every", want); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.ScheduleState(ctx(t), "f", "every")
		if err != nil || !ok {
			t.Fatalf("ScheduleState: ok %v, %v", ok, err)
		}
		if got != (storage.ScheduleState{Spec: "interval:30s", LastFire: t0}) {
			t.Errorf("state = %+v, want the saved one in UTC to the µs, no next fire", got)
		}
		want = storage.ScheduleState{Spec: "cron:* * * * *@UTC", LastFire: t0, NextFire: t0.Add(time.Minute)}
		if err := s.SaveScheduleState(ctx(t), "f", "every", want); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := s.ScheduleState(ctx(t), "f", "every"); got != want {
			t.Errorf("replaced state = %+v, want %+v", got, want)
		}
		if _, ok, _ := s.ScheduleState(ctx(t), "f", "other"); ok {
			t.Error("another trigger of the flow has the state")
		}
	}},
}

var retentionTests = []test{
	{"prune by age and count", func(t *testing.T, open Opener) {
		s := open(t)
		now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
		mk := func(flow string, at time.Time, running bool) string {
			r := runningRun(testID(at), flow, at)
			create(t, s, r)
			if !running {
				r.Status, r.FinishedAt = engine.StatusSuccess, at.Add(time.Millisecond)
				if err := s.FinishRun(ctx(t), r); err != nil {
					t.Fatal(err)
				}
			}
			return r.ID
		}
		oldDone := mk("a", now.Add(-72*time.Hour), false)
		oldRunning := mk("a", now.Add(-72*time.Hour), true)
		var recentA []string
		for i := range 5 {
			recentA = append(recentA, mk("a", now.Add(-time.Duration(5-i)*time.Minute), false))
		}
		recentB := mk("b", now.Add(-time.Minute), false)

		res, err := s.Prune(ctx(t), storage.Retention{MaxAge: 48 * time.Hour}, now)
		if err != nil || res.ByAge != 1 || res.ByCount != 0 {
			t.Fatalf("Prune by age = %+v, %v; want 1 deleted by age", res, err)
		}
		if _, err := s.GetRun(ctx(t), oldDone); err == nil {
			t.Error("an old finished run survived")
		}
		res, err = s.Prune(ctx(t), storage.Retention{MaxRunsPerFlow: 3}, now)
		if err != nil || res.ByCount != 2 {
			t.Fatalf("Prune by count = %+v, %v; want 2 deleted", res, err)
		}
		var left []string
		for _, r := range list(t, s, engine.RunFilter{Limit: 100}) {
			left = append(left, r.ID)
		}
		want := append([]string{oldRunning, recentA[3], recentA[4], recentB}, recentA[2])
		slices.Sort(left)
		slices.Sort(want)
		if !slices.Equal(left, want) {
			t.Errorf("left %v, want %v (running runs count but are kept)", left, want)
		}
		if _, err := s.Prune(ctx(t), storage.Retention{MaxAge: -time.Second}, now); err == nil {
			t.Error("a negative retention was accepted")
		}
	}},
}

var healthTests = []test{
	{"ping", func(t *testing.T, open Opener) {
		if err := open(t).Ping(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}},
}
