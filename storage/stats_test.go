package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

func TestCountRuns(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := t0.Add(48 * time.Hour)
	add := func(i int, flow string, age time.Duration, status engine.RunStatus) {
		t.Helper()
		// An id for a run started age ago, unique by i (NewRunID never goes back in time).
		id := engine.FirstRunIDAt(now.Add(-age))[:16] + fmt.Sprintf("%010d", i)
		r := testRun(id, flow, 0)
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if status != engine.StatusRunning {
			r.Status, r.FinishedAt = status, r.StartedAt.Add(time.Second)
			if err := s.FinishRun(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(1, "a", 25*time.Hour, engine.StatusError) // too old
	add(2, "a", 23*time.Hour, engine.StatusSuccess)
	add(3, "a", time.Hour, engine.StatusError)
	add(4, "a", time.Minute, engine.StatusCrashed)
	add(5, "a", time.Second, engine.StatusRunning)
	add(6, "a", 0, engine.StatusCanceled)
	add(7, "b", time.Minute, engine.StatusError) // another flow

	tests := []struct {
		flow string
		want engine.RunCounts
	}{
		{"a", engine.RunCounts{Total: 5, Failed: 2}},
		{"b", engine.RunCounts{Total: 1, Failed: 1}},
		{"none", engine.RunCounts{}},
	}
	for _, tt := range tests {
		got, err := s.CountRuns(ctx, tt.flow, now.Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("CountRuns(%q) = %+v, want %+v", tt.flow, got, tt.want)
		}
	}
}
