package postgres_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowd/flowd/engine"
	"github.com/flowd/flowd/storage/postgres"
	"github.com/flowd/flowd/storage/postgres/pgtest"
)

// listenRuns starts s listening and returns the notices it hears.
func listenRuns(t *testing.T, s *postgres.Store) <-chan postgres.RunNotice {
	t.Helper()
	ch := make(chan postgres.RunNotice, 100)
	stop, err := s.ListenRuns(context.Background(), func(n postgres.RunNotice) { ch <- n }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop) // registered after the store's Close, so it runs before it
	return ch
}

// next returns the next notice, failing the test after a long wait.
func next(t *testing.T, ch <-chan postgres.RunNotice) postgres.RunNotice {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(20 * time.Second):
		t.Fatal("no notice")
		return postgres.RunNotice{}
	}
}

// startAndFinish stores a run of flow that starts and succeeds.
func startAndFinish(t *testing.T, s *postgres.Store, flow string) *engine.Run {
	t.Helper()
	now := time.Now()
	r := &engine.Run{ID: engine.NewRunID(now), FlowID: flow, Status: engine.StatusRunning, StartedAt: now}
	if err := s.CreateRun(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	r.Status, r.FinishedAt = engine.StatusSuccess, time.Now()
	if err := s.FinishRun(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestListenRunsHearsOtherInstances(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	a, b := openStore(t, dsn, "a").Store, openStore(t, dsn, "b").Store
	heardByA, heardByB := listenRuns(t, a), listenRuns(t, b)

	ownRun := startAndFinish(t, a, "token-refresh")
	for _, want := range []engine.RunStatus{engine.StatusRunning, engine.StatusSuccess} {
		n := next(t, heardByB)
		if n != (postgres.RunNotice{ID: ownRun.ID, FlowID: "token-refresh", Status: want, Origin: "a"}) {
			t.Fatalf("b heard %+v, want a's run %s %s", n, ownRun.ID, want)
		}
	}
	// Notices arrive in commit order: the first a hears must be b's, not its own.
	other := startAndFinish(t, b, "hello")
	for _, want := range []engine.RunStatus{engine.StatusRunning, engine.StatusSuccess} {
		n := next(t, heardByA)
		if n != (postgres.RunNotice{ID: other.ID, FlowID: "hello", Status: want, Origin: "b"}) {
			t.Fatalf("a heard %+v, want b's run %s %s (and never its own run %s)", n, other.ID, want, ownRun.ID)
		}
	}

	// A flow id too long for a notice is left out of it and read back.
	long := strings.Repeat("\x01long", 2000)
	r := startAndFinish(t, a, long)
	if n := next(t, heardByB); n.ID != r.ID || n.FlowID != long || n.Status != engine.StatusRunning {
		t.Fatalf("the run of a long flow id: heard %+v", n)
	}
	next(t, heardByB)

	// A run left running by an instance with no heartbeat, marked crashed by b, is heard by
	// both — b too, since no instance told its pages.
	now := time.Now()
	dead := &engine.Run{ID: engine.NewRunID(now), FlowID: long, Status: engine.StatusRunning, StartedAt: now}
	if err := a.CreateRun(context.Background(), dead); err != nil {
		t.Fatal(err)
	}
	if n := next(t, heardByB); n.ID != dead.ID || n.Status != engine.StatusRunning {
		t.Fatalf("b heard %+v, want the start of %s", n, dead.ID)
	}
	if got, err := b.RecoverRuns(context.Background(), time.Now()); err != nil || got != 1 {
		t.Fatalf("recover runs: %d, %v", got, err)
	}
	for name, ch := range map[string]<-chan postgres.RunNotice{"a": heardByA, "b": heardByB} {
		if n := next(t, ch); n != (postgres.RunNotice{ID: dead.ID, FlowID: long, Status: engine.StatusCrashed}) {
			t.Errorf("%s heard %+v, want %s crashed without origin", name, n, dead.ID)
		}
	}
}

// TestListenRunsReconnects: when the server ends the listening session, the listener
// reconnects, says that notices may have been missed, and hears the next run.
func TestListenRunsReconnects(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	a, b := openStore(t, dsn, "a").Store, openStore(t, dsn, "b").Store
	heard := listenRuns(t, b)

	admin, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var ended int
	err = admin.QueryRow(context.Background(), `
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND query = 'LISTEN flowd_runs'`).Scan(&ended)
	if err != nil || ended != 1 {
		t.Fatalf("ending the listening session: %d ended, %v", ended, err)
	}
	if n := next(t, heard); !n.Resync {
		t.Fatalf("after the session ended: heard %+v, want a resync", n)
	}
	r := startAndFinish(t, a, "hello")
	if n := next(t, heard); n.ID != r.ID || n.Status != engine.StatusRunning {
		t.Fatalf("after reconnecting: heard %+v, want %s running", n, r.ID)
	}
}

// TestListenRunsStops: stop returns once the listening session is gone.
func TestListenRunsStops(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	s := openStore(t, dsn, "a").Store
	stop, err := s.ListenRuns(context.Background(), func(postgres.RunNotice) {}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	listeners := func() (n int) {
		err := admin.QueryRow(context.Background(), `
SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN flowd_runs'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := listeners(); n != 1 {
		t.Fatalf("%d listening sessions, want 1", n)
	}
	stop()
	// The server may see the client go a moment after it closed the socket.
	deadline := time.Now().Add(20 * time.Second)
	for listeners() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the listening session outlived stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
