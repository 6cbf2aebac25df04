package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// bigRun is a finished run with about n bytes of node payload.
func bigRun(id string, n int) *engine.Run {
	r := finishedRun(id)
	r.Nodes[0].Output = [][]engine.Item{{{"blob": strings.Repeat("x", n)}}}
	return r
}

func TestFullDatabaseIsUnavailableUntilItHasRoom(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var pages int64
	if err := s.w.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	// A database that may not grow is what a full disk looks like to SQLite: SQLITE_FULL.
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		r := testRun(engine.NewRunID(time.Now()), "full", i)
		if err = s.CreateRun(ctx, r); err == nil {
			err = s.FinishRun(ctx, bigRun(r.ID, 64<<10))
		}
	}
	if !errors.Is(err, engine.ErrStoreUnavailable) || !strings.Contains(err.Error(), "full") {
		t.Fatalf("writes to a full database: %v; want ErrStoreUnavailable saying it is full", err)
	}
	// A conflict is not a fault, nor is a store that is fine.
	if err := s.CommitStatic(ctx, &engine.StaticCommit{FlowID: "f", Reads: map[string]int64{"k": 7}}); !errors.Is(err, engine.ErrStaticConflict) || errors.Is(err, engine.ErrStoreUnavailable) {
		t.Fatalf("conflict: %v", err)
	}

	if _, err := s.w.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
		t.Fatal(err)
	}
	r := testRun(engine.NewRunID(time.Now()), "full", 0)
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatalf("after room was made: %v", err)
	}
	if err := s.FinishRun(ctx, bigRun(r.ID, 64<<10)); err != nil {
		t.Fatalf("after room was made: %v", err)
	}
}

func TestReadOnlyDatabaseDegradesPingUntilWritable(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// query_only fails every write with SQLITE_READONLY, as a read-only file does.
	if _, err := s.w.ExecContext(ctx, "PRAGMA query_only = 1"); err != nil {
		t.Fatal(err)
	}
	err := s.CreateRun(ctx, testRun(engine.NewRunID(time.Now()), "ro", 0))
	if !errors.Is(err, engine.ErrStoreUnavailable) {
		t.Fatalf("CreateRun on a read-only database: %v", err)
	}
	err = s.CommitStatic(ctx, &engine.StaticCommit{FlowID: "ro", Changes: []engine.StaticChange{{Key: "k", After: 1}}})
	if !errors.Is(err, engine.ErrStoreUnavailable) {
		t.Fatalf("CommitStatic on a read-only database: %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, engine.ErrStoreUnavailable) {
		t.Fatalf("Ping of a read-only database: %v", err)
	}

	if _, err := s.w.ExecContext(ctx, "PRAGMA query_only = 0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping once writable again: %v", err)
	}
	if err := s.CreateRun(ctx, testRun(engine.NewRunID(time.Now()), "ro", 1)); err != nil {
		t.Fatalf("CreateRun once writable again: %v", err)
	}
}

func TestQueueCreateRun(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := testRun(engine.NewRunID(time.Now()), "queued", 0)
	wait, err := s.QueueCreateRun(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	fin := finishedRun(r.ID)
	fin.FlowID = "queued"
	if err := s.FinishRun(ctx, fin); err != nil {
		t.Fatalf("FinishRun right after QueueCreateRun: %v", err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatalf("a second wait: %v", err)
	}
	got, err := s.GetRun(ctx, r.ID)
	if err != nil || got.Status != fin.Status || len(got.Nodes) != len(fin.Nodes) {
		t.Fatalf("stored run: %+v, %v", got, err)
	}

	// While the database takes no writes, the record is written at once, and fails at once.
	if _, err := s.w.ExecContext(ctx, "PRAGMA query_only = 1"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRun(ctx, testRun(engine.NewRunID(time.Now()), "queued", 1)); !errors.Is(err, engine.ErrStoreUnavailable) {
		t.Fatalf("CreateRun on a read-only database: %v", err)
	}
	if _, err := s.QueueCreateRun(ctx, testRun(engine.NewRunID(time.Now()), "queued", 2)); !errors.Is(err, engine.ErrStoreUnavailable) {
		t.Fatalf("QueueCreateRun on a database known not to take writes: %v", err)
	}
	if _, err := s.w.ExecContext(ctx, "PRAGMA query_only = 0"); err != nil {
		t.Fatal(err)
	}
}
