package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// holdWriter keeps the writer from starting its next batch until release is called, so that
// the writes queued meanwhile are committed together.
func holdWriter(t *testing.T, s *SQLite) (release func()) {
	t.Helper()
	s.wr.gate.Lock()
	var once sync.Once
	release = func() { once.Do(s.wr.gate.Unlock) }
	t.Cleanup(release)
	return release
}

// queueOp queues the write CreateRun (opCreate) or FinishRun (opFinish) would make of r,
// without waiting for it.
func queueOp(t *testing.T, s *SQLite, kind opKind, r *engine.Run) *runOp {
	t.Helper()
	op := &runOp{kind: kind, row: newRunRow(r), done: make(chan error, 1)}
	if kind == opFinish {
		nodes, err := encodeNodes(r)
		if err != nil {
			t.Fatal(err)
		}
		op.nodes = nodes
	}
	s.wr.queue <- op
	return op
}

// outcome waits for the writer's answer to op.
func outcome(t *testing.T, op *runOp) error {
	t.Helper()
	select {
	case err := <-op.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("no outcome for the write of run %s", op.row.id)
		return nil
	}
}

// await polls cond until it holds, failing the test after 30 s.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// finished is r finished successfully with the nodes of finishedRun.
func finished(r *engine.Run) *engine.Run {
	f := *r
	f.Status, f.FinishedAt, f.Nodes = engine.StatusSuccess, r.StartedAt.Add(time.Second), finishedRun(r.ID).Nodes
	return &f
}

func countRows(t *testing.T, s *SQLite, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.w.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWriterConcurrentRecords(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	const goroutines, each = 64, 40
	ids := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range each {
				r := testRun(engine.NewRunID(time.Now()), fmt.Sprint("flow-", g%3), 0)
				if err := s.CreateRun(ctx, r); err != nil {
					t.Errorf("create: %v", err)
					return
				}
				if err := s.FinishRun(ctx, finished(r)); err != nil {
					t.Errorf("finish: %v", err)
					return
				}
				ids[g] = append(ids[g], r.ID)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if n := countRows(t, s, `SELECT count(*) FROM runs`); n != goroutines*each {
		t.Errorf("%d runs stored, want %d", n, goroutines*each)
	}
	if n := countRows(t, s, `SELECT count(*) FROM runs WHERE nodes IS NOT NULL`); n != goroutines*each {
		t.Errorf("%d node records stored, want %d", n, goroutines*each)
	}
	for _, list := range ids {
		for _, id := range list {
			got, err := s.GetRun(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != engine.StatusSuccess || len(got.Nodes) != 4 {
				t.Fatalf("run %s: %s with %d nodes", id, got.Status, len(got.Nodes))
			}
		}
	}
	t.Logf("%d writes in %d transactions", 2*goroutines*each, s.wr.commits.Load())
}

func TestWriterCommitsQueuedWritesTogether(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	// Count updates of runs: a FinishRun written with its CreateRun makes none.
	for _, q := range []string{
		`CREATE TEMP TABLE updates (id TEXT)`,
		`CREATE TEMP TRIGGER count_updates AFTER UPDATE ON main.runs BEGIN INSERT INTO updates VALUES (new.id); END`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	early := testRun("early", "f", 0)
	if err := s.CreateRun(ctx, early); err != nil {
		t.Fatal(err)
	}
	before := s.wr.commits.Load()

	release := holdWriter(t, s)
	const n = 100
	var ops []*runOp
	var runs []*engine.Run
	for i := range n {
		r := testRun(fmt.Sprintf("r%03d", i), "f", i)
		runs = append(runs, r)
		ops = append(ops, queueOp(t, s, opCreate, r))
	}
	for _, r := range runs {
		ops = append(ops, queueOp(t, s, opFinish, finished(r)))
	}
	ops = append(ops, queueOp(t, s, opFinish, finished(early)))
	release()
	for _, op := range ops {
		if err := outcome(t, op); err != nil {
			t.Fatalf("run %s: %v", op.row.id, err)
		}
	}

	if got := s.wr.commits.Load() - before; got != 1 {
		t.Errorf("%d transactions for %d queued writes, want 1", got, len(ops))
	}
	if n := countRows(t, s, `SELECT count(*) FROM temp.updates`); n != 1 {
		t.Errorf("%d updates of runs, want 1 (of the run created in an earlier batch)", n)
	}
	for _, r := range append(runs[:3], early) {
		got, err := s.GetRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := finished(r); !runsEqual(got, want) {
			t.Errorf("run %s:\ngot  %+v\nwant %+v", r.ID, got, want)
		}
	}
}

// runsEqual compares a stored run with the run recorded (see normalized).
func runsEqual(got, want *engine.Run) bool {
	return reflect.DeepEqual(got, normalized(want))
}

func TestWriterFailsOnlyBadWrites(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	taken := testRun("taken", "first", 0)
	if err := s.CreateRun(ctx, taken); err != nil {
		t.Fatal(err)
	}

	release := holdWriter(t, s)
	a, d := testRun("a", "f", 0), testRun("d", "f", 1)
	dup := testRun("taken", "second", 2)
	ghost := testRun("ghost", "f", 3)
	createA := queueOp(t, s, opCreate, a)
	createDup := queueOp(t, s, opCreate, dup)
	finishGhost := queueOp(t, s, opFinish, finished(ghost))
	createD := queueOp(t, s, opCreate, d)
	finishA := queueOp(t, s, opFinish, finished(a))
	release()

	for _, tt := range []struct {
		op      *runOp
		wantErr func(error) bool
	}{
		{createA, func(err error) bool { return err == nil }},
		{createDup, func(err error) bool { return err != nil && strings.Contains(err.Error(), "UNIQUE") }},
		{finishGhost, func(err error) bool { return errors.Is(err, ErrNotFound) }},
		{createD, func(err error) bool { return err == nil }},
		{finishA, func(err error) bool { return err == nil }},
	} {
		if err := outcome(t, tt.op); !tt.wantErr(err) {
			t.Errorf("write of %s (kind %d): unexpected outcome %v", tt.op.row.id, tt.op.kind, err)
		}
	}
	for id, want := range map[string]engine.RunStatus{"a": engine.StatusSuccess, "d": engine.StatusRunning, "taken": engine.StatusRunning} {
		got, err := s.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != want {
			t.Errorf("run %s is %s, want %s", id, got.Status, want)
		}
		if id == "taken" && got.FlowID != "first" {
			t.Errorf("run taken belongs to %s after a duplicate create, want first", got.FlowID)
		}
	}
	if _, err := s.GetRun(ctx, "ghost"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ghost run: %v", err)
	}
}

func TestWriterCancelledWhileQueued(t *testing.T) {
	s := openTest(t)
	release := holdWriter(t, s)
	// The writer takes one write off the queue before it waits: give it one.
	blocker := queueOp(t, s, opCreate, testRun("blocker", "f", 0))
	await(t, "the writer to take the first write", func() bool { return len(s.wr.queue) == 0 })

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.CreateRun(ctx, testRun("cancelled", "f", 1)) }()
	await(t, "the write to queue", func() bool { return len(s.wr.queue) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateRun = %v, want context.Canceled", err)
	}
	release()
	if err := outcome(t, blocker); err != nil {
		t.Fatal(err)
	}
	// The writer has passed the cancelled write by now: it was in blocker's batch.
	if _, err := s.GetRun(context.Background(), "cancelled"); !errors.Is(err, ErrNotFound) {
		t.Errorf("cancelled run: GetRun = %v, want ErrNotFound", err)
	}
	if err := s.CreateRun(context.Background(), testRun("cancelled", "f", 1)); err != nil {
		t.Errorf("creating the cancelled run again: %v", err)
	}

	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.CreateRun(ctx, testRun("never", "f", 2)); !errors.Is(err, context.Canceled) {
			t.Fatalf("CreateRun = %v, want context.Canceled", err)
		}
		if _, err := s.GetRun(context.Background(), "never"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetRun = %v, want ErrNotFound", err)
		}
	})
}

// A caller whose ctx ends after the writer took its write waits for the write's outcome, so
// that an error always means "not written".
func TestWriterTakenWriteOutlivesCancel(t *testing.T) {
	w := &writer{queue: make(chan *runOp, 1)}
	op := &runOp{kind: opCreate, row: runRow{id: "r"}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.do(ctx, op) }()
	taken := <-w.queue
	if !taken.state.CompareAndSwap(opQueued, opTaken) {
		t.Fatal("write not queued")
	}
	cancel()
	select {
	case err := <-errc:
		t.Fatalf("do returned %v before the write's outcome", err)
	default:
	}
	taken.done <- nil
	if err := <-errc; err != nil {
		t.Fatalf("do = %v, want the write's outcome, nil", err)
	}
}

func TestCloseDrainsQueuedWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "flowd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, s)
	var ops []*runOp
	for i := range 50 {
		r := testRun(fmt.Sprintf("q%02d", i), "f", i)
		ops = append(ops, queueOp(t, s, opCreate, r))
		if i%2 == 0 {
			ops = append(ops, queueOp(t, s, opFinish, finished(r)))
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	await(t, "Close to stop taking writes", func() bool {
		s.wr.mu.RLock()
		defer s.wr.mu.RUnlock()
		return s.wr.closed
	})
	if err := s.CreateRun(ctx, testRun("late", "f", 0)); !errors.Is(err, ErrClosed) {
		t.Errorf("CreateRun after Close = %v, want ErrClosed", err)
	}
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if err := outcome(t, op); err != nil {
			t.Errorf("write of %s: %v", op.row.id, err)
		}
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := countRows(t, s, `SELECT count(*) FROM runs`); n != 50 {
		t.Errorf("%d runs after Close, want 50", n)
	}
	if n := countRows(t, s, `SELECT count(*) FROM runs WHERE status = 'success'`); n != 25 {
		t.Errorf("%d finished runs after Close, want 25", n)
	}
}

// Writers racing Close: every CreateRun that returned nil is stored, none that failed is.
func TestCloseWhileWriting(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "flowd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		wg    sync.WaitGroup
	)
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("g%02d-%05d", g, i)
				err := s.CreateRun(ctx, testRun(id, "f", i))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("create %s: %v", id, err)
					return
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		})
	}
	await(t, "some runs to be stored", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 500
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored := storedIDs(t, s)
	for id := range acked {
		if !stored[id] {
			t.Errorf("run %s acknowledged but not stored", id)
		}
	}
	for id := range stored {
		if !acked[id] {
			t.Errorf("run %s stored but its CreateRun failed", id)
		}
	}
}

func storedIDs(t *testing.T, s *SQLite) map[string]bool {
	t.Helper()
	rows, err := s.r.QueryContext(context.Background(), `SELECT id FROM runs`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// crashEnv names the database a re-run of this test binary writes runs into until it is
// killed (TestCrashHelper).
const crashEnv = "FLOWD_STORAGE_CRASH_DB"

// TestCrashHelper is not a test: run by TestKill9KeepsEveryAcknowledgedRun in a child
// process, it records runs from many goroutines and prints "created ID" and "finished ID"
// once each write is acknowledged, until it is killed.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("run by TestKill9KeepsEveryAcknowledgedRun")
	}
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	say := func(what, id string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, "%s %s\n", what, id)
	}
	stop := time.Now().Add(time.Minute) // in case nobody kills us
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				r := testRun(engine.NewRunID(time.Now()), "crash", 0)
				if err := s.CreateRun(ctx, r); err != nil {
					t.Error(err)
					return
				}
				say("created", r.ID)
				if err := s.FinishRun(ctx, finished(r)); err != nil {
					t.Error(err)
					return
				}
				say("finished", r.ID)
			}
		})
	}
	wg.Wait()
}

func TestKill9KeepsEveryAcknowledgedRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowd.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	created, finishedIDs := map[string]bool{}, map[string]bool{}
	note := func(line string) {
		what, id, _ := strings.Cut(line, " ")
		switch what {
		case "created":
			created[id] = true
		case "finished":
			finishedIDs[id] = true
		}
	}
	timeout := time.After(time.Minute)
	for len(finishedIDs) < 2000 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("the helper stopped before it was killed")
			}
			note(line)
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("only %d runs finished in a minute", len(finishedIDs))
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for line := range lines {
		note(line)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("helper exit: %v, want killed", err)
	}

	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	for id := range created {
		if n := countRows(t, s, `SELECT count(*) FROM runs WHERE id = ?`, id); n != 1 {
			t.Errorf("acknowledged run %s stored %d times", id, n)
		}
	}
	for id := range finishedIDs {
		r, err := s.GetRun(ctx, id)
		if err != nil {
			t.Fatalf("acknowledged finished run: %v", err)
		}
		if r.Status != engine.StatusSuccess || len(r.Nodes) != 4 {
			t.Errorf("acknowledged finished run %s: %s with %d nodes", id, r.Status, len(r.Nodes))
		}
	}
	total := countRows(t, s, `SELECT count(*) FROM runs`)
	if n := countRows(t, s, `SELECT count(DISTINCT id) FROM runs`); n != total {
		t.Errorf("%d runs but %d ids", total, n)
	}
	t.Logf("killed after %d acknowledged creates and %d finishes; %d runs stored", len(created), len(finishedIDs), total)
}
