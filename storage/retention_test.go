package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/engine"
)

// now is the time retention tests prune at.
var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// idSeq numbers the ids testID makes.
var idSeq atomic.Uint64

// testID is a run id in ULID layout for a run started at at. engine.NewRunID cannot make ids
// for past times: its ids only ever grow.
func testID(at time.Time) string {
	id := []byte(idAt(at))
	for i, n := len(id)-1, idSeq.Add(1); n > 0; i, n = i-1, n>>5 {
		id[i] = crockford[n&31]
	}
	return string(id)
}

// genRuns makes n runs of flow started at start, 1 ms apart; running, or finished with the
// token flow's nodes.
func genRuns(t *testing.T, flow string, start time.Time, n int, running bool) []*engine.Run {
	t.Helper()
	tmpl := loadRun(t, "token-run.json")
	runs := make([]*engine.Run, n)
	for i := range runs {
		at := start.Add(time.Duration(i) * time.Millisecond)
		r := &engine.Run{ID: testID(at), FlowID: flow, FlowVersion: "v1", Trigger: "Webhook",
			Mode: "webhook", Status: engine.StatusRunning, StartedAt: at}
		if !running {
			r.Status, r.FinishedAt, r.Nodes = engine.StatusSuccess, at.Add(time.Millisecond), tmpl.Nodes
		}
		runs[i] = r
	}
	return runs
}

func insert(t *testing.T, s *SQLite, runs ...[]*engine.Run) {
	t.Helper()
	for _, rs := range runs {
		if err := s.InsertRuns(context.Background(), rs); err != nil {
			t.Fatal(err)
		}
	}
}

func ids(runs ...[]*engine.Run) []string {
	var out []string
	for _, rs := range runs {
		for _, r := range rs {
			out = append(out, r.ID)
		}
	}
	slices.Sort(out)
	return out
}

// flowRunIDs lists the ids of a flow's stored runs in id order.
func flowRunIDs(t *testing.T, s *SQLite, flow string) []string {
	t.Helper()
	var out []string
	for id := range storedIDs(t, s) {
		if r, err := s.GetRun(context.Background(), id); err != nil {
			t.Fatal(err)
		} else if r.FlowID == flow {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func TestPruneByAge(t *testing.T) {
	s := openTest(t)
	old := genRuns(t, "a", now.Add(-48*time.Hour), 1200, false) // more than two delete batches
	oldRunning := genRuns(t, "b", now.Add(-47*time.Hour), 3, true)
	recent := genRuns(t, "a", now.Add(-time.Hour), 20, false)
	insert(t, s, old, oldRunning, recent)

	res, err := s.Prune(context.Background(), Retention{MaxAge: 24 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.ByAge != len(old) || res.ByCount != 0 {
		t.Errorf("pruned %+v, want %d by age", res, len(old))
	}
	if got, want := slices.Sorted(maps.Keys(storedIDs(t, s))), ids(oldRunning, recent); !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
	if n := countRows(t, s, `SELECT count(*) FROM runs WHERE nodes IS NOT NULL`); n != len(recent) {
		t.Errorf("%d node records left, want %d", n, len(recent))
	}
}

func TestPruneByCount(t *testing.T) {
	s := openTest(t)
	start := now.Add(-time.Hour)
	aRunning := genRuns(t, "a", start, 2, true) // the oldest of a, kept while running
	aOld := genRuns(t, "a", start.Add(time.Second), 18, false)
	aNew := genRuns(t, "a", start.Add(2*time.Second), 10, false)
	b := genRuns(t, "b", start, 5, false)
	cOld := genRuns(t, "c", start, 2, false)
	cNew := genRuns(t, "c", start.Add(time.Second), 10, false)
	insert(t, s, aRunning, aOld, aNew, b, cOld, cNew)

	res, err := s.Prune(context.Background(), Retention{MaxRunsPerFlow: 10}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.ByCount != len(aOld)+len(cOld) || res.ByAge != 0 {
		t.Errorf("pruned %+v, want %d by count", res, len(aOld)+len(cOld))
	}
	for flow, want := range map[string][]string{"a": ids(aRunning, aNew), "b": ids(b), "c": ids(cNew)} {
		if got := flowRunIDs(t, s, flow); !slices.Equal(got, want) {
			t.Errorf("flow %s kept %v, want %v", flow, got, want)
		}
	}
	if res, err := s.Prune(context.Background(), Retention{MaxRunsPerFlow: 10}, now); err != nil || res.ByCount != 0 {
		t.Errorf("second pass pruned %+v, %v; want nothing", res, err)
	}
}

func TestPruneShrinksTheFile(t *testing.T) {
	s := openTest(t)
	insert(t, s, genRuns(t, "a", now.Add(-30*24*time.Hour), 3000, false), genRuns(t, "a", now, 50, false))
	before := fileBytes(t, s)

	res, err := s.Prune(context.Background(), Retention{MaxAge: 14 * 24 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	// The pruner's checkpoint shrinks the file, or the background checkpointer's next one
	// when it was checkpointing just then.
	var after int64
	await(t, "the file to shrink after pruning 3000 of 3050 runs", func() bool {
		fi, err := os.Stat(s.Path())
		if err != nil {
			t.Fatal(err)
		}
		after = fi.Size()
		return after <= before/4
	})
	t.Logf("pruned %+v: file %d -> %d bytes", res, before, after)
	if res.FreedBytes < (before-after)/2 {
		t.Errorf("FreedBytes = %d, but the file shrank by %d", res.FreedBytes, before-after)
	}
	if n := countRows(t, s, `PRAGMA freelist_count`); n != 0 {
		t.Errorf("%d free pages left", n)
	}
}

// Pruning runs while runs are recorded: no running run is deleted (FinishRun would fail), no
// run that retention keeps is deleted, and a final pass leaves exactly what retention keeps.
func TestPruneWhileWriting(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	oldRunning := genRuns(t, "live", now.Add(-30*24*time.Hour), 5, true)
	insert(t, s, genRuns(t, "live", now.Add(-30*24*time.Hour+time.Second), 2000, false), oldRunning)
	keep := Retention{MaxAge: 24 * time.Hour, MaxRunsPerFlow: 200}

	var (
		mu      sync.Mutex
		written []string
		wg      sync.WaitGroup
	)
	tmpl := loadRun(t, "token-run.json")
	for range 16 {
		wg.Go(func() {
			for range 50 {
				r := &engine.Run{ID: engine.NewRunID(time.Now()), FlowID: "live", Status: engine.StatusRunning, StartedAt: time.Now()}
				if err := s.CreateRun(ctx, r); err != nil {
					t.Error(err)
					return
				}
				r.Status, r.FinishedAt, r.Nodes = engine.StatusSuccess, time.Now(), tmpl.Nodes
				if err := s.FinishRun(ctx, r); err != nil {
					t.Errorf("finish while pruning: %v", err)
					return
				}
				mu.Lock()
				written = append(written, r.ID)
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	passes := 0
	for running := true; running; passes++ {
		select {
		case <-done:
			running = false
		default:
		}
		if _, err := s.Prune(ctx, keep, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(written)
	want := append(ids(oldRunning), written[len(written)-keep.MaxRunsPerFlow:]...)
	slices.Sort(want)
	if got := flowRunIDs(t, s, "live"); !slices.Equal(got, want) {
		t.Errorf("after %d passes kept %d runs, want the %d running and the newest %d", passes, len(got), len(oldRunning), keep.MaxRunsPerFlow)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer is a log sink safe for the pruner's goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestStartPruning(t *testing.T) {
	s := openTest(t)
	old := genRuns(t, "a", time.Now().Add(-48*time.Hour), 700, false)
	insert(t, s, old, genRuns(t, "a", time.Now(), 3, false))
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	keep := Retention{MaxAge: 24 * time.Hour}

	if err := s.StartPruning(keep, time.Hour, logger); err != nil {
		t.Fatal(err)
	}
	await(t, "the first pass", func() bool { return strings.Contains(logs.String(), "pruned runs") })
	if !strings.Contains(logs.String(), fmt.Sprintf("deletedByAge=%d", len(old))) {
		t.Errorf("log: %s", logs.String())
	}
	if n := countRows(t, s, `SELECT count(*) FROM runs`); n != 3 {
		t.Errorf("%d runs left, want 3", n)
	}
	if err := s.StartPruning(keep, time.Hour, logger); err == nil {
		t.Error("pruning started twice")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.StartPruning(keep, time.Hour, logger); !errors.Is(err, ErrClosed) {
		t.Errorf("StartPruning after Close = %v, want ErrClosed", err)
	}

	for name, tt := range map[string]struct {
		keep     Retention
		interval time.Duration
	}{
		"negative age":   {Retention{MaxAge: -time.Hour}, time.Minute},
		"negative count": {Retention{MaxRunsPerFlow: -1}, time.Minute},
		"no interval":    {Retention{MaxAge: time.Hour}, 0},
	} {
		t.Run(name, func(t *testing.T) {
			if err := openTest(t).StartPruning(tt.keep, tt.interval, logger); err == nil {
				t.Error("started")
			}
		})
	}
}

func TestIDAt(t *testing.T) {
	id := engine.NewRunID(time.Now())
	var ms int64 // the id's time
	for _, c := range id[:10] {
		ms = ms<<5 | int64(strings.IndexRune(crockford, c))
	}
	at := time.UnixMilli(ms)
	if got := idAt(at); got[:10] != id[:10] || got > id {
		t.Errorf("idAt(%v) = %s, want the least id of that millisecond; a run id of it is %s", at, got, id)
	}
	if got := idAt(at.Add(time.Millisecond)); got <= id {
		t.Errorf("idAt a millisecond later = %s, not after %s", got, id)
	}
	if got := idAt(time.UnixMilli(0)); got != "00000000000000000000000000" {
		t.Errorf("idAt(epoch) = %s", got)
	}
}
